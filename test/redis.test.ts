/**
 * The Redis store against a real redis-server (VJG_REDIS_URL; skipped with the reason when it is
 * not set): two Fastify instances sharing one Redis accept a token exactly once, see each
 * other's revocations, and answer 503 within the timeout when Redis is stopped, hung or absent.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisStore } from '../lib/stores/redis.js'
import { appFor, buildApp } from './helpers/app.js'
import { NOW, NOW_MS, token } from './helpers/keys.js'
import { deleteKeys, freePort, HAS_REDIS_SERVER, REDIS_URL, SKIP_REDIS, startOwnRedis, storeMaker, uniquePrefix } from './helpers/redis.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'

const skip = SKIP_REDIS
const prefix = uniquePrefix()

const store = storeMaker({ url: REDIS_URL!, prefix, now: () => NOW_MS })

t.test('instances sharing one Redis', { skip }, async (t) => {
  const admin = new Redis(REDIS_URL!)
  t.teardown(async () => {
    await deleteKeys(admin, prefix)
    await admin.quit()
  })
  t.equal(await admin.ping(), 'PONG', `redis at ${REDIS_URL}`)

  await t.test('two instances, one token sent 20 times concurrently: accepted exactly once', async (t) => {
    const a = await appFor(t, { replay: { store: store(t) } })
    const b = await appFor(t, { replay: { store: store(t) } })
    const jwt = await token()
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 === 0 ? a : b, jwt)))
    t.equal(answers.filter(x => x.status === 200).length, 1, 'one 200')
    const refused = answers.filter(x => x.status !== 200)
    t.equal(refused.length, 19)
    for (const answer of refused) rejected(t, answer, 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
    t.equal((await send(a, await token())).status, 200, 'another jti is another token')
  })

  await t.test('a lone surrogate in application_id, jti or sub: decided like any other value, never a 503', async (t) => {
    const shared = store(t)
    const app = await appFor(t, { replay: { store: shared }, revocation: shared })
    const cases: Array<Record<string, string>> = [{ application_id: 'app-\ud800' }, { jti: 'jti-\udc00' }, { sub: 'bob-\ud800x' }]
    for (const claims of cases) {
      const jwt = await token(claims)
      t.equal((await send(app, jwt)).status, 200, `${JSON.stringify(claims)}: accepted`)
      rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
    }
    await shared.revokeSubject('bob-\ud800x', NOW)
    rejected(t, await send(app, await token({ sub: 'bob-\ud800x', iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  })

  await t.test('a revocation made through one instance is seen by the other', async (t) => {
    const storeA = store(t)
    const storeB = store(t)
    const a = await appFor(t, { revocation: storeA, replay: { store: storeA } })
    const b = await appFor(t, { revocation: storeB, replay: { store: storeB } })
    t.not(storeA.client, storeB.client, 'two connections')

    await storeA.revokeToken('stolen-jti', NOW + 890)
    rejected(t, await send(b, await token({ jti: 'stolen-jti' })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)

    await storeA.revokeSubject('mallory', NOW - 5)
    rejected(t, await send(b, await token({ sub: 'mallory', iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
    t.equal((await send(b, await token({ sub: 'mallory', iat: NOW - 5 }))).status, 200, 'issued at issuedBefore: not revoked')
    t.equal((await send(a, await token({ sub: 'trent', iat: NOW - 10 }))).status, 200, 'another subject')

    // An earlier issuedBefore never shortens a revocation.
    await storeB.revokeSubject('mallory', NOW - 100)
    rejected(t, await send(a, await token({ sub: 'mallory', iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
    t.equal(await admin.get(`${prefix}revoked:sub:mallory`), String(NOW - 5))
  })

  await t.test('entries expire on their own: PX from the effective expiry, the tolerance and the margin', async (t) => {
    const shared = store(t)
    const app = await appFor(t, { replay: { store: shared } })
    t.equal((await send(app, await token({ jti: 'ttl-jti', iat: NOW - 10, exp: NOW + 90 }))).status, 200)
    const replayTtl = await admin.pttl(`${prefix}used:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee:ttl-jti`)
    t.ok(Math.abs(replayTtl - 120_000) < 2000, `replay record lives until exp + clockTolerance (${replayTtl} ms)`)

    await shared.revokeToken('ttl-revoked', NOW + 60)
    const tokenTtl = await admin.pttl(`${prefix}revoked:jti:ttl-revoked`)
    t.ok(Math.abs(tokenTtl - 360_000) < 2000, `revoked jti lives until expiresAt + 300 s (${tokenTtl} ms)`)

    await shared.revokeSubject('ttl-subject', NOW)
    const subjectTtl = await admin.pttl(`${prefix}revoked:sub:ttl-subject`)
    t.ok(Math.abs(subjectTtl - (86_400 + 300) * 1000) < 2000, `revoked subject lives until issuedBefore + maxLifetime + 300 s (${subjectTtl} ms)`)

    await shared.revokeToken('long-gone', NOW - 1000)
    t.equal(await admin.exists(`${prefix}revoked:jti:long-gone`), 0, 'a revocation already past its expiry writes nothing')
  })

  await t.test('a given client is used as is and left open', async (t) => {
    const client = new Redis(REDIS_URL!)
    t.teardown(() => client.quit())
    const given = createRedisStore({ client, prefix, now: () => NOW_MS })
    const app = await appFor(t, { replay: { store: given } })
    const jwt = await token()
    t.equal((await send(app, jwt)).status, 200)
    rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
    await given.close()
    t.equal(client.status, 'ready', 'close() leaves a given client alone')
  })

  await t.test('a hung Redis (CLIENT PAUSE): 503 within the timeout, or accepted with failOpen', async (t) => {
    const pausing = store(t, { timeout: 300 })
    const app = await appFor(t, { replay: { store: pausing } })
    const open = await appFor(t, { replay: { store: pausing }, failOpen: true })
    t.equal((await send(app, await token())).status, 200, 'connected')
    await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE')
    t.teardown(() => admin.call('CLIENT', 'UNPAUSE'))
    const answer = await send(app, await token())
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed >= 250 && answer.elapsed < 1200, `answered after the 300 ms timeout (${answer.elapsed} ms)`)
    const passed = await send(open, await token())
    t.equal(passed.status, 200, 'failOpen')
    t.ok(passed.elapsed < 1200, `failOpen answered in ${passed.elapsed} ms`)
    await admin.call('CLIENT', 'UNPAUSE')
  })
})

t.test('a port nobody listens on: 503 within the timeout, or accepted with failOpen', { skip }, async (t) => {
  const port = await freePort()
  const nowhere = createRedisStore({ url: `redis://127.0.0.1:${port}`, timeout: 300, now: () => NOW_MS })
  t.teardown(() => nowhere.close())
  for (const failOpen of [false, true]) {
    const app = await appFor(t, { replay: { store: nowhere }, revocation: nowhere, failOpen })
    const answer = await send(app, await token())
    if (failOpen) t.equal(answer.status, 200, 'failOpen')
    else rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed >= 250 && answer.elapsed < 1200, `answered after the 300 ms timeout (${answer.elapsed} ms)`)
  }
  await t.rejects(nowhere.revokeToken('x', NOW + 60), { name: 'StoreTimeoutError' }, 'a revocation call times out too')
})

t.test('a stopped Redis: 503 within the timeout, and served again once it is back', { skip: skip || (HAS_REDIS_SERVER ? false : 'redis-server is not on PATH: cannot start and stop one') }, async (t) => {
  let own = await startOwnRedis()
  t.teardown(() => own.stop())
  const stoppable = createRedisStore({ url: own.url, timeout: 300, now: () => NOW_MS })
  t.teardown(() => stoppable.close())
  const app = await appFor(t, { replay: { store: stoppable } })
  t.equal((await send(app, await token())).status, 200, 'running')
  await own.stop()
  for (let i = 0; i < 3; i++) {
    const answer = await send(app, await token())
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed < 1200, `stopped: answered in ${answer.elapsed} ms`)
  }
  own = await startOwnRedis(Number(new URL(own.url).port))
  for (let waited = 0; stoppable.client.status !== 'ready' && waited < 5000; waited += 50) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal((await send(app, await token())).status, 200, 'reconnected')
})

t.test('createRedisStore options are checked', { skip }, async (t) => {
  const cases: Array<[string, unknown]> = [
    ['neither client nor url', {}],
    ['both', { url: REDIS_URL, client: {} }],
    ['not an ioredis client', { client: { get: () => null } }],
    ['not a redis URL', { url: 'http://127.0.0.1:6379' }],
    ['timeout 0', { url: REDIS_URL, timeout: 0 }],
    ['maxLifetime 0', { url: REDIS_URL, maxLifetime: 0 }]
  ]
  for (const [name, options] of cases) t.throws(() => createRedisStore(options as never), TypeError, name)
  // A store kept for 1 h cannot serve a guard accepting 24 h tokens.
  const short = createRedisStore({ url: REDIS_URL!, maxLifetime: 3600 })
  t.teardown(() => short.close())
  await t.rejects(buildApp({ revocation: short }), { code: 'VJG_INVALID_OPTION', option: 'revocation' })
})
