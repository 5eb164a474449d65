/**
 * What the servers write, as docs/cli.md (Logs) says: a granted request writes nothing by
 * default, a refusal one line, an upstream error of `proxy` one line at error without a stack;
 * the banners name the source of keys, and `--public-keys-dir` changes are logged.
 */
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { liveToken, portOf, start, stop, waitFor, type Server } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

/** The JSON lines a server wrote to stdout (its banner lines are not JSON). */
function logLines (server: Server): Array<Record<string, unknown>> {
  return server.stdout().split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line) as Record<string, unknown>)
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise(resolve => probe.close(resolve))
  return port
}

t.test('proxy: a granted request logs nothing, a refusal one line, an upstream error one line at error without a stack', async t => {
  const up = await recordingUpstream(t)
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', join(dir, 'public.key')])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken({ sub: 'alice' })

  t.equal((await rawRequest(port, '/v1/users/alice', { authorization: `Bearer ${jwt}` })).status, 200)
  t.equal((await rawRequest(port, '/v1/users/alice')).status, 401)
  await waitFor('the refusal line', () => logLines(proxy).length >= 1)
  const lines = logLines(proxy)
  t.equal(lines.length, 1, `one line for two requests, the granted one silent:\n${proxy.stdout()}`)
  t.match(lines[0], { level: 30, code: 'VJG_TOKEN_MISSING', statusCode: 401 })
  t.notOk(JSON.stringify(lines[0]).includes('stack'), 'no stack')

  // The same proxy towards a port nothing listens on.
  const dead = await closedPort()
  const broken = await start(['proxy', '--upstream', `http://127.0.0.1:${dead}`, '--port', '0', '--public-key', join(dir, 'public.key')])
  t.teardown(() => { broken.child.kill('SIGKILL') })
  const failed = await rawRequest(portOf(broken.base), '/v1/users/alice', { authorization: `Bearer ${jwt}` })
  t.equal(failed.status, 502)
  await waitFor('the upstream error line', () => logLines(broken).length >= 1)
  await stop(broken)
  const errors = logLines(broken)
  t.equal(errors.length, 1, `one line for the upstream error:\n${broken.stdout()}`)
  t.match(errors[0], { level: 50, code: 'VJG_UPSTREAM_FAILED', statusCode: 502, cause: { code: 'ECONNREFUSED' } })
  t.notOk(JSON.stringify(errors[0]).includes('stack'), 'no stack')
  t.equal(broken.stderr().includes('"level"'), false, 'nothing logged on stderr')
})

t.test('proxy --log-requests: Fastify\'s request lines come back for a granted request', async t => {
  const up = await recordingUpstream(t)
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', keys.publicPem, '--log-requests'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const jwt = await liveToken({ sub: 'alice' })
  t.equal((await rawRequest(portOf(proxy.base), '/v1/users/alice', { authorization: `Bearer ${jwt}` })).status, 200)
  await waitFor('request completed', () => logLines(proxy).some(line => line.msg === 'request completed'))
  t.ok(logLines(proxy).some(line => line.msg === 'incoming request'))
})
