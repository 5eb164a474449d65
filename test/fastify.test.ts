/**
 * What only the Fastify plugin does: request.auth, the body formats, route config.jwtGuard,
 * registration errors, logging and the decorator. The SPEC section 5 table, which both adapters
 * must answer identically, runs in scenarios.test.ts (from helpers/scenarios.ts).
 */
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import vonageJwtGuard from '../lib/index.js'
import { bearer, buildApp } from './helpers/app.js'
import { APP_ID, claims, keys, NOW, NOW_MS, otherKeys, sign, token } from './helpers/keys.js'
import { REALM } from './helpers/scenarios.js'

t.test('a valid token sets request.auth with header, claims, expiresAt and grantedBy', async t => {
  const app = await buildApp()
  const tok = await token({ sub: 'alice' })
  const res = await app.inject({ url: '/v1/users/abc?x=1', headers: bearer(tok) })
  t.equal(res.statusCode, 200)
  const { auth } = res.json()
  t.equal(auth.header.alg, 'RS256')
  t.equal(auth.claims.sub, 'alice')
  t.equal(auth.expiresAt, NOW + 890)
  t.equal(auth.grantedBy, '/*/users/**')
  await app.close()
})

t.test('the default error body is Fastify-shaped', async t => {
  const app = await buildApp()
  const res = await app.inject({ url: '/v1/calls', headers: bearer(await token()) })
  t.same(res.json(), { statusCode: 403, code: 'VJG_ACL_DENIED', error: 'Forbidden', message: 'GET /v1/calls is not granted by the token acl' })
  await app.close()
})

t.test("errorFormat 'problem' answers RFC 7807 shaped like Vonage's errors", async t => {
  const app = await buildApp({ errorFormat: 'problem' })
  const denied = await app.inject({ url: '/v1/calls', headers: bearer(await token()) })
  t.equal(denied.statusCode, 403)
  t.match(denied.headers['content-type'], /^application\/problem\+json/)
  t.match(denied.headers['www-authenticate'], /error="insufficient_scope"/)
  const body = denied.json()
  t.equal(body.type, 'https://developer.vonage.com/api-errors#forbidden')
  t.equal(body.title, 'Forbidden')
  t.equal(body.code, 'VJG_ACL_DENIED')
  t.match(body.detail, '/v1/calls')
  t.type(body.instance, 'string')
  const missing = await app.inject({ url: '/v1/users' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().type, 'https://developer.vonage.com/api-errors#unauthorized')
  t.equal(missing.headers['www-authenticate'], REALM)
  await app.close()
})

t.test('unknown routes answer 401 without a token, so routes cannot be probed', async t => {
  const app = await buildApp({}, app => { app.get('/v1/users', async () => 'ok') })
  const res = await app.inject({ url: '/nothing/here' })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'VJG_TOKEN_MISSING')
  const granted = await app.inject({ url: '/v1/users/none', headers: bearer(await token()) })
  t.equal(granted.statusCode, 404, 'with a granting token the 404 shows')
  await app.close()
})

t.test('route config.jwtGuard', async t => {
  const app = await buildApp({}, app => {
    app.get('/health', { config: { jwtGuard: false } }, async (request) => ({ auth: request.auth }))
    app.get('/v1/users/me', { config: { jwtGuard: { optional: true } } }, async (request) => ({ auth: request.auth }))
    app.get('/whoami', { config: { jwtGuard: { acl: false } } }, async (request) => ({ auth: request.auth }))
    app.get('/api/v1/users/x', { config: { jwtGuard: { aclPath: '/api' } } }, async (request) => ({ auth: request.auth }))
    app.get('/api/v1/calls/x', { config: { jwtGuard: { aclPath: '/api' } } }, async (request) => ({ auth: request.auth }))
    app.get('/mapped', { config: { jwtGuard: { aclPath: () => '/v1/users/mapped' } } }, async (request) => ({ auth: request.auth }))
  })
  const tok = await token()

  const health = await app.inject({ url: '/health' })
  t.equal(health.statusCode, 200, 'false: not guarded')
  t.equal(health.json().auth, null, 'request.auth starts as null')

  const anonymous = await app.inject({ url: '/v1/users/me' })
  t.equal(anonymous.statusCode, 200, 'optional: no token is fine')
  t.equal(anonymous.json().auth, null)
  const optionalBad = await app.inject({ url: '/v1/users/me', headers: bearer(`${tok}x`) })
  t.equal(optionalBad.statusCode, 401, 'optional: a bad token is still refused')
  const optionalGood = await app.inject({ url: '/v1/users/me', headers: bearer(tok) })
  t.equal(optionalGood.json().auth.grantedBy, '/*/users/**')

  const whoami = await app.inject({ url: '/whoami', headers: bearer(tok) })
  t.equal(whoami.statusCode, 200, 'acl: false authenticates only')
  t.equal(whoami.json().auth.grantedBy, null)
  t.equal((await app.inject({ url: '/whoami' })).statusCode, 401)

  t.equal((await app.inject({ url: '/api/v1/users/x', headers: bearer(tok) })).json().auth.grantedBy, '/*/users/**', 'aclPath prefix stripped')
  t.equal((await app.inject({ url: '/api/v1/calls/x', headers: bearer(tok) })).statusCode, 403)
  t.equal((await app.inject({ url: '/mapped', headers: bearer(tok) })).statusCode, 200, 'aclPath function')
  await app.close()
})

