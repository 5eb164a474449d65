/**
 * Replay protection with the in-memory store: off by default, a jti accepted once until the
 * token's effective expiry (plus the clock tolerance), cache hits included, bounded, and
 * fail-closed (503) when the store fails or hangs unless failOpen.
 */
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import express from 'express'
import t from 'tap'
import { expressVonageJwt } from '../lib/express.js'
import { createMemoryStore, type GuardStore } from '../lib/index.js'
import { buildApp } from './helpers/app.js'
import { APP_ID, keys, NOW, NOW_MS, token } from './helpers/keys.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'
import { bearer } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import { expressApp, withServer, type ExpressFactory } from './helpers/scenarios.js'

const express4 = createRequire(import.meta.url)('express4') as ExpressFactory

t.test('off by default: a Client SDK token is reused for many requests', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const jwt = await token()
  for (let i = 0; i < 3; i++) t.equal((await send(app, jwt)).status, 200, `request ${i + 1}`)
})

t.test('replay: true accepts a jti once, with and without the verified-token cache', async (t) => {
  for (const cache of [{ max: 100 }, false] as const) {
    await t.test(`cache ${JSON.stringify(cache)}`, async (t) => {
      const app = await buildApp({ replay: true, cache })
      t.teardown(() => app.close())
      const jwt = await token()
      t.equal((await send(app, jwt)).status, 200, 'first use')
      rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
      rejected(t, await send(app, jwt, '/v1/conversations/x'), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
      t.equal((await send(app, await token())).status, 200, 'another jti is another token')
    })
  }
})

t.test('a token without jti cannot be replay-protected: 401 VJG_CLAIM_MISSING', async (t) => {
  const app = await buildApp({ replay: true, requiredClaims: ['application_id', 'iat'] })
  t.teardown(() => app.close())
  rejected(t, await send(app, await token({ jti: undefined })), 401, 'VJG_CLAIM_MISSING', INVALID_TOKEN)
  const withoutReplay = await buildApp({ requiredClaims: ['application_id', 'iat'] })
  t.teardown(() => withoutReplay.close())
  t.equal((await send(withoutReplay, await token({ jti: undefined }))).status, 200, 'fine when replay is off')
})

t.test('the jti is scoped by application_id: one application cannot burn another one\'s jti', async (t) => {
  const app = await buildApp({ replay: true, publicKey: undefined, publicKeys: { [APP_ID]: keys.publicPem, 'other-app': keys.publicPem } })
  t.teardown(() => app.close())
  t.equal((await send(app, await token({ jti: 'shared', application_id: 'other-app' }))).status, 200)
  t.equal((await send(app, await token({ jti: 'shared' }))).status, 200, 'same jti, another application')
  rejected(t, await send(app, await token({ jti: 'shared' })), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
})

t.test('application_id and jti are kept apart: "app\\0x" + "y" is not "app" + "x\\0y"', async (t) => {
  // Both tokens verify with the one key; a store keying `application_id NUL jti` saw one record.
  const first = await token({ application_id: 'app\0x', jti: 'y' })
  const second = await token({ application_id: 'app', jti: 'x\0y' })
  const statuses = async (send: (jwt: string) => Promise<number>): Promise<number[]> => [await send(first), await send(second), await send(second)]

  const fastify = await buildApp({ replay: true })
  t.teardown(() => fastify.close())
  t.same(await statuses(async jwt => (await fastify.inject({ url: '/v1/users', headers: bearer(jwt) })).statusCode), [200, 200, 401], 'fastify')
  for (const [name, factory] of [['express 5', express as unknown as ExpressFactory], ['express 4', express4]] as const) {
    const app = expressApp(factory, { replay: true })
    t.same(await withServer(app, port => statuses(async jwt => (await rawRequest(port, '/v1/users', bearer(jwt))).status)), [200, 200, 401], name)
  }
})

t.test('20 concurrent requests with one token: exactly one is accepted', async (t) => {
  const app = await buildApp({ replay: true })
  t.teardown(() => app.close())
  const jwt = await token()
  const answers = await Promise.all(Array.from({ length: 20 }, () => send(app, jwt)))
  t.equal(answers.filter(a => a.status === 200).length, 1, 'one 200')
  const refused = answers.filter(a => a.status !== 200)
  t.equal(refused.length, 19)
  t.ok(refused.every(a => a.status === 401 && a.code === 'VJG_TOKEN_REPLAYED' && a.challenge?.startsWith(INVALID_TOKEN)), '19 x 401 VJG_TOKEN_REPLAYED')
})

t.test('the jti is remembered until the effective expiry plus the tolerance, then the token is simply expired', async (t) => {
  let clock = NOW_MS
  const app = await buildApp({ replay: true, now: () => clock })
  t.teardown(() => app.close())
  const jwt = await token({ iat: NOW, exp: NOW + 60 })
  t.equal((await send(app, jwt)).status, 200)
  clock = (NOW + 60 + 29) * 1000
  rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
  clock = (NOW + 60 + 30) * 1000
  rejected(t, await send(app, jwt), 401, 'VJG_TOKEN_EXPIRED', INVALID_TOKEN)
})

t.test('a full memory store refuses new jtis (503) instead of forgetting live ones, and frees expired ones', async (t) => {
  let clock = NOW_MS
  const store = createMemoryStore({ max: 2, now: () => clock })
  const app = await buildApp({ replay: { store }, now: () => clock })
  t.teardown(() => app.close())
  const first = await token({ iat: NOW, exp: NOW + 60 })
  t.equal((await send(app, first)).status, 200)
  t.equal((await send(app, await token({ iat: NOW, exp: NOW + 600 }))).status, 200)
  t.equal(store.size, 2)
  rejected(t, await send(app, await token({ iat: NOW, exp: NOW + 600 })), 503, 'VJG_UNAVAILABLE', REALM)
  rejected(t, await send(app, first), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)

  clock = (NOW + 91) * 1000
  t.equal((await send(app, await token({ iat: NOW + 90, exp: NOW + 600 }))).status, 200, 'the expired entry made room')
  t.equal(store.size, 2)
})

t.test('a store that fails or hangs: 503 within stateTimeout, or accepted with failOpen', async (t) => {
  const failing: GuardStore = {
    check: () => { throw new Error('connection refused') },
    revokeToken: () => {},
    revokeSubject: () => {}
  }
  const hanging: GuardStore = {
    check: () => new Promise(() => {}),
    revokeToken: () => {},
    revokeSubject: () => {}
  }
  const cases = [
    { name: 'throwing store', store: failing, failOpen: false },
    { name: 'hanging store', store: hanging, failOpen: false },
    { name: 'throwing store, failOpen', store: failing, failOpen: true },
    { name: 'hanging store, failOpen', store: hanging, failOpen: true }
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const app = await buildApp({ replay: { store: c.store }, failOpen: c.failOpen, stateTimeout: 200 })
      t.teardown(() => app.close())
      const answer = await send(app, await token())
      if (c.failOpen) {
        t.equal(answer.status, 200, 'failOpen lets the request through')
      } else {
        rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
      }
      t.ok(answer.elapsed < 2000, `answered in ${answer.elapsed} ms`)
    })
  }
})

