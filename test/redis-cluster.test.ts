/**
 * The Redis store on a real Redis Cluster: three primaries and three replicas started here on
 * loopback ports (`redis-cli --cluster create`). Replay and revocation hold whichever primary
 * each key lands on; one jti sent concurrently to two instances wins once; a request costs one
 * round trip of latency; a primary killed under load is answered 200 or 503 (never a 500, never
 * past the timeout), the guard follows the promotion without a restart, and no jti is accepted
 * twice under `replayDurability: 'replica'`. Clients that are wrong for a cluster (MOVED,
 * CROSSSLOT, READONLY) get 503, logged once per cause. Skipped with the reason without
 * redis-server and redis-cli; on CI (CI=true) that is a failure.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Cluster } from 'ioredis'
import { createRedisStore, type RedisStoreOptions } from '../lib/stores/redis.js'
import { appFor } from './helpers/app.js'
import { failoverUnderLoad } from './helpers/failover.js'
import { APP_ID, NOW, NOW_MS, token } from './helpers/keys.js'
import { freePort, storeMaker, uniquePrefix } from './helpers/redis.js'
import { countWrites, keySlot, skipWithout, startCluster, type ClusterNodes, type Node } from './helpers/redis-nodes.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'

const skip = skipWithout(['redis-server', 'redis-cli'])

const prefix = uniquePrefix()
const TIMEOUT = 500

const store = storeMaker({ prefix, now: () => NOW_MS, timeout: TIMEOUT })

/** A value for `make` whose key lands in slot range `on` (0, 1, 2). */
function valueOn (on: number, key: (value: string) => string): string {
  for (;;) {
    const value = randomUUID()
    if (rangeOf(keySlot(key(value))) === on) return value
  }
}

/** Which of the three slot ranges `redis-cli --cluster create` made (0-5460, 5461-10922, 10923-16383) a slot is in. */
const rangeOf = (slot: number): number => slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2

