/**
 * `/readyz` of serve, mock, proxy and forward-auth: 200 (forward-auth: 204) only once the keys
 * are loaded, while the Redis store answers PING and no key reload fails; otherwise 503 with a
 * JSON body naming what is not ready, never a key or a credential.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys, otherKeys } from '../../test/helpers/keys.js'
import { REDIS_URL, SKIP_REDIS, uniquePrefix } from '../../test/helpers/redis.js'
import { freePort, portOf, start, waitFor } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

const probe = async (port: number, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: Record<string, string | string[] | undefined> }> =>
  await rawRequest(port, '/readyz', headers, method)

t.test('serve, mock and proxy: 200 ready beside /healthz; HEAD; --no-ready-path leaves it guarded', async t => {
  const up = await recordingUpstream(t)
  for (const args of [
    ['serve'],
    ['mock'],
    ['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--public-key', keys.publicPem]
  ]) {
    const server = await start([...args, '--port', '0', '--log-level', 'warn'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    const port = portOf(server.base)
    const ready = await probe(port)
    t.equal(ready.status, 200, `${args[0]!}: ${ready.body}`)
    t.same(JSON.parse(ready.body), { status: 'ready', checks: { keys: 'ok', reload: 'ok' } }, args[0]!)
    t.equal(ready.headers['cache-control'], 'no-store')
    const head = await probe(port, 'HEAD')
    t.equal(head.status, 200, `${args[0]!}: HEAD`)
    t.equal(head.body, '', `${args[0]!}: HEAD has no body`)
    t.equal((await rawRequest(port, '/healthz')).status, 200, `${args[0]!}: /healthz stays`)
    t.equal((await probe(port, 'POST')).status, 401, `${args[0]!}: POST /readyz is guarded`)
    server.child.kill('SIGKILL')
  }
  t.equal(up.seen.length, 0, 'a probe never reaches the upstream')
  const off = await start(['serve', '--port', '0', '--log-level', 'warn', '--no-ready-path'])
  t.teardown(() => { off.child.kill('SIGKILL') })
  t.equal((await probe(portOf(off.base))).status, 401, '--no-ready-path: /readyz is an ordinary guarded path')
})

t.test('forward-auth: an empty keys directory is not ready; a key makes it ready (204); a refused key file is a failing reload', async t => {
  const dir = t.testdir({})
  const server = await start(['forward-auth', '--port', '0', '--public-keys-dir', dir, '--log-level', 'fatal'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const empty = await probe(port)
  t.equal(empty.status, 503)
  t.match(JSON.parse(empty.body), { status: 'not ready', checks: { keys: /no key is loaded/, reload: 'ok' } })

  writeFileSync(join(dir, `${APP_ID}.pem`), keys.publicPem)
  await waitFor('the key is loaded', async () => (await probe(port)).status === 204)
  const ready = await probe(port)
  t.equal(ready.body, '', 'forward-auth: 204, no body (Envoy grants only on 200)')

  const check = await probe(port, 'GET', { 'X-Original-Method': 'GET', 'X-Original-URI': '/v1/users' })
  t.equal(check.status, 400, 'a check sent to /readyz is refused, never a grant')
  t.equal(JSON.parse(check.body).code, 'VJG_FORWARD_INVALID')
  t.equal((await probe(port, 'GET', { x_forwarded_uri: '/v1/users' })).status, 400, 'in any spelling')

  writeFileSync(join(dir, 'other-app.pem'), 'not a key')
  await waitFor('the failing reload is seen', async () => (await probe(port)).status === 503)
  const failing = await probe(port)
  t.match(JSON.parse(failing.body), { status: 'not ready', checks: { keys: 'ok', reload: /cannot be read or is refused/ } })
  t.notMatch(failing.body, /not a key|BEGIN/, 'no key material')
  writeFileSync(join(dir, 'other-app.pem'), otherKeys.publicPem)
  await waitFor('the reload succeeds again', async () => (await probe(port)).status === 204)
})

t.test('proxy with Redis: ready while Redis answers PING, 503 naming the store when it cannot, no credential shown', { skip: SKIP_REDIS }, async t => {
  const up = await recordingUpstream(t)
  const deadPort = await freePort()
  for (const [name, url, status, store] of [
    ['Redis up', REDIS_URL!, 200, 'ok'],
    ['Redis down', `redis://guard:s3cr3t-pass@127.0.0.1:${deadPort}`, 503, /no answer to PING within \d+ ms/]
  ] as const) {
    const dir = t.testdir({ 'guard.json': JSON.stringify({ publicKey: keys.publicPem, redisPrefix: uniquePrefix() }) })
    const server = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--config', join(dir, 'guard.json'),
      '--replay', '--redis-url', url, '--log-level', 'fatal'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    const res = await probe(portOf(server.base))
    server.child.kill('SIGKILL')
    t.equal(res.status, status, `${name}: ${res.body}`)
    t.match(JSON.parse(res.body), { checks: { keys: 'ok', store, reload: 'ok' } }, name)
    t.notMatch(res.body, /s3cr3t|redis:|127\.0\.0\.1/, `${name}: no URL or credential`)
  }
})
