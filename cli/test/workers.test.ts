/**
 * --workers: real processes. Two workers answer one port, a killed worker is replaced, one
 * metrics endpoint sums them, SIGTERM ends them all; replay on memory is refused with workers.
 */
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { REDIS_URL, SKIP_REDIS } from '../../test/helpers/redis.js'
import { inTurns, liveToken, metricsOf, portOf, run, sample, scrape, start, stop, waitFor } from './helpers/bin.js'

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The pids the JSON log lines of granted requests name (--log-requests). */
function answeringPids (log: string): Set<number> {
  const pids = new Set<number>()
  for (const line of log.split('\n')) {
    if (line.includes('"request completed"')) pids.add(Number(/"pid":(\d+)/.exec(line)?.[1]))
  }
  return pids
}

t.test('serve --workers 2: both answer, a killed worker is replaced, metrics are summed, SIGTERM ends all', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const server = await start(['serve', '--port', '0', '--public-key', join(dir, 'public.key'), '--workers', '2', '--metrics-port', '0', '--log-requests', '--log-level', 'info'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const pids = (/2 workers \(pids (\d+), (\d+)\)/.exec(server.stdout()) ?? []).slice(1).map(Number)
  t.equal(pids.length, 2, 'the primary names its two workers')
  const port = portOf(server.base)
  const jwt = await liveToken()

  // A new connection each time (rawRequest closes it): the primary hands them out in turn.
  for (let i = 0; i < 8; i++) t.equal((await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` })).status, 200)
  await waitFor('the log lines', () => answeringPids(server.stdout()).size === 2)
  t.same([...answeringPids(server.stdout())].sort(), [...pids].sort(), 'both workers answered')
  t.equal((await rawRequest(port, '/v1/users', {})).status, 401)

  const summed = (await scrape(metricsOf(server))).body
  t.equal(sample(summed, 'vjg_decisions_total', { result: 'granted', code: '', status: '' }), 8, 'one endpoint sums the workers')
  t.equal(sample(summed, 'vjg_decisions_total', { result: 'refused', code: 'VJG_TOKEN_MISSING', status: '401' }), 1)

  process.kill(pids[0]!, 'SIGKILL')
  await waitFor('a replacement', () => /worker \d+ was killed by SIGKILL; worker \d+ replaces it/.test(server.stderr()))
  const replacement = Number(/worker \d+ replaces it/.exec(server.stderr())![0].split(' ')[1])
  t.ok(alive(replacement), 'the replacement runs')
  await waitFor('the port to answer with both workers', async () => {
    const answers = await Promise.all([0, 1, 2, 3].map(() => rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` })))
    return answers.every(a => a.status === 200) && answeringPids(server.stdout()).has(replacement)
  })

  t.equal(await stop(server), 0, 'SIGTERM: the primary exits 0 once the workers have')
  t.notOk(alive(pids[1]!), 'the first worker is gone')
  t.notOk(alive(replacement), 'the replacement is gone')
})

t.test('a per-process store with --workers is refused: each worker would accept a token once', async t => {
  const result = await run(['serve', '--port', '0', '--public-key', keys.publicPem, '--workers', '2', '--replay'])
  t.equal(result.code, 2)
  t.match(result.stderr, /--replay \(the in-memory store\) with --workers 2 needs a shared store \(--redis-url/)
  const dir = t.testdir({
    'public.key': keys.publicPem,
    'replay.mjs': "import { createMemoryStore } from 'vonage-jwt-guard'\nexport default { publicKey: { file: 'public.key' }, replay: { store: createMemoryStore() } }\n",
    'revocation.mjs': "import { createMemoryStore } from 'vonage-jwt-guard'\nexport default { publicKey: { file: 'public.key' }, revocation: createMemoryStore() }\n",
    'own.mjs': "export default { publicKey: { file: 'public.key' }, replay: { store: { check: () => ({ replayed: false, revoked: false }), revokeToken () {}, revokeSubject () {} } } }\n"
  })
  const cases: Array<[string, RegExp]> = [
    ['replay.mjs', /replay\.store in .*replay\.mjs with --workers 2 needs a shared store/],
    ['revocation.mjs', /revocation in .*revocation\.mjs with --workers 2 needs a shared store/],
    ['own.mjs', /replay\.store in .*own\.mjs with --workers 2 needs a shared store \(--redis-url, or a store marked shared: true\)/]
  ]
  const results = await inTurns(cases, ([file]) => run(['proxy', '--upstream', 'http://127.0.0.1:1', '--port', '0', '--config', join(dir, file), '--workers', '2']))
  for (const [i, [file, message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${file}: exit 2`)
    t.match(results[i]!.stderr, message, `${file}: names the option and the file`)
  }
  const bad = await run(['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', keys.publicPem, '--workers', 'many'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--workers/)
})

t.test('--replay with --redis-url: a token is accepted once across the workers', { skip: SKIP_REDIS }, async t => {
  const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--workers', '2', '--replay', '--redis-url', REDIS_URL!, '--log-level', 'warn'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const jwt = await liveToken()
  // Four new connections: both workers see the token; the first request wins.
  const answers = []
  for (let i = 0; i < 4; i++) answers.push(await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` }))
  t.same(answers.map(a => a.status), [200, 401, 401, 401])
  t.same(answers.slice(1).map(a => JSON.parse(a.body).code), ['VJG_TOKEN_REPLAYED', 'VJG_TOKEN_REPLAYED', 'VJG_TOKEN_REPLAYED'])
  t.equal(await stop(server), 0)
})
