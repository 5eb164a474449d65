/**
 * `--rate-limit N/window` (`--rate-limit-by app`): granted requests counted per verified subject
 * or application; over the limit 429 `VJG_RATE_LIMITED` with Retry-After in the guard's error
 * shape; shared through the real Redis by two instances; a spec that does not parse is one
 * line, exit 2.
 */
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { REDIS_URL, SKIP_REDIS, uniquePrefix } from '../../test/helpers/redis.js'
import { freePort, inTurns, liveToken, portOf, run, start } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

const get = async (port: number, token?: string, path = '/v1/users/abc'): Promise<{ status: number, body: string, headers: Record<string, string | string[] | undefined> }> =>
  await rawRequest(port, path, token === undefined ? {} : { authorization: `Bearer ${token}` })

t.test('serve: per subject; over the limit 429 with Retry-After and the guard\'s body; refusals and the health route do not count', async t => {
  const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--rate-limit', '2/minute'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const alice = await liveToken({ sub: 'alice' })
  const bob = await liveToken({ sub: 'bob' })
  t.equal((await get(port)).status, 401, 'no token: refused by the guard, not counted')
  t.equal((await get(port, alice, '/v1/admin')).status, 403, 'outside the ACL: refused, not counted')
  for (let i = 0; i < 3; i++) t.equal((await get(port, undefined, '/healthz')).status, 200, 'the health route is not limited')
  t.equal((await get(port, alice)).status, 200)
  t.equal((await get(port, alice)).status, 200)
  const over = await get(port, alice)
  t.equal(over.status, 429)
  const retry = Number(over.headers['retry-after'])
  t.ok(retry > 0 && retry <= 60, `Retry-After in seconds (${String(over.headers['retry-after'])})`)
  t.match(JSON.parse(over.body), { statusCode: 429, code: 'VJG_RATE_LIMITED', error: 'Too Many Requests', message: /at most 2 per minute/ })
  t.equal((await get(port, bob)).status, 200, 'another subject has its own count')
  const other = await liveToken({ sub: 'alice', jti: 'another-token' })
  t.equal((await get(port, other)).status, 429, 'another token of the same subject shares the count')
})

t.test('--rate-limit-by app: one count per application; problem format', async t => {
  const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--rate-limit', '1/hour', '--rate-limit-by', 'app', '--error-format', 'problem'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  t.equal((await get(port, await liveToken({ sub: 'alice' }))).status, 200)
  const over = await get(port, await liveToken({ sub: 'bob' }))
  t.equal(over.status, 429, 'bob shares alice\'s application')
  t.match(over.headers['content-type'], /application\/problem\+json/)
  t.match(JSON.parse(over.body), { title: 'Too Many Requests', code: 'VJG_RATE_LIMITED', detail: /per hour/ })
  t.ok(Number(over.headers['retry-after']) > 3000, 'Retry-After close to an hour')
})

t.test('two proxies sharing Redis share the count', { skip: SKIP_REDIS }, async t => {
  const up = await recordingUpstream(t)
  const dir = t.testdir({ 'guard.json': JSON.stringify({ publicKey: keys.publicPem, redisPrefix: uniquePrefix() }) })
  const args = ['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--config', join(dir, 'guard.json'), '--log-level', 'warn', '--redis-url', REDIS_URL!, '--rate-limit', '3/minute']
  const [a, b] = await Promise.all([start(args), start(args)])
  t.teardown(() => { a.child.kill('SIGKILL'); b.child.kill('SIGKILL') })
  const jwt = await liveToken({ sub: 'carol' })
  const statuses: number[] = []
  for (const server of [a, b, a, b]) statuses.push((await get(portOf(server.base), jwt)).status)
  t.same(statuses, [200, 200, 200, 429], 'the fourth request, on either instance, is over the shared limit')
  t.equal(up.seen.length, 3, 'the limited request never reached the upstream')
})

t.test('a count that cannot be made (Redis down) is 503 VJG_UNAVAILABLE, never a 500 or a pass', async t => {
  const dead = await freePort()
  const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'fatal', '--redis-url', `redis://127.0.0.1:${dead}`, '--rate-limit', '5/second'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const res = await get(portOf(server.base), await liveToken({ sub: 'dave' }))
  t.equal(res.status, 503, res.body)
  t.match(JSON.parse(res.body), { code: 'VJG_UNAVAILABLE', message: 'The rate limit could not be counted' })
  t.notMatch(res.body, /127\.0\.0\.1|redis/, 'no address')
})

t.test('a rate limit that does not parse, or that workers would each count, is one line, exit 2', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no window', ['--rate-limit', '100'], /--rate-limit: "100" is not N\/window/],
    ['an unknown unit', ['--rate-limit', '10/fortnight'], /not N\/window/],
    ['zero', ['--rate-limit', '0/second'], /not N\/window/],
    ['a fraction', ['--rate-limit', '1.5/second'], /not N\/window/],
    ['workers without Redis', ['--rate-limit', '10/second', '--workers', '2'], /--rate-limit with --workers 2 needs a shared store/],
    ['an unknown key', ['--rate-limit', '10/second', '--rate-limit-by', 'ip'], /--rate-limit-by/]
  ]
  const results = await inTurns(cases, ([, extra]) => run(['serve', '--port', '0', '--public-key', keys.publicPem, ...extra]))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
    t.equal(results[i]!.stderr.split('\n').filter(line => line.startsWith('error:')).length, 1, `${name}: one error line`)
  }
})
