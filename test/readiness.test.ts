/**
 * Readiness: `readiness(app)` and the `readyz` handlers (Fastify, Express) answer 200 only when
 * the guard's keys are loaded (a JWKS fetched at least once) and its Redis store answers PING;
 * otherwise 503 naming what is not ready, never a URL or a credential.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify from 'fastify'
import t from 'tap'
import { readiness, readyz, vonageJwtGuard } from '../lib/index.js'
import { expressVonageJwt, readyz as expressReadyz } from '../lib/express.js'
import { forwardAuth } from '../lib/forward-auth.js'
import { createRedisStore } from '../lib/stores/redis.js'
import { freePort } from './helpers/http.js'
import { keys } from './helpers/keys.js'
import { REDIS_URL, SKIP_REDIS, uniquePrefix } from './helpers/redis.js'

/** A JWKS endpoint that fails until `serving` is set. */
async function jwksEndpoint (t: Tap.Test): Promise<{ url: string, state: { serving: boolean } }> {
  const state = { serving: false }
  const server: Server = createServer((_req, res) => {
    if (!state.serving) {
      res.writeHead(500).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ ...keys.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' }] }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`, state }
}

t.test('Fastify: ready with a configured key; /readyz unguarded', async t => {
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem })
  app.get('/readyz', { config: { jwtGuard: false } }, readyz)
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready', checks: { keys: 'ok' } })
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(await readiness(app), { status: 'ready', checks: { keys: 'ok' } })
})

t.test('Fastify: a JWKS not fetched yet is not ready; the probe asks for it, and is ready once it answers', async t => {
  const jwks = await jwksEndpoint(t)
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { jwksUrl: jwks.url, jwks: { cooldown: 0, timeout: 500 } })
  app.get('/readyz', { config: { jwtGuard: false } }, readyz)
  t.teardown(() => app.close())
  const down = await app.inject({ url: '/readyz' })
  t.equal(down.statusCode, 503)
  t.equal(down.json().status, 'not ready')
  t.match(down.json().checks.keys, /no key is loaded/)
  t.notMatch(down.body, /127\.0\.0\.1|jwks\.json/, 'the URL is not shown')
  jwks.state.serving = true
  const up = await app.inject({ url: '/readyz' })
  t.equal(up.statusCode, 200, up.body)
  jwks.state.serving = false
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, 'fetched once: a later outage keeps the last good set, still ready')
})

t.test('forwardAuth and the plugin in one app: one readiness for both', async t => {
  const jwks = await jwksEndpoint(t)
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem })
  await app.register(forwardAuth, { prefix: '/auth', jwksUrl: jwks.url, jwks: { cooldown: 0, timeout: 500 } })
  t.teardown(() => app.close())
  t.equal((await readiness(app)).status, 'not ready', 'the forward-auth guard has no key yet')
  jwks.state.serving = true
  t.equal((await readiness(app)).status, 'ready')
  t.same(await readiness({}), { status: 'not ready', checks: { guard: 'no vonage-jwt-guard is registered here' } }, 'nothing registered: not ready')
})

t.test('Express: readyz(guard)', async t => {
  const jwks = await jwksEndpoint(t)
  const guard = expressVonageJwt({ jwksUrl: jwks.url, jwks: { cooldown: 0, timeout: 500 } })
  const app = express()
  app.get('/readyz', expressReadyz(guard))
  app.use(guard)
  const server = app.listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  t.teardown(() => { server.close() })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`
  const down = await fetch(url)
  t.equal(down.status, 503)
  t.match(await down.json(), { status: 'not ready', checks: { keys: /no key/ } })
  jwks.state.serving = true
  const up = await fetch(url)
  t.equal(up.status, 200)
  t.same(await up.json(), { status: 'ready', checks: { keys: 'ok' } })
})

t.test('the Redis store: ready while it answers PING, 503 naming the store when it does not, no credential shown', { skip: SKIP_REDIS }, async t => {
  const store = createRedisStore({ url: REDIS_URL!, prefix: uniquePrefix(), timeout: 300 })
  const dead = createRedisStore({ url: `redis://guard:s3cr3t-pass@127.0.0.1:${await freePort()}`, prefix: uniquePrefix(), timeout: 300 })
  t.teardown(async () => { await store.close(); await dead.close() })
  for (const [name, used, status, check] of [['up', store, 200, 'ok'], ['down', dead, 503, /no answer to PING within 300 ms/]] as const) {
    const app = Fastify({ logger: false })
    await app.register(vonageJwtGuard, { publicKey: keys.publicPem, replay: { store: used }, revocation: used, stateTimeout: 300 })
    app.get('/readyz', { config: { jwtGuard: false } }, readyz)
    const res = await app.inject({ url: '/readyz' })
    await app.close()
    t.equal(res.statusCode, status, name)
    t.match(res.json(), { checks: { keys: 'ok', store: check } }, name)
    t.notMatch(res.body, /s3cr3t|guard:|redis:/, `${name}: no URL or credential`)
  }
})