t.test('Express: the same store shared with a Fastify instance, the same answers', async (t) => {
  const store = createMemoryStore({ now: () => NOW_MS })
  const fastify = await buildApp({ replay: { store } })
  t.teardown(() => fastify.close())
  const app = express()
  app.set('env', 'test') // finalhandler would print the replayed token's GuardError stack to stderr otherwise
  app.use(expressVonageJwt({ publicKey: keys.publicPem, now: () => NOW_MS, replay: { store } }))
  app.get('/v1/users', (_req, res) => { res.json({ ok: true }) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/users`

  const jwt = await token()
  const first = await fetch(url, { headers: { authorization: `Bearer ${jwt}` } })
  t.equal(first.status, 200, 'first use, through Express')
  const again = await fetch(url, { headers: { authorization: `Bearer ${jwt}` } })
  t.equal(again.status, 401, 'replayed through Express')
  t.ok(again.headers.get('www-authenticate')?.startsWith(INVALID_TOKEN), 'challenge')
  rejected(t, await send(fastify, jwt), 401, 'VJG_TOKEN_REPLAYED', INVALID_TOKEN)
})

t.test('options are checked at registration', async (t) => {
  const cases: Array<{ options: Record<string, unknown>, option: string }> = [
    { options: { replay: 'yes' }, option: 'replay' },
    { options: { replay: { store: {} } }, option: 'replay' },
    { options: { replay: { store: createMemoryStore(), extra: 1 } }, option: 'replay' },
    { options: { failOpen: 'no' }, option: 'failOpen' },
    { options: { stateTimeout: 0 }, option: 'stateTimeout' },
    { options: { stateTimeout: 1.5 }, option: 'stateTimeout' }
  ]
  for (const c of cases) {
    await t.rejects(buildApp(c.options), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: c.option }, JSON.stringify(c.options))
  }
  t.throws(() => createMemoryStore({ max: 0 }), TypeError)
})
