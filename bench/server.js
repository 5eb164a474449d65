/**
 * One benchmarked server, in its own process (forked by run.js):
 * `node server.js <name> <fixture.json> [options JSON]`.
 * Loads `servers/<name>.js`, listens on 127.0.0.1 and reports its CPU time on request, so the
 * CPU per request is the server's alone, not autocannon's.
 *
 * Messages: -> { type: 'ready', port } | { type: 'skip', reason }; on { type: 'cpu-start' } it
 * marks its CPU time, on { type: 'cpu-stop' } it answers { type: 'cpu', user, system } (us).
 */
import { readFileSync } from 'node:fs'

const [, , name, fixtureFile, optionsJson = '{}'] = process.argv
const fixture = JSON.parse(readFileSync(fixtureFile, 'utf8'))

let server
try {
  const mod = await import(`./servers/${name}.js`)
  server = await mod.start({ publicKey: fixture.publicKey, options: JSON.parse(optionsJson) })
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND') {
    process.send({ type: 'skip', reason: error.message.split('\n')[0] })
    process.disconnect()
    process.exit(0)
  }
  throw error
}

let mark = process.cpuUsage()
process.on('message', (message) => {
  if (message.type === 'cpu-start') {
    mark = process.cpuUsage()
    process.send({ type: 'cpu-started' })
  } else if (message.type === 'cpu-stop') {
    const used = process.cpuUsage(mark)
    process.send({ type: 'cpu', user: used.user, system: used.system })
  } else if (message.type === 'close') {
    Promise.resolve(server.close()).finally(() => process.exit(0))
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready', port: server.port })
