/**
 * Revocation: the isRevoked hook (sync, async, throwing, hanging, on cache hits) and the memory
 * revocation store (by jti, by subject and issuedBefore, entries expiring on their own), in the
 * pipeline order of SPEC 9 (after the signature and claims, before the ACL).
 */
import t from 'tap'
import { createMemoryStore, type GuardStore } from '../lib/index.js'
import { buildApp } from './helpers/app.js'
import { NOW, NOW_MS, otherKeys, token } from './helpers/keys.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'

t.test('isRevoked decides, sync or async, and sees the claims and the request', async (t) => {
  const seen: Array<{ jti: unknown, url: unknown }> = []
  const revokedJti = 'revoked-jti'
  const cases = [
    { name: 'sync', hook: (claims: { jti?: string }) => claims.jti === revokedJti },
    { name: 'async', hook: async (claims: { jti?: string }) => claims.jti === revokedJti }
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const app = await buildApp({
        isRevoked: (claims, request) => {
          seen.push({ jti: claims.jti, url: (request as { url: string }).url })
          return c.hook(claims)
        }
      })
      t.teardown(() => app.close())
      rejected(t, await send(app, await token({ jti: revokedJti })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
      t.equal((await send(app, await token({ jti: 'fine' }), '/v1/users/abc')).status, 200)
      t.same(seen.slice(-2), [{ jti: revokedJti, url: '/v1/users' }, { jti: 'fine', url: '/v1/users/abc' }])
    })
  }
})

t.test('isRevoked runs on every request, cache hits included', async (t) => {
  let revoked = false
  const app = await buildApp({ isRevoked: () => revoked })
  t.teardown(() => app.close())
  const jwt = await token()
  t.equal((await send(app, jwt)).status, 200)
  revoked = true
  rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
})

t.test('a hook that throws, hangs or answers a non-boolean: 503 (never a 500, never a hang), or accepted with failOpen', async (t) => {
  const hooks = [
    { name: 'throws', hook: () => { throw new Error('database down') } },
    { name: 'rejects', hook: async () => { throw new Error('database down') } },
    { name: 'hangs', hook: () => new Promise<boolean>(() => {}) },
    { name: 'returns undefined', hook: (() => undefined) as unknown as () => boolean }
  ]
  for (const h of hooks) {
    for (const failOpen of [false, true]) {
      await t.test(`${h.name}${failOpen ? ', failOpen' : ''}`, async (t) => {
        const app = await buildApp({ isRevoked: h.hook, failOpen, stateTimeout: 150 })
        t.teardown(() => app.close())
        const answer = await send(app, await token())
        if (failOpen) t.equal(answer.status, 200)
        else rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
        t.ok(answer.elapsed < 2000, `answered in ${answer.elapsed} ms`)
      })
    }
  }
})