t.test('a bad route config fails at startup, naming the option', async t => {
  const app = Fastify()
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem })
  t.throws(() => app.get('/x', { config: { jwtGuard: { optinal: true } as never } }, async () => 'x'), { code: 'VJG_INVALID_OPTION', name: 'TypeError' })
  await app.close()
})

/** A Fastify app whose log lines are kept, parsed. */
function loggedApp (): { app: ReturnType<typeof Fastify>, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  return { app: Fastify({ logger: { level: 'info', stream } }), lines }
}

t.test('a bad route config in a child plugin registered after the guard fails ready()', async t => {
  const app = Fastify()
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem })
  app.register(async (child) => {
    child.get('/x', { config: { jwtGuard: { acl: 'no' } as never } }, async () => 'x')
  })
  await t.rejects(app.ready(), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: 'config.jwtGuard of GET /x.acl' })
  await app.close()
})

t.test('a route declared before the plugin: its config is checked on its first request, and a bad one fails closed', async t => {
  // Fastify shows a plugin no route declared before it ran: onRoute missed these, and neither
  // printRoutes nor findRoute exposes a route's config. The guard still runs on them.
  const { app, lines } = loggedApp()
  let reached = 0
  app.get('/early-typo', { config: { jwtGuard: { optinal: true } as never } }, async () => { reached++; return 'x' })
  app.get('/early-string', { config: { jwtGuard: 'off' as never } }, async () => { reached++; return 'x' })
  app.get('/early-optional', { config: { jwtGuard: { optional: true } } }, async (request) => ({ auth: request.auth }))
  app.get('/early-open', { config: { jwtGuard: false } }, async () => 'open')
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  await app.ready()

  for (const url of ['/early-typo', '/early-typo', '/early-string']) {
    for (const headers of [{}, bearer(await token())]) {
      const res = await app.inject({ url, headers })
      t.equal(res.statusCode, 503, `${url}: 503, never a 500 and never the handler`)
      t.equal(res.json().code, 'VJG_UNAVAILABLE')
      t.equal(res.json().message, 'The guard is misconfigured for this request (see the server log)', 'the client learns nothing of the configuration')
      t.equal(res.headers['www-authenticate'], REALM)
    }
  }
  t.equal(reached, 0, 'the handler never ran')
  const logged = lines.filter(l => l.level === 50 && typeof l.msg === 'string' && l.msg.startsWith('vonage-jwt-guard:'))
  t.equal(logged.length, 6, 'each refusal is logged at error')
  t.match(logged[0]!.msg, 'option "config.jwtGuard of GET /early-typo.optinal" is not a route option', 'the log names the route and the option')
  t.equal(logged[0]!.err.code, 'VJG_INVALID_OPTION')
  t.match(logged[4]!.msg, 'option "config.jwtGuard of GET /early-string" must be false or', 'a primitive config too')

  const anonymous = await app.inject({ url: '/early-optional' })
  t.equal(anonymous.statusCode, 200, 'a good config declared early works: optional')
  t.equal(anonymous.json().auth, null)
  t.equal((await app.inject({ url: '/early-open' })).statusCode, 200, 'jwtGuard: false declared early works')
  await app.close()
})

t.test('a register() not awaited before the routes: the same first-request check', async t => {
  const app = Fastify({ logger: false })
  app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  app.get('/x', { config: { jwtGuard: { acl: 'no' } as never } }, async () => 'x')
  await app.ready()
  const res = await app.inject({ url: '/x', headers: bearer(await token()) })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'VJG_UNAVAILABLE')
  await app.close()
})