t.test('a three-primary, three-replica cluster', { skip, timeout: 90_000 }, async (t) => {
  const cluster = await startCluster()
  t.teardown(() => cluster.stop())
  const urls = cluster.urls

  await t.test('replay and revocation, with the keys of a token on every combination of primaries', async (t) => {
    const shared = store(t, { url: urls })
    const app = await appFor(t, { replay: { store: shared }, revocation: shared })
    t.ok(shared.client instanceof Cluster, 'a url list makes a Cluster client')
    // CRC16 is linear: the slots of two keys that end in the same jti differ by a constant, so
    // the replay key and the revocation key of one jti cannot be placed independently. Each kind
    // of key is placed on each primary instead.
    for (let on = 0; on < 3; on++) {
      const jti = valueOn(on, jti => `${prefix}used:${APP_ID}:${jti}`)
      const revokedJti = valueOn(on, jti => `${prefix}revoked:jti:${jti}`)
      const sub = `user-${valueOn(on, sub => `${prefix}revoked:sub:user-${sub}`)}`
      const jwt = await token({ jti, sub, iat: NOW - 10 })
      t.equal((await send(app, jwt)).status, 200, `primary ${on}: accepted`)
      rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
      await shared.revokeToken(revokedJti, NOW + 600)
      rejected(t, await send(app, await token({ jti: revokedJti })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
      await shared.revokeSubject(sub, NOW)
      rejected(t, await send(app, await token({ sub, iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
      t.equal((await send(app, await token({ sub, iat: NOW }))).status, 200, `primary ${on}: issued at issuedBefore is not revoked`)
    }
  })

  await t.test('200 tokens spread over the slots: each accepted once', async (t) => {
    const app = await appFor(t, { replay: { store: store(t, { url: urls }) } })
    const tokens = await Promise.all(Array.from({ length: 200 }, () => token()))
    const first = await Promise.all(tokens.map(jwt => send(app, jwt)))
    t.same(first.map(answer => answer.status), tokens.map(() => 200), 'every first use accepted')
    const again = await Promise.all(tokens.map(jwt => send(app, jwt)))
    t.same(again.map(answer => answer.code), tokens.map(() => 'VJG_TOKEN_REPLAYED'), 'every second use refused')
  })

  await t.test('one jti sent 20 times concurrently to two instances: accepted exactly once', async (t) => {
    for (const replayDurability of ['leader', 'replica'] as const) {
      const a = await appFor(t, { replay: { store: store(t, { url: urls, replayDurability }) } })
      const b = await appFor(t, { replay: { store: store(t, { url: urls, replayDurability }) } })
      const jwt = await token()
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 === 0 ? a : b, jwt)))
      t.equal(answers.filter(x => x.status === 200).length, 1, `${replayDurability}: one 200`)
      for (const answer of answers.filter(x => x.status !== 200)) rejected(t, answer, 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
    }
  })

  await t.test('round trips per request: one pipeline on one node, each command to its own slot on a cluster', async (t) => {
    const ports = new Set(cluster.nodes.map(node => node.port))
    const shared = store(t, { url: urls })
    const app = await appFor(t, { replay: { store: shared }, revocation: shared })
    t.equal((await send(app, await token())).status, 200, 'connected')
    const tokens = await Promise.all(Array.from({ length: 50 }, () => token({ sub: `user-${randomUUID()}` })))
    const counted = await countWrites(ports, async () => { for (const jwt of tokens) await send(app, jwt) })
    // The SET of the replay record, the GET of the jti entry and the GET of the subject entry,
    // sent together to their slots' primaries: three writes, one round trip of latency.
    // A few more writes than requests: ioredis refreshes its slot map now and then.
    t.equal(Math.round(counted.writes / tokens.length), 3, `replay and revocation on a cluster: ${counted.writes / tokens.length} writes per request, sent at once`)
    t.comment(`cluster: ${counted.writes} writes for ${tokens.length} requests, over ${counted.sockets} connections`)

    const replayOnly = await appFor(t, { replay: { store: store(t, { url: urls }) } })
    t.equal((await send(replayOnly, await token())).status, 200, 'connected')
    const more = await Promise.all(Array.from({ length: 50 }, () => token()))
    const replayCount = await countWrites(ports, async () => { for (const jwt of more) await send(replayOnly, jwt) })
    t.equal(Math.round(replayCount.writes / more.length), 1, `replay alone: ${replayCount.writes / more.length} writes per request`)
  })

  await t.test('clients that are wrong for a cluster: 503, never a 500, and logged once per cause', async (t) => {
    const { primary, replica } = await cluster.primaryOf(`${prefix}x`)
    const cases: Array<{ name: string, options: Partial<RedisStoreOptions>, causes: string[] }> = [
      // A plain client on one node: keys of other slots are MOVED, two keys of different slots CROSSSLOT.
      { name: 'one node as if it were the whole Redis', options: { url: `redis://127.0.0.1:${primary.port}` }, causes: ['CROSSSLOT', 'MOVED'] },
      // A replica answers a write with MOVED (to its primary) in a cluster.
      { name: 'a replica', options: { url: `redis://127.0.0.1:${replica.port}` }, causes: ['CROSSSLOT', 'MOVED'] }
    ]
    for (const { name, options, causes } of cases) {
      const lines: Array<{ cause: unknown }> = []
      const wrong = store(t, { ...options, logger: { warn: (object) => { lines.push(object as { cause: unknown }) } } })
      const app = await appFor(t, { replay: { store: wrong }, revocation: wrong })
      let refused = 0
      for (let i = 0; i < 12; i++) {
        const answer = await send(app, await token({ sub: `user-${i}` }))
        if (answer.status === 503) {
          refused++
          rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
        } else {
          t.equal(answer.status, 200, `${name}: a token whose keys all live on this node is served`)
        }
      }
      t.ok(refused > 0, `${name}: ${refused} of 12 refused`)
      const logged = lines.map(line => line.cause)
      t.same([...new Set(logged)].length, logged.length, `${name}: each cause logged once (${logged.join(', ')})`)
      t.ok(logged.every(cause => causes.includes(cause as string)), `${name}: the causes are the Redis errors`)
    }
  })

  await t.test('a primary killed under load', async (t) => {
    for (const [replayDurability, stall] of [['leader', true], ['replica', true], ['leader', false]] as const) {
      await t.test(`${replayDurability}, ${stall ? 'its replica stalled for the last 300 ms of writes' : 'its replica in sync'}`, async (t) => {
        // The key space of one primary: every token of the run lands on the primary to be killed.
        const probe = `${prefix}used:${APP_ID}:probe`
        const { primary, replica, slots: owned } = await cluster.primaryOf(probe)
        const onPrimary = (jti: string): boolean => {
          const slot = keySlot(`${prefix}used:${APP_ID}:${jti}`)
          return owned.some(([from, to]) => slot >= from && slot <= to)
        }
        const causes = new Set<unknown>()
        const logger = { warn: (object: Record<string, unknown>) => { causes.add(object.cause) } }
        const apps = [
          await appFor(t, { replay: { store: store(t, { url: urls, replayDurability, logger }) } }),
          await appFor(t, { replay: { store: store(t, { url: urls, replayDurability, logger }) } })
        ]
        const killed = primary
        const result = await failoverUnderLoad({
          apps,
          token: () => {
            let jti: string
            do jti = randomUUID(); while (!onPrimary(jti))
            return token({ jti })
          },
          // A stopped replica would still find the primary's last writes in its socket buffer on
          // waking up: the primary also drops the link, so those writes reach no replica.
          ...(stall ? { stall: () => stallReplica(primary, replica), resume: () => { replica.resume() } } : {}),
          kill: () => killed.kill(),
          promoted: async () => {
            for (;;) {
              const role = await replica.admin.role().catch(() => []) as unknown[]
              if (role[0] === 'master') return
              await new Promise(resolve => setTimeout(resolve, 50))
            }
          },
          restart: async () => {
            const back = await killed.restart()
            cluster.nodes.splice(cluster.nodes.indexOf(killed), 1, back)
          }
        })
        t.comment(`cluster, ${replayDurability}${stall ? ', replica stalled' : ''}: ${JSON.stringify(result)}, failures: ${[...causes].join(', ')}`)
        t.same(Object.keys(result.statuses).filter(status => !['200', '401', '503'].includes(status)), [], `only 200, 401 and 503 (${JSON.stringify(result.statuses)})`)
        t.ok(result.slowest < TIMEOUT + 1000, `no request past the store timeout and a margin (${result.slowest} ms)`)
        t.not(result.recoveredAfter, null, `recovered without a restart, ${String(result.recoveredAfter)} ms after the kill (promotion after ${result.promotedAfter} ms)`)
        t.same(Object.keys(result.resent).filter(status => status !== '200' && status !== '401'), [], `sent again: 401, or 200 when the record was lost (${JSON.stringify(result.resent)})`)
        if (replayDurability === 'replica') t.equal(result.acceptedTwice, 0, `replica: no jti accepted twice (of ${result.accepted})`)
        else if (stall) t.ok(result.acceptedTwice > 0, `leader: the writes the stalled replica missed were accepted again (${result.acceptedTwice} of ${result.accepted})`)
        // Back to three primaries with a replica each before the next run.
        await waitForReplicas(cluster)
      })
    }
  })
})

/** The replica stops reading, and its primary drops the replication link: what the primary writes now, no replica has. */
async function stallReplica (primary: Node, replica: Node): Promise<void> {
  replica.pause()
  await primary.admin.call('CLIENT', 'KILL', 'TYPE', 'replica')
}

async function waitForReplicas (cluster: ClusterNodes): Promise<void> {
  const until = Date.now() + 15_000
  for (;;) {
    const roles = await Promise.all(cluster.nodes.map(node => node.admin.info('replication').catch(() => '')))
    if (roles.filter(text => text.includes('role:slave') && text.includes('master_link_status:up')).length === 3) return
    if (Date.now() > until) throw new Error('the cluster did not get its three replicas back')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

t.test('cluster or Sentinel addresses that answer nothing: the first request is 503 within the timeout', { skip }, async (t) => {
  const [a, b] = [await freePort(), await freePort()]
  const cases: Array<[string, Partial<RedisStoreOptions>]> = [
    ['cluster', { url: [`redis://127.0.0.1:${a}`, `redis://127.0.0.1:${b}`] }],
    ['sentinels', { sentinels: [{ host: '127.0.0.1', port: a }, { host: '127.0.0.1', port: b }], name: 'nobody' }]
  ]
  for (const [name, options] of cases) {
    const started = Date.now()
    const nowhere = store(t, { ...options, timeout: 300 })
    t.ok(Date.now() - started < 100, `${name}: created at once`)
    const app = await appFor(t, { replay: { store: nowhere }, revocation: nowhere })
    const answer = await send(app, await token())
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed >= 250 && answer.elapsed < 1200, `${name}: answered after the 300 ms timeout (${answer.elapsed} ms)`)
    await t.rejects(nowhere.revokeToken('x', NOW + 60), { name: 'StoreTimeoutError' }, `${name}: a revocation call times out too`)
  }
})

t.test('cluster, Sentinel and durability options are checked', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['an empty url list', { url: [] }],
    ['a url list with a non-URL', { url: ['redis://127.0.0.1:7000', '127.0.0.1:7001'] }],
    ['a url list of two schemes', { url: ['redis://127.0.0.1:7000', 'rediss://127.0.0.1:7001'] }],
    ['sentinels without name', { sentinels: [{ host: '127.0.0.1', port: 26379 }] }],
    ['sentinels with a bad port', { sentinels: [{ host: '127.0.0.1', port: 0 }], name: 'x' }],
    ['sentinels empty', { sentinels: [], name: 'x' }],
    ['name without sentinels', { url: 'redis://127.0.0.1:6379', name: 'x' }],
    ['url and sentinels', { url: 'redis://127.0.0.1:6379', sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'x' }],
    ['replayDurability "all"', { url: 'redis://127.0.0.1:6379', replayDurability: 'all' }],
    ['a logger without warn', { url: 'redis://127.0.0.1:6379', logger: {} }]
  ]
  for (const [name, options] of cases) t.throws(() => createRedisStore(options as never), { name: 'TypeError', code: 'VJG_INVALID_OPTION' }, name)
})
