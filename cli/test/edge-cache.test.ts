/**
 * `forward-auth --decision-cache-max`: a grant nginx may cache (X-Accel-Expires and
 * Cache-Control: private, max-age), never past the token's exp; with docs/deployment.md's
 * `proxy_cache` configuration on the real nginx, a second identical request does not reach
 * forward-auth and another path, method or token does. Refused with replay (exit 2).
 */
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { liveToken, metricsOf, portOf, run, scrape, start } from './helpers/bin.js'
import { docsConfig, installed, startNginx, substitute } from './helpers/edge.js'
import { recordingUpstream } from './helpers/http.js'

const HAS_NGINX = installed('nginx', ['-v'])

/** Every decision forward-auth made, from its metrics. */
async function decisions (metrics: string): Promise<number> {
  const { body } = await scrape(metrics)
  return body.split('\n').filter(line => line.startsWith('vjg_decisions_total{')).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
}

t.test('a grant carries how long it may be cached: at most --decision-cache-max, never past exp; refusals never', async t => {
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--decision-cache-max', '30'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const port = portOf(guard.base)
  const check = (jwt: string, target = '/v1/users/abc'): Promise<{ status: number, headers: Record<string, string | string[] | undefined> }> =>
    rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, 'X-Original-Method': 'GET', 'X-Original-URI': target })
  const long = await check(await liveToken({ sub: 'alice' }))
  t.equal(long.status, 200)
  t.equal(long.headers['x-accel-expires'], '30')
  t.equal(long.headers['cache-control'], 'private, max-age=30')
  const now = Math.floor(Date.now() / 1000)
  const short = await check(await liveToken({ sub: 'alice', exp: now + 12 }))
  const left = Number(short.headers['x-accel-expires'])
  t.ok(left >= 10 && left <= 12, `never past exp (${left} s)`)
  t.equal(short.headers['cache-control'], `private, max-age=${left}`)
  const denied = await check(await liveToken({ sub: 'alice' }), '/v1/calls/x')
  t.equal(denied.status, 403)
  t.equal(denied.headers['cache-control'], 'no-store', 'a refusal is never cached')
  t.equal(denied.headers['x-accel-expires'], undefined)

  const off = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { off.child.kill('SIGKILL') })
  const plain = await rawRequest(portOf(off.base), '/auth', { authorization: `Bearer ${await liveToken({})}`, 'X-Original-Method': 'GET', 'X-Original-URI': '/v1/users/abc' })
  t.equal(plain.headers['cache-control'], 'no-store', 'off by default')
})

t.test('--decision-cache-max is refused with replay, and out of range', async t => {
  const dir = t.testdir({ 'guard.json': JSON.stringify({ publicKey: keys.publicPem, replay: true }) })
  for (const [name, args, message] of [
    ['--replay', ['--public-key', keys.publicPem, '--replay', '--decision-cache-max', '10'], /--decision-cache-max cannot be combined with replay \(--replay\)/],
    ['replay in the config file', ['--config', join(dir, 'guard.json'), '--decision-cache-max', '10'], /cannot be combined with replay \(.*guard\.json\)/],
    ['0', ['--public-key', keys.publicPem, '--decision-cache-max', '0'], /--decision-cache-max/],
    ['past an hour', ['--public-key', keys.publicPem, '--decision-cache-max', '3601'], /--decision-cache-max/]
  ] as const) {
    const result = await run(['forward-auth', '--port', '0', ...args])
    t.equal(result.code, 2, `${name}: exit 2`)
    t.match(result.stderr, message, name)
  }
})

t.test('the real nginx with the documented proxy_cache: an identical request is answered from the cache', { skip: HAS_NGINX || process.env.CI === 'true' ? false : 'nginx is not installed' }, async t => {
  const up = await recordingUpstream(t)
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--decision-cache-max', '30', '--metrics-port', '0'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const metrics = metricsOf(guard)
  const cacheDir = t.testdir({})
  const nginx = await startNginx(t, (port) => substitute(docsConfig('nginx-cache'), [
    ['/var/cache/nginx/vonage_guard', join(cacheDir, 'guard')],
    ['listen 80;', `listen 127.0.0.1:${port};`],
    ['127.0.0.1:3001', `127.0.0.1:${portOf(guard.base)}`],
    ['127.0.0.1:8080', `127.0.0.1:${up.port}`]
  ]))
  const jwt = await liveToken({ sub: 'alice', acl: { paths: { '/v1/users/**': {}, '/v1/files/**': { methods: ['GET', 'POST'] } } } })
  const send = (target: string, method = 'GET', extra: Record<string, string | string[]> = {}): Promise<{ status: number }> =>
    rawRequest(nginx.port, target, { authorization: `Bearer ${jwt}`, ...extra }, method)

  const steps: Array<[string, () => Promise<{ status: number }>, number, number]> = [
    ['first request: asks forward-auth', () => send('/v1/users/abc'), 200, 1],
    ['the same again: from the cache', () => send('/v1/users/abc'), 200, 0],
    ['and again', () => send('/v1/users/abc'), 200, 0],
    ['another path: asks', () => send('/v1/users/def'), 200, 1],
    ['another query: asks', () => send('/v1/users/abc?x=1'), 200, 1],
    ['another method: asks', () => send('/v1/files/f1', 'POST', { 'content-length': '0' }), 200, 1],
    ['a refusal: asks', () => send('/v1/calls/x'), 403, 1],
    ['the same refusal: asks again (never cached)', () => send('/v1/calls/x'), 403, 1],
    ['the cached request plus the client\'s X-Vonage-Sub: asks, refused', () => send('/v1/users/abc', 'GET', { 'X-Vonage-Sub': 'mallory' }), 400, 1],
    ['plus a method override: asks, refused', () => send('/v1/users/abc', 'GET', { 'X-HTTP-Method-Override': 'DELETE' }), 400, 1],
    ['plus X-Original-URL: asks, refused', () => send('/v1/users/abc', 'GET', { 'X-Original-URL': '/admin' }), 400, 1],
    // The key holds the first Authorization line only: nginx itself refuses a second one, before the cache.
    ['the cached token and a second Authorization: nginx refuses it, no cache hit', () => send('/v1/users/abc', 'GET', { authorization: [`Bearer ${jwt}`, 'Bearer forged'] }), 400, 0]
  ]
  let before = await decisions(metrics)
  for (const [name, step, status, asked] of steps) {
    const res = await step()
    t.equal(res.status, status, `${name}: ${status}`)
    const after = await decisions(metrics)
    t.equal(after - before, asked, `${name}: ${asked === 0 ? 'forward-auth not asked' : 'forward-auth asked'}`)
    before = after
  }
  const cached = up.seen.filter(seen => seen.url === '/v1/users/abc')
  t.equal(cached.length, 3, 'the three granted identical requests reached the upstream')
  for (const seen of cached) {
    t.equal(seen.headers['x-vonage-sub'], 'alice', 'with the identity of the cached grant')
    const authorizations = seen.rawHeaders.filter((_, i) => i % 2 === 1 && seen.rawHeaders[i - 1]!.toLowerCase() === 'authorization')
    t.same(authorizations, [`Bearer ${jwt}`], 'and only the Authorization it was granted for')
  }
})
