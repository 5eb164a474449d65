// Replay protection on Redis against replay off, over HTTP: distinct tokens (never seen before),
// 10 connections, each server in its own process, the rounds interleaved. Prints requests per
// second and the server's CPU per request (process.cpuUsage(), all its threads), as ratios to
// replay off in the same run. Not part of `npm run bench`: it needs Redis nodes you start.
//
//   VJG_BENCH_REDIS=redis://127.0.0.1:6379          one node (with a replica for the 'replica' row)
//   VJG_BENCH_REDIS_CLUSTER=redis://127.0.0.1:7000,redis://127.0.0.1:7001,...   a cluster (optional)
//   npm run build && node bench/replay.js
import { fork } from 'node:child_process'
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { fileURLToPath } from 'node:url'

const PER_ROUND = 1500
const ROUNDS = 5
const CONNECTIONS = 10

if (process.argv[2] === 'serve') {
  const { default: Fastify } = await import('fastify')
  const { default: guard } = await import('../dist/index.js')
  const { createRedisStore } = await import('../dist/stores/redis.js')
  const where = JSON.parse(process.env.WHERE)
  const options = { publicKey: process.env.PUB }
  const store = where === null ? undefined : createRedisStore({ ...where, timeout: 1000 })
  if (store !== undefined) options.replay = { store }
  const app = Fastify()
  await app.register(guard, options)
  app.get('/v1/users', async () => ({ ok: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  let start = process.cpuUsage()
  process.on('message', (message) => {
    if (message === 'reset') start = process.cpuUsage()
    if (message === 'read') {
      const used = process.cpuUsage(start)
      process.send({ cpu: used.user + used.system })
    }
    if (message === 'exit') {
      if (store === undefined) process.exit(0)
      store.close().then(() => process.exit(0))
    }
    if (message === 'reset') process.send({ reset: true })
  })
  process.send({ port: app.server.address().port })
} else {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const iat = Math.floor(Date.now() / 1000)
  const token = () => {
    const signed = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ application_id: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', iat, exp: iat + 3600, jti: randomUUID(), sub: 'bench', acl: { paths: { '/*/users/**': {} } } })}`
    return `${signed}.${sign('sha256', Buffer.from(signed), privateKey).toString('base64url')}`
  }
  const rows = [['replay off', null]]
  if (process.env.VJG_BENCH_REDIS) {
    rows.push(['one node', { url: process.env.VJG_BENCH_REDIS }])
    rows.push(['one node, replica', { url: process.env.VJG_BENCH_REDIS, replayDurability: 'replica' }])
  }
  if (process.env.VJG_BENCH_REDIS_CLUSTER) {
    const urls = process.env.VJG_BENCH_REDIS_CLUSTER.split(',')
    rows.push(['cluster', { url: urls }])
    rows.push(['cluster, replica', { url: urls, replayDurability: 'replica' }])
  }
  const servers = []
  for (const [name, where] of rows) {
    const child = fork(fileURLToPath(import.meta.url), ['serve'], { env: { ...process.env, PUB: publicKey.export({ type: 'spki', format: 'pem' }), WHERE: JSON.stringify(where) } })
    const port = await new Promise(resolve => child.once('message', message => resolve(message.port)))
    servers.push({ name, child, port, rps: [], cpu: [], refused: 0 })
  }
  const ask = (child, message) => new Promise(resolve => { child.once('message', resolve); child.send(message) })
  for (let round = 0; round < ROUNDS; round++) {
    // The order rotates each round, so that load drift on a shared machine spreads over every row.
    for (let k = 0; k < servers.length; k++) {
      const server = servers[(k + round) % servers.length]
      const tokens = Array.from({ length: PER_ROUND }, token)
      await ask(server.child, 'reset')
      const started = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
        while (next < tokens.length) {
          const res = await fetch(`http://127.0.0.1:${server.port}/v1/users`, { headers: { authorization: `Bearer ${tokens[next++]}` } })
          await res.arrayBuffer()
          if (res.status !== 200) server.refused++
        }
      }))
      const elapsed = performance.now() - started
      const { cpu } = await ask(server.child, 'read')
      server.rps.push(PER_ROUND / elapsed * 1000)
      server.cpu.push(cpu / PER_ROUND)
    }
  }
  const median = (values) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const [off] = servers
  console.log('| row | req/s | to replay off | server CPU per request (us) | to replay off | not 200 |')
  console.log('|---|---|---|---|---|---|')
  for (const server of servers) {
    console.log(`| ${server.name} | ${median(server.rps).toFixed(0)} | ${(median(server.rps) / median(off.rps)).toFixed(2)}x | ${median(server.cpu).toFixed(0)} | ${(median(server.cpu) / median(off.cpu)).toFixed(2)}x | ${server.refused} |`)
  }
  for (const server of servers) server.child.send('exit')
}
