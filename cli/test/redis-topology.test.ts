/**
 * --redis-cluster, --redis-sentinels and --redis-name (and the config file's redisCluster,
 * redisSentinels, redisName, redisDurability): checked as one line naming the flag or the file;
 * an unknown Sentinel primary name is exit 1 at start-up; addresses that answer nothing do not
 * stop the start, and a request is then 503. Through a real Sentinel (started here) a token is
 * accepted once. The Sentinel tests skip without redis-server and redis-sentinel.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { skipWithout, startSentinel } from '../../test/helpers/redis-nodes.js'
import { freePort, liveToken, portOf, run, start, stop } from './helpers/bin.js'

const missing = skipWithout(['redis-server', 'redis-sentinel'])

t.test('bad Redis flags and config keys: exit 2, one line naming them', async (t) => {
  const dir = t.testdir({
    'public.key': keys.publicPem,
    'two.json': JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, redisUrl: 'redis://127.0.0.1:1', redisCluster: '127.0.0.1:2' }),
    'noname.json': JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, redisSentinels: ['127.0.0.1:26379'] }),
    'badlist.json': JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, redisCluster: ['127.0.0.1'] }),
    'durability.json': JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, redisUrl: 'redis://127.0.0.1:1', redisDurability: 'all' })
  })
  const key = ['--public-key', join(dir, 'public.key')]
  const cases: Array<[string, string[], RegExp]> = [
    ['not host:port', ['--replay', '--redis-cluster', '127.0.0.1'], /--redis-cluster.*Expected host:port/],
    ['a port out of range', ['--replay', '--redis-sentinels', '127.0.0.1:70000', '--redis-name', 'x'], /--redis-sentinels.*Expected host:port/],
    ['two Redis', ['--replay', '--redis-url', 'redis://127.0.0.1:1', '--redis-cluster', '127.0.0.1:2'], /give one Redis: --redis-url or --redis-cluster/],
    ['sentinels without a name', ['--replay', '--redis-sentinels', '127.0.0.1:26379'], /--redis-sentinels needs --redis-name/],
    ['a name without sentinels', ['--replay', '--redis-name', 'x'], /--redis-name goes with --redis-sentinels/],
    ['a durability that is not one', ['--replay', '--redis-url', 'redis://127.0.0.1:1', '--redis-durability', 'all'], /--redis-durability.*invalid/],
    ['the file: two Redis', ['--config', join(dir, 'two.json')], /two\.json: give one Redis: redisUrl or redisCluster/],
    ['the file: sentinels without a name', ['--config', join(dir, 'noname.json')], /noname\.json: redisSentinels needs redisName/],
    ['the file: not host:port', ['--config', join(dir, 'badlist.json')], /badlist\.json: redisCluster must be/],
    ['the file: a bad durability', ['--config', join(dir, 'durability.json')], /durability\.json: redisDurability must be/]
  ]
  for (const [name, args, message] of cases) {
    const result = await run(['serve', '--port', '0', ...(args[0] === '--config' ? [] : key), ...args])
    t.equal(result.code, 2, `${name}: exit 2`)
    t.match(result.stderr, message, name)
    // Commander adds its "(add --help for usage)" under its own errors.
    t.equal(result.stderr.trim().split('\n').filter(line => line !== '(add --help for usage)').length, 1, `${name}: one line`)
  }
})

t.test('a cluster or Sentinels that answer nothing: the server starts, a request is 503', async (t) => {
  const [a, b] = [await freePort(), await freePort()]
  for (const flags of [['--redis-cluster', `127.0.0.1:${a},127.0.0.1:${b}`], ['--redis-sentinels', `127.0.0.1:${a}`, '--redis-name', 'nobody']]) {
    const started = Date.now()
    const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--replay', ...flags, '--log-level', 'silent'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    t.ok(Date.now() - started < 10_000, `${flags[0]!}: started (${Date.now() - started} ms)`)
    const answer = await rawRequest(portOf(server.base), '/v1/users', { authorization: `Bearer ${await liveToken()}` })
    t.equal(answer.status, 503, `${flags[0]!}: 503`)
    t.equal(JSON.parse(answer.body).code, 'VJG_UNAVAILABLE')
    t.equal(await stop(server), 0)
  }
})

t.test('through a real Sentinel', { skip: missing, timeout: 60_000 }, async (t) => {
  const nodes = await startSentinel()
  t.teardown(() => nodes.stop())
  const sentinels = `127.0.0.1:${nodes.sentinel.port}`

  const unknown = await run(['serve', '--port', '0', '--public-key', keys.publicPem, '--replay', '--redis-sentinels', sentinels, '--redis-name', 'no-such-primary'])
  t.equal(unknown.code, 1, 'an unknown primary name: exit 1')
  t.match(unknown.stderr, /--redis-name "no-such-primary": no Sentinel knows a primary of that name/)
  t.equal(unknown.stderr.trim().split('\n').length, 1, 'one line')

  const dir = t.testdir({ 'public.key': keys.publicPem })
  writeFileSync(join(dir, 'guard.json'), JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, redisSentinels: [sentinels], redisName: nodes.name, redisDurability: 'replica' }))
  for (const args of [['--replay', '--public-key', keys.publicPem, '--redis-sentinels', sentinels, '--redis-name', nodes.name], ['--config', join(dir, 'guard.json')]]) {
    const server = await start(['serve', '--port', '0', ...args, '--log-level', 'silent'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    const jwt = await liveToken()
    const port = portOf(server.base)
    const answers = [await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` }), await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` })]
    t.same(answers.map(answer => answer.status), [200, 401], `${args[0]!}: accepted once`)
    t.equal(await stop(server), 0)
  }
})