t.test('order: signature and claims first (the hook never sees an unverified token), the ACL after', async (t) => {
  let calls = 0
  const app = await buildApp({ isRevoked: () => { calls++; return true } })
  t.teardown(() => app.close())
  rejected(t, await send(app, await token({}, { key: otherKeys.privateKey })), 401, 'VJG_SIGNATURE_INVALID', INVALID_TOKEN)
  rejected(t, await send(app, await token({ iat: NOW - 1000, exp: NOW - 100 })), 401, 'VJG_TOKEN_EXPIRED', INVALID_TOKEN)
  t.equal(calls, 0, 'not called for a token that does not verify')
  rejected(t, await send(app, await token(), '/v1/not-granted'), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  t.equal(calls, 1)
})

t.test('a revocation store: by jti, and by subject for tokens issued before an instant', async (t) => {
  const store = createMemoryStore({ now: () => NOW_MS })
  const app = await buildApp({ revocation: store })
  t.teardown(() => app.close())

  store.revokeToken('stolen', NOW + 890)
  rejected(t, await send(app, await token({ jti: 'stolen' })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  t.equal((await send(app, await token({ jti: 'another' }))).status, 200)

  store.revokeSubject('alice', NOW - 5)
  const rows = [
    { name: 'alice, issued before', claims: { sub: 'alice', iat: NOW - 10 }, status: 401 },
    { name: 'alice, issued at issuedBefore', claims: { sub: 'alice', iat: NOW - 5 }, status: 200 },
    { name: 'alice, issued after', claims: { sub: 'alice', iat: NOW }, status: 200 },
    { name: 'bob', claims: { sub: 'bob', iat: NOW - 10 }, status: 200 },
    { name: 'no sub', claims: { iat: NOW - 10 }, status: 200 }
  ]
  for (const row of rows) {
    const answer = await send(app, await token(row.claims))
    if (row.status === 200) t.equal(answer.status, 200, row.name)
    else rejected(t, answer, 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  }

  // An earlier issuedBefore does not shorten the revocation.
  store.revokeSubject('alice', NOW - 100)
  rejected(t, await send(app, await token({ sub: 'alice', iat: NOW - 10 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
})

t.test('a token without iat whose subject is revoked counts as revoked', async (t) => {
  const store = createMemoryStore({ now: () => NOW_MS })
  const app = await buildApp({ revocation: store, requiredClaims: ['application_id', 'jti'] })
  t.teardown(() => app.close())
  store.revokeSubject('carol', NOW - 5)
  rejected(t, await send(app, await token({ sub: 'carol', iat: undefined, exp: NOW + 60 })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  t.equal((await send(app, await token({ sub: 'dave', iat: undefined, exp: NOW + 60 }))).status, 200)
})

t.test('revocations expire on their own: at expiresAt (plus 300 s), or issuedBefore + maxLifetime (plus 300 s)', async (t) => {
  let clock = NOW_MS
  const store = createMemoryStore({ max: 1, maxLifetime: 3600, now: () => clock })
  store.revokeToken('j1', NOW + 60)
  t.throws(() => store.revokeToken('j2', NOW + 60), { name: 'StoreFullError' }, 'full while j1 is live')
  clock = (NOW + 60 + 300) * 1000
  t.doesNotThrow(() => store.revokeToken('j2', NOW + 1000), 'j1 expired and made room')

  store.revokeSubject('erin', NOW)
  t.throws(() => store.revokeSubject('frank', NOW), { name: 'StoreFullError' })
  clock = (NOW + 3600 + 300) * 1000
  t.doesNotThrow(() => store.revokeSubject('frank', NOW + 3600), 'erin expired and made room')
})

t.test('one store for replay and revocation answers both in one call', async (t) => {
  const store = createMemoryStore({ now: () => NOW_MS })
  let checks = 0
  const counting: GuardStore = { ...store, check: (query) => { checks++; return store.check(query) } }
  const app = await buildApp({ replay: { store: counting }, revocation: counting })
  t.teardown(() => app.close())
  const jwt = await token({ jti: 'once' })
  t.equal((await send(app, jwt)).status, 200)
  t.equal(checks, 1, 'one call per request')
  rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
  store.revokeToken('once', NOW + 890)
  rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  t.equal(checks, 3)
})

t.test('a definite answer wins over a failed check; failOpen skips only the failed one', async (t) => {
  const failing: GuardStore = { check: () => { throw new Error('down') }, revokeToken: () => {}, revokeSubject: () => {} }
  const revoking = await buildApp({ replay: { store: failing }, isRevoked: () => true })
  t.teardown(() => revoking.close())
  rejected(t, await send(revoking, await token()), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)

  const replaying = await buildApp({ replay: true, isRevoked: () => { throw new Error('down') }, failOpen: true })
  t.teardown(() => replaying.close())
  const jwt = await token()
  t.equal((await send(replaying, jwt)).status, 200)
  rejected(t, await send(replaying, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
})

t.test('options are checked at registration', async (t) => {
  const cases: Array<{ options: Record<string, unknown>, option: string }> = [
    { options: { isRevoked: true }, option: 'isRevoked' },
    { options: { revocation: {} }, option: 'revocation' },
    { options: { revocation: { check: () => ({}) } }, option: 'revocation' },
    // A revoked subject's token could outlive an entry kept for 1 h when tokens may live 24 h.
    { options: { revocation: createMemoryStore({ maxLifetime: 3600 }) }, option: 'revocation' }
  ]
  for (const c of cases) {
    await t.rejects(buildApp(c.options), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: c.option }, c.option)
  }
  const app = await buildApp({ revocation: createMemoryStore({ maxLifetime: 3600 }), maxLifetime: 3600 })
  t.teardown(() => app.close())
  t.pass('a store covering maxLifetime is accepted')
  t.throws(() => createMemoryStore().revokeToken('', NOW), TypeError)
  t.throws(() => createMemoryStore().revokeSubject('x', Number.NaN), TypeError)
})

t.test('a string iat is revoked by subject exactly as the verifier read it', async (t) => {
  // The revocation check re-reads iat; it must agree with the number the verifier accepted.
  const store = createMemoryStore({ now: () => NOW_MS })
  const app = await buildApp({ revocation: store })
  t.teardown(() => app.close())
  await store.revokeSubject('alice', NOW)
  rejected(t, await send(app, await token({ sub: 'alice', iat: String(NOW - 10) })), 401, 'VJG_TOKEN_REVOKED', INVALID_TOKEN)
  t.equal((await send(app, await token({ sub: 'alice', iat: String(NOW + 5) }))).status, 200, 'issued after the revocation')
  t.equal((await send(app, await token({ sub: 'alice', iat: NOW + 5 }))).status, 200, 'the same instant as a number')
  rejected(t, await send(app, await token({ sub: 'alice', iat: `0${NOW - 10}` })), 401, 'VJG_CLAIM_INVALID', INVALID_TOKEN)
})
