/**
 * The Redis store through Sentinel, on real nodes started here on loopback ports: a primary, one
 * replica and a Sentinel (Debian's redis-server and redis-sentinel). The store finds the primary
 * through the Sentinels (a dead one listed first), costs one round trip per request, and follows
 * a failover without a restart: a primary killed under load is answered 200 or 503, never a 500
 * and never past the timeout, and no jti is accepted twice under `replayDurability: 'replica'`.
 * An unknown primary name is 503 within the timeout; a write to a demoted primary (READONLY) is
 * 503, logged once. Skipped with the reason without the binaries; on CI (CI=true) a failure.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { RedisStoreOptions } from '../lib/stores/redis.js'
import { appFor } from './helpers/app.js'
import { failoverUnderLoad } from './helpers/failover.js'
import { NOW, NOW_MS, token } from './helpers/keys.js'
import { freePort, storeMaker, uniquePrefix } from './helpers/redis.js'
import { countWrites, skipWithout, startSentinel, type SentinelNodes } from './helpers/redis-nodes.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'

const skip = skipWithout(['redis-server', 'redis-sentinel'])

const prefix = uniquePrefix()
const TIMEOUT = 500

const store = storeMaker({ prefix, now: () => NOW_MS, timeout: TIMEOUT })

function through (nodes: SentinelNodes, dead?: number): Partial<RedisStoreOptions> {
  const sentinels = [{ host: '127.0.0.1', port: nodes.sentinel.port }]
  if (dead !== undefined) sentinels.unshift({ host: '127.0.0.1', port: dead })
  return { sentinels, name: nodes.name }
}

t.test('a primary, a replica and a Sentinel', { skip, timeout: 60_000 }, async (t) => {
  const nodes = await startSentinel()
  t.teardown(() => nodes.stop())

  await t.test('replay and revocation through the Sentinels, one round trip per request', async (t) => {
    const shared = store(t, through(nodes, await freePort()))
    const other = store(t, through(nodes))
    const a = await appFor(t, { replay: { store: shared }, revocation: shared })
    const b = await appFor(t, { replay: { store: other }, revocation: other })
    const jwt = await token()
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 === 0 ? a : b, jwt)))
    t.equal(answers.filter(x => x.status === 200).length, 1, 'one token, 20 requests, two instances: one 200')
    await other.revokeSubject('mallory', NOW)
    rejected(t, await send(a, await token({ sub: 'mallory', iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)

    const tokens = await Promise.all(Array.from({ length: 50 }, () => token({ sub: `user-${randomUUID()}` })))
    const counted = await countWrites(new Set([nodes.primary.port, nodes.replica.port]), async () => { for (const jwt of tokens) await send(a, jwt) })
    t.equal(counted.writes / tokens.length, 1, `replay and revocation on one node: ${counted.writes / tokens.length} write per request (MGET and SET in one pipeline)`)
  })

  await t.test('replayDurability "replica": a write counts once the replica has it', async (t) => {
    const durable = store(t, { ...through(nodes), replayDurability: 'replica' })
    const app = await appFor(t, { replay: { store: durable }, revocation: durable })
    const jwt = await token()
    t.equal((await send(app, jwt)).status, 200, 'the replica acknowledged')
    rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
    await durable.revokeToken('durable-jti', NOW + 600)
    t.equal(await nodes.replica.admin.get(`${prefix}revoked:jti:durable-jti`), String(NOW + 600), 'the revocation is on the replica when revokeToken resolves')

    // The replica stops reading: no acknowledgement, so no acceptance and no revocation.
    nodes.replica.pause()
    t.teardown(() => { nodes.replica.resume() })
    const answer = await send(app, await token())
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed < TIMEOUT + 500, `refused within the timeout (${answer.elapsed} ms)`)
    await t.rejects(durable.revokeToken('lost-jti', NOW + 600), { name: 'StoreDurabilityError' }, 'a revocation no replica has rejects')
    nodes.replica.resume()
  })

  await t.test('an unknown primary name: 503 within the timeout', async (t) => {
    const unknown = store(t, { ...through(nodes), name: 'no-such-primary', timeout: 300 })
    const app = await appFor(t, { replay: { store: unknown } })
    const answer = await send(app, await token())
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed >= 250 && answer.elapsed < 1200, `answered after the 300 ms timeout (${answer.elapsed} ms)`)
  })

  await t.test('a write to a replica (a demoted primary): READONLY, 503, logged once', async (t) => {
    const lines: Array<Record<string, unknown>> = []
    const demoted = store(t, { url: `redis://127.0.0.1:${nodes.replica.port}`, logger: { warn: (object) => { lines.push(object) } } })
    const app = await appFor(t, { replay: { store: demoted } })
    for (let i = 0; i < 5; i++) rejected(t, await send(app, await token()), 503, 'VJG_UNAVAILABLE', REALM)
    t.same(lines.map(line => line.cause), ['READONLY'], 'five refusals, one line')
    t.same(Object.keys(lines[0]?.err as object), ['name', 'message'], 'the error without its command (whose key holds the jti)')
  })
})

t.test('a primary killed under load: the store follows the Sentinel to the new primary', { skip, timeout: 90_000 }, async (t) => {
  for (const [replayDurability, stall] of [['leader', true], ['replica', true], ['leader', false]] as const) {
    await t.test(`${replayDurability}, ${stall ? 'its replica stalled for the last 300 ms of writes' : 'its replica in sync'}`, async (t) => {
      const nodes = await startSentinel()
      t.teardown(() => nodes.stop())
      const { primary, replica } = nodes
      const causes = new Set<unknown>()
      const logger = { warn: (object: Record<string, unknown>) => { causes.add(object.cause) } }
      const apps = [
        await appFor(t, { replay: { store: store(t, { ...through(nodes), replayDurability, logger }) } }),
        await appFor(t, { replay: { store: store(t, { ...through(nodes), replayDurability, logger }) } })
      ]
      const result = await failoverUnderLoad({
        apps,
        token: () => token(),
        // The primary also drops the link: a stopped replica would otherwise read the last writes from its socket buffer on waking up.
        ...(stall
          ? {
              stall: async () => {
                replica.pause()
                await primary.admin.call('CLIENT', 'KILL', 'TYPE', 'replica')
              },
              resume: () => { replica.resume() }
            }
          : {}),
        kill: () => primary.kill(),
        promoted: async () => {
          // Until the failover is over: a primary back before that is taken for the primary again.
          while (!await nodes.failedOverTo(replica.port).catch(() => false)) await new Promise(resolve => setTimeout(resolve, 50))
        },
        // As an orchestrator would: back as a replica of the new primary.
        restart: async () => { await primary.restart(['--replicaof', '127.0.0.1', String(replica.port)]) }
      })
      t.comment(`sentinel, ${replayDurability}${stall ? ', replica stalled' : ''}: ${JSON.stringify(result)}, failures: ${[...causes].join(', ')}`)
      t.same(Object.keys(result.statuses).filter(status => !['200', '401', '503'].includes(status)), [], `only 200, 401 and 503 (${JSON.stringify(result.statuses)})`)
      t.ok(result.slowest < TIMEOUT + 1000, `no request past the store timeout and a margin (${result.slowest} ms)`)
      t.not(result.recoveredAfter, null, `recovered without a restart, ${String(result.recoveredAfter)} ms after the kill (promotion after ${result.promotedAfter} ms)`)
      t.same(Object.keys(result.resent).filter(status => status !== '200' && status !== '401'), [], `sent again: 401, or 200 when the record was lost (${JSON.stringify(result.resent)})`)
      if (replayDurability === 'replica') t.equal(result.acceptedTwice, 0, `replica: no jti accepted twice (of ${result.accepted})`)
      else if (stall) t.ok(result.acceptedTwice > 0, `leader: the writes the stalled replica missed were accepted again (${result.acceptedTwice} of ${result.accepted})`)
    })
  }
})
