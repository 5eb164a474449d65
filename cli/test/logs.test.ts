/**
 * What the servers write, as docs/cli.md (Logs) says: a granted request writes nothing by
 * default, a refusal one line, an upstream error of `proxy` one line at error without a stack;
 * the banners name the source of keys, and `--public-keys-dir` changes are logged.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys, makeKeyPair, otherKeys } from '../../test/helpers/keys.js'
import { liveToken, portOf, start, stop, waitFor, type Server } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

const APP_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'

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

t.test('the banner names the source of keys; nothing secret in it', async t => {
  const dir = t.testdir({
    'public.key': keys.publicPem,
    byApp: { [`${APP_ID}.pem`]: keys.publicPem, [`${APP_B}.key`]: otherKeys.publicPem },
    'guard.json': JSON.stringify({ publicKey: { file: 'public.key' } })
  })
  const cases: Array<{ args: string[], line: string }> = [
    { args: ['proxy', '--upstream', 'http://127.0.0.1:9', '--public-key', join(dir, 'public.key')], line: `keys: --public-key ${join(dir, 'public.key')}` },
    { args: ['serve', '--public-key', keys.publicPem], line: 'keys: --public-key (inline key)' },
    { args: ['forward-auth', '--public-keys-dir', join(dir, 'byApp')], line: `keys: directory ${join(dir, 'byApp')}, 2 applications: ${APP_ID}, ${APP_B}` },
    { args: ['serve', '--jwks-url', 'http://127.0.0.1:9/keys/jwks.json?token=s3cret#x'], line: 'keys: JWKS http://127.0.0.1:9/keys/jwks.json' },
    { args: ['serve', '--config', join(dir, 'guard.json')], line: `keys: publicKey (from ${join(dir, 'guard.json')})` }
  ]
  for (const { args, line } of cases) {
    const server = await start([...args, '--port', '0'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    const lines = server.stdout().split('\n')
    t.equal(lines[0], line, args.slice(0, 3).join(' '))
    t.match(lines[1], /listening on/, 'then the banner')
    t.notMatch(server.stdout(), /s3cret|BEGIN/, 'no key text, no query')
    t.equal(server.stderr(), '', 'no warning')
    await stop(server)
  }
})

t.test('an empty --public-keys-dir warns at start', async t => {
  const dir = t.testdir({})
  const server = await start(['proxy', '--upstream', 'http://127.0.0.1:9', '--port', '0', '--public-keys-dir', dir])
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal(server.stderr(), `warning: the keys directory ${dir} holds no key file (<application_id>.pem or .key): every token is refused (401 VJG_KEY_UNKNOWN) until one is added\n`)
  t.match(server.stdout(), /^keys: directory .*, empty: every token is refused \(401\) until a key is added\n/)
})

t.test('key files added, replaced and removed are logged by name, a refused file too; request ids stay unique across reloads', async t => {
  const dir = t.testdir({ [`${APP_ID}.pem`]: keys.publicPem })
  const server = await start(['serve', '--port', '0', '--public-keys-dir', dir])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const reloads = (): string[] => logLines(server).map(line => String(line.msg)).filter(msg => msg.includes('keys reloaded'))
  const refuseOne = async (): Promise<void> => {
    const before = logLines(server).length
    t.equal((await rawRequest(port, '/v1/users')).status, 401)
    await waitFor('the refusal line', () => logLines(server).length > before)
  }

  await refuseOne()
  writeFileSync(join(dir, `${APP_B}.pem`), otherKeys.publicPem)
  await waitFor('the addition', () => reloads().length === 1)
  await refuseOne()
  writeFileSync(join(dir, `${APP_ID}.pem`), makeKeyPair().publicPem)
  await waitFor('the replacement', () => reloads().length === 2)
  rmSync(join(dir, `${APP_B}.pem`))
  await waitFor('the removal', () => reloads().length === 3)
  t.same(reloads(), [
    `vonage-jwt-guard: keys reloaded: ${APP_B} added; 2 applications in use`,
    `vonage-jwt-guard: keys reloaded: ${APP_ID} replaced; 2 applications in use`,
    `vonage-jwt-guard: keys reloaded: ${APP_B} removed; 1 application in use`
  ])

  writeFileSync(join(dir, 'broken.pem'), 'not a key')
  await waitFor('the refused file', () => logLines(server).some(line => line.level === 50 && line.file === 'broken.pem'))
  await refuseOne()

  const ids = logLines(server).filter(line => line.reqId !== undefined).map(line => line.reqId)
  t.equal(ids.length, 3)
  t.equal(new Set(ids).size, ids.length, `request ids unique across reloads: ${ids.join(', ')}`)
  t.equal(await stop(server), 0)
})