t.test('an aclPath function that answers no path: 503 to the client, the mistake logged at error', async t => {
  const { app, lines } = loggedApp()
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, aclPath: (() => undefined) as never })
  app.get('/*', async () => 'x')
  app.get('/mapped', { config: { jwtGuard: { aclPath: (_request, path) => path.slice(1) } } }, async () => 'x')
  await app.ready()
  const tok = await token()
  for (const [url, option] of [['/v1/users', 'aclPath'], ['/mapped', 'config.jwtGuard of GET /mapped.aclPath']] as const) {
    const res = await app.inject({ url, headers: bearer(tok) })
    t.equal(res.statusCode, 503, url)
    t.equal(res.json().code, 'VJG_UNAVAILABLE')
    const entry = lines.find(l => l.level === 50 && l.err?.option === option)
    t.ok(entry, `${url}: logged at error naming ${option}`)
    t.match(entry?.msg, /returned (undefined|a string that does not start with "\/")/)
  }
  await app.close()
})

t.test('identityHeaders: a claim no header can carry is refused while verifying, in the configured realm and format', async t => {
  const alice = await token({ sub: 'al\u00efce' })
  const plain = await buildApp()
  t.equal((await plain.inject({ url: '/v1/users/abc', headers: bearer(alice) })).statusCode, 200, 'off by default')
  await plain.close()
  const app = await buildApp({ identityHeaders: true, realm: 'custom', errorFormat: 'problem' })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/v1/users/abc', headers: bearer(alice) })
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'VJG_CLAIM_INVALID')
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(res.headers['www-authenticate'], /^Bearer realm="custom", error="invalid_token", error_description="/)
  t.equal((await app.inject({ url: '/v1/users/abc', headers: bearer(await token({ sub: 'alice' })) })).statusCode, 200)
})

t.test("Fastify's own register options (prefix, logLevel) are not taken for the guard's", async t => {
  const app = Fastify({ logger: false })
  await app.register(async (scope) => {
    await scope.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, prefix: '/api', logLevel: 'warn' } as never)
    scope.get('/users/:id', async () => 'ok') // /api/users/abc: granted by /*/users/**
  }, { prefix: '/api' })
  await app.ready()
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/api/users/abc', headers: bearer(await token()) })).statusCode, 200)
  t.equal((await app.inject({ url: '/api/users/abc' })).statusCode, 401)
})

t.test('bad options make register() reject with a TypeError naming the option', async t => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['publicKey', {}],
    ['clockTolerance', { publicKey: keys.publicPem, clockTolerance: 301 }],
    ['lifetimePolicy', { publicKey: keys.publicPem, lifetimePolicy: 'sometimes' }],
    ['algorithms', { publicKey: keys.publicPem, algorithms: ['HS256'] }],
    ['algorithms', { publicKey: keys.publicPem, algorithms: ['none'] }],
    ['publicKeyy', { publicKey: keys.publicPem, publicKeyy: 1 }]
  ]
  for (const [option, options] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(vonageJwtGuard, options as never).ready() }, { name: 'TypeError', code: 'VJG_INVALID_OPTION', option }, option)
  }
})

t.test('rejections are logged at info with the code, never the token', async t => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  app.get('/*', async () => 'ok')
  const tok = await token({ iat: NOW - 5000, exp: NOW - 4000 })
  await app.inject({ url: '/v1/users', headers: bearer(tok) })
  const entry = lines.map(l => JSON.parse(l)).find(l => l.code === 'VJG_TOKEN_EXPIRED')
  t.ok(entry, 'a log line carries the code')
  t.equal(entry.level, 30, 'at info')
  t.notOk(lines.join('').includes(tok.split('.')[2]!), 'the token is never logged')
  await app.close()
})

t.test('fastify.jwtGuard decorator verifies and authenticates', async t => {
  const app = await buildApp({}, app => {
    app.get('/manual', { config: { jwtGuard: false }, onRequest: app.jwtGuard.authenticate }, async (request) => ({ auth: request.auth }))
  })
  const tok = await token({ acl: undefined })
  const verified = await app.jwtGuard.verify(tok)
  t.equal(verified.claims.application_id, APP_ID)
  t.equal((await app.inject({ url: '/manual' })).statusCode, 401)
  t.equal((await app.inject({ url: '/manual', headers: bearer(tok) })).json().auth.grantedBy, null)
  await app.close()
})

t.test('getToken replaces the sources', async t => {
  const tok = await token()
  const app = await buildApp({ getToken: (request) => (request.query as Record<string, string>).jwt })
  t.equal((await app.inject({ url: `/v1/users?jwt=${tok}` })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/users' })).statusCode, 401)
  await app.close()
})

t.test('a token minted with a signature over other bytes never reaches the handler', async t => {
  let reached = false
  const app = await buildApp({}, app => { app.get('/*', async () => { reached = true; return 'ok' }) })
  const forged = await sign(claims(), { key: otherKeys.privateKey })
  t.equal((await app.inject({ url: '/v1/users', headers: bearer(forged) })).statusCode, 401)
  t.notOk(reached)
  await app.close()
})
