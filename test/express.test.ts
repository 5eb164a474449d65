/**
 * What only the Express middleware does: req.auth, next(err) into Express' default handler and
 * into a user's handler, mounting (req.originalUrl), hooks with the Express request, options
 * checked at creation, the problem format, logging through req.log, and a token from Vonage's
 * own SDK. Every case runs on Express 5 and Express 4, over real sockets.
 */
import { createRequire } from 'node:module'
import express from 'express'
import { tokenGenerate } from '@vonage/jwt'
import t from 'tap'
import { expressVonageJwt, GuardError, type ExpressGuardOptions } from '../lib/express.js'
import { bearer } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import { APP_ID, keys, NOW, NOW_MS, token } from './helpers/keys.js'
import { expressApp, guardErrorHandler, INSUFFICIENT_SCOPE, INVALID_REQUEST, INVALID_TOKEN, REALM, withServer, type ExpressFactory } from './helpers/scenarios.js'

const express4 = createRequire(import.meta.url)('express4') as ExpressFactory
const versions: Array<[string, ExpressFactory]> = [['express 5', express], ['express 4', express4]]

function guard (options: Partial<ExpressGuardOptions> = {}): ReturnType<typeof expressVonageJwt> {
  return expressVonageJwt({ publicKey: keys.publicPem, now: () => NOW_MS, ...options })
}

for (const [version, factory] of versions) {
  t.test(`${version}: a valid token sets req.auth with header, claims, expiresAt and grantedBy`, async t => {
    const tok = await token({ sub: 'alice' })
    await withServer(expressApp(factory, {}), async port => {
      const res = await rawRequest(port, '/v1/users/abc?x=1', bearer(tok))
      t.equal(res.status, 200)
      const { auth } = JSON.parse(res.body)
      t.equal(auth.header.alg, 'RS256')
      t.equal(auth.header.typ, 'JWT')
      t.equal(auth.claims.sub, 'alice')
      t.equal(auth.claims.application_id, APP_ID)
      t.equal(auth.expiresAt, NOW + 890)
      t.equal(auth.grantedBy, '/*/users/**')
    })
  })

  t.test(`${version}: next(err) reaches Express' default handler with the status and the challenge`, async t => {
    const tok = await token()
    // No error handler: finalhandler reads err.status and err.headers.
    await withServer(expressApp(factory, {}, false), async port => {
      const denied = await rawRequest(port, '/v1/calls/abc', bearer(tok))
      t.equal(denied.status, 403)
      t.ok(denied.headers['www-authenticate']!.startsWith(INSUFFICIENT_SCOPE), `challenge ${denied.headers['www-authenticate']}`)
      t.notMatch(denied.body, /eyJ/, 'the body never holds the token')

      const missing = await rawRequest(port, '/v1/users')
      t.equal(missing.status, 401)
      t.equal(missing.headers['www-authenticate'], REALM)

      const expired = await rawRequest(port, '/v1/users', bearer(await token({ iat: NOW - 5000, exp: NOW - 4000 })))
      t.equal(expired.status, 401)
      t.ok(expired.headers['www-authenticate']!.startsWith(INVALID_TOKEN))

      const path = await rawRequest(port, '/v1/users/../calls', bearer(tok))
      t.equal(path.status, 400)
      t.ok(path.headers['www-authenticate']!.startsWith(INVALID_REQUEST))
    })
  })

  t.test(`${version}: a user's error handler gets the GuardError itself, once`, async t => {
    const seen: unknown[] = []
    let reached = false
    const app = factory()
    app.use(guard())
    app.use((_req, res) => { reached = true; res.send('ok') })
    app.use((err: unknown, req: express.Request, res: express.Response, next: express.NextFunction) => {
      seen.push(err)
      guardErrorHandler(err, req, res, next)
    })
    await withServer(app, async port => {
      const res = await rawRequest(port, '/v1/calls', bearer(await token()))
      t.equal(res.status, 403)
      t.same(JSON.parse(res.body), { statusCode: 403, code: 'VJG_ACL_DENIED', error: 'Forbidden', message: 'GET /v1/calls is not granted by the token acl' })
    })
    t.notOk(reached, 'the handler after the guard never ran')
    t.equal(seen.length, 1, 'the error handler ran once')
    const err = seen[0] as GuardError
    t.ok(err instanceof GuardError)
    t.equal(err.code, 'VJG_ACL_DENIED')
    t.equal(err.status, 403)
    t.equal(err.statusCode, 403)
    t.equal(err.expose, true)
    t.ok(err.headers['www-authenticate']!.startsWith(INSUFFICIENT_SCOPE))
  })

  t.test(`${version}: mounted with app.use('/api', router), the ACL sees req.originalUrl`, async t => {
    const tok = await token()
    const app = factory()
    const plain = express.Router()
    plain.use(guard())
    plain.get('/v1/users/:id', (req, res) => { res.json({ url: req.url, auth: req.auth }) })
    const mapped = express.Router()
    mapped.use(guard({ aclPath: '/mapped' }))
    mapped.get('/v1/users/:id', (req, res) => { res.json({ url: req.url, auth: req.auth }) })
    app.use('/api', plain)
    app.use('/mapped', mapped)
    app.use(guardErrorHandler)
    await withServer(app, async port => {
      // req.url is /v1/users/x inside the router, which the token grants; the request is not.
      const denied = await rawRequest(port, '/api/v1/users/x', bearer(tok))
      t.equal(denied.status, 403)
      t.equal(JSON.parse(denied.body).message, 'GET /api/v1/users/x is not granted by the token acl')

      const granted = await rawRequest(port, '/mapped/v1/users/x', bearer(tok))
      t.equal(granted.status, 200, 'aclPath strips the mount prefix')
      t.equal(JSON.parse(granted.body).url, '/v1/users/x')
      t.equal(JSON.parse(granted.body).auth.grantedBy, '/*/users/**')

      // A dot segment the router would never see as one: refused from the raw target.
      const dots = await rawRequest(port, '/mapped/v1/users/x/..', bearer(tok))
      t.equal(dots.status, 400)
      t.equal(JSON.parse(dots.body).code, 'VJG_PATH_INVALID')
    })
  })

  t.test(`${version}: opt out by mounting only where needed; optional per middleware`, async t => {
    const tok = await token()
    const app = factory()
    app.get('/health', (req, res) => { res.json({ auth: req.auth ?? 'unset' }) })
    app.get('/v1/users/me', guard({ optional: true }), (req, res) => { res.json({ auth: req.auth }) })
    app.use('/v1', guard())
    app.get('/v1/users/:id', (req, res) => { res.json({ auth: req.auth }) })
    app.use(guardErrorHandler)
    await withServer(app, async port => {
      const health = await rawRequest(port, '/health')
      t.equal(health.status, 200, 'not guarded')
      t.equal(JSON.parse(health.body).auth, 'unset', 'req.auth is undefined where no guard ran')

      const anonymous = await rawRequest(port, '/v1/users/me')
      t.equal(anonymous.status, 200, 'optional: no token is fine')
      t.equal(JSON.parse(anonymous.body).auth, null, 'optional: req.auth is null')
      const signedIn = await rawRequest(port, '/v1/users/me', bearer(tok))
      t.equal(JSON.parse(signedIn.body).auth.grantedBy, '/*/users/**')
      const bad = await rawRequest(port, '/v1/users/me', bearer(`${tok.slice(0, -4)}AAAA`))
      t.equal(bad.status, 401, 'optional: a bad token is still refused')
      t.equal(JSON.parse(bad.body).code, 'VJG_SIGNATURE_INVALID')

      const guarded = await rawRequest(port, '/v1/users/abc')
      t.equal(guarded.status, 401)
      t.equal(JSON.parse(guarded.body).code, 'VJG_TOKEN_MISSING')
    })
  })

  t.test(`${version}: hooks receive the Express request`, async t => {
    const tok = await token()
    const app = expressApp(factory, {
      getToken: (req) => req.get('x-vonage-token'),
      aclPath: (req, path) => req.get('x-tenant') === undefined ? null : path.replace(/^\/t\/[^/]+/, '')
    })
    await withServer(app, async port => {
      const ok = await rawRequest(port, '/t/acme/v1/users/x', { 'x-vonage-token': tok, 'x-tenant': 'acme' })
      t.equal(ok.status, 200)
      t.equal(JSON.parse(ok.body).auth.grantedBy, '/*/users/**')
      const unmapped = await rawRequest(port, '/t/acme/v1/users/x', { 'x-vonage-token': tok })
      t.equal(unmapped.status, 403, 'aclPath returning null grants nothing')
      const none = await rawRequest(port, '/t/acme/v1/users/x', bearer(tok))
      t.equal(none.status, 401, 'getToken replaces the Authorization header')
    })
  })

  t.test(`${version}: two Authorization headers are 400 although req.headers keeps one`, async t => {
    const tok = await token()
    let reached = false
    const app = factory()
    app.use(guard())
    app.use((req, res) => { reached = true; res.json({ authorization: req.headers.authorization }) })
    app.use(guardErrorHandler)
    await withServer(app, async port => {
      const res = await rawRequest(port, '/v1/users', { authorization: [`Bearer ${tok}`, 'Bearer x.y.z'] })
      t.equal(res.status, 400)
      t.equal(JSON.parse(res.body).code, 'VJG_TOKEN_AMBIGUOUS')
      t.ok(res.headers['www-authenticate']!.startsWith(INVALID_REQUEST))
    })
    t.notOk(reached)
  })

  t.test(`${version}: a failing async hook is a 503 through next(err), never an unhandled rejection`, async t => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
    const app = expressApp(factory, { getToken: async () => { throw new Error('store down') } })
    await withServer(app, async port => {
      const res = await rawRequest(port, '/v1/users')
      t.equal(res.status, 503)
      t.equal(JSON.parse(res.body).code, 'VJG_UNAVAILABLE')
      t.equal(res.headers['www-authenticate'], REALM)
    })
    await new Promise(resolve => setImmediate(resolve))
    t.same(unhandled, [])
  })

  t.test(`${version}: errorFormat 'problem' answers itself with RFC 7807`, async t => {
    let handlerRan = false
    const app = factory()
    app.use((req, _res, next) => { (req as unknown as { id: string }).id = 'req-42'; next() })
    app.use(guard({ errorFormat: 'problem' }))
    app.use((_req, res) => { res.send('ok') })
    app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => { handlerRan = true; next(err) })
    await withServer(app, async port => {
      const res = await rawRequest(port, '/v1/calls', bearer(await token()))
      t.equal(res.status, 403)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.ok(res.headers['www-authenticate']!.startsWith(INSUFFICIENT_SCOPE))
      t.same(JSON.parse(res.body), {
        type: 'https://developer.vonage.com/api-errors#forbidden',
        title: 'Forbidden',
        detail: 'GET /v1/calls is not granted by the token acl',
        instance: 'req-42',
        code: 'VJG_ACL_DENIED'
      })
      const missing = await rawRequest(port, '/v1/users')
      t.equal(missing.status, 401)
      t.equal(JSON.parse(missing.body).type, 'https://developer.vonage.com/api-errors#unauthorized')
      t.equal(missing.headers['www-authenticate'], REALM)
    })
    t.notOk(handlerRan, 'the error handler is not involved')
  })

  t.test(`${version}: rejections are logged through req.log at info with the code, never the token`, async t => {
    const lines: Array<[Record<string, unknown>, string]> = []
    const tok = await token({ iat: NOW - 5000, exp: NOW - 4000 })
    const app = factory()
    app.use((req, _res, next) => {
      (req as unknown as { log: unknown }).log = { info: (object: Record<string, unknown>, message: string) => lines.push([object, message]) }
      next()
    })
    app.use(guard())
    app.use(guardErrorHandler)
    await withServer(app, async port => {
      t.equal((await rawRequest(port, '/v1/users', bearer(tok))).status, 401)
    })
    t.equal(lines.length, 1)
    t.same(lines[0]![0], { code: 'VJG_TOKEN_EXPIRED', statusCode: 401 })
    t.notOk(JSON.stringify(lines).includes(tok.split('.')[2]!), 'the token is never logged')
  })

  t.test(`${version}: an aclPath function that answers no path: 503, the mistake logged at error and kept as the cause`, async t => {
    const errors: Array<[Record<string, unknown>, string]> = []
    let caught: unknown
    const app = factory()
    app.use((req, _res, next) => {
      (req as unknown as { log: unknown }).log = { info: () => {}, error: (object: Record<string, unknown>, message: string) => errors.push([object, message]) }
      next()
    })
    app.use(guard({ aclPath: (() => undefined) as never }))
    app.use((err: unknown, req: Parameters<typeof guardErrorHandler>[1], res: Parameters<typeof guardErrorHandler>[2], next: Parameters<typeof guardErrorHandler>[3]) => {
      caught = err
      guardErrorHandler(err, req, res, next)
    })
    await withServer(app, async port => {
      const res = await rawRequest(port, '/v1/users', bearer(await token()))
      t.equal(res.status, 503)
      t.equal(JSON.parse(res.body).code, 'VJG_UNAVAILABLE')
      t.equal(res.headers['www-authenticate'], REALM)
    })
    t.equal(errors.length, 1, 'logged once, at error')
    t.equal((errors[0]![0].err as { option?: string }).option, 'aclPath')
    t.match(errors[0]![1], 'option "aclPath" returned undefined')
    t.match((caught as { cause?: unknown }).cause, { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: 'aclPath' }, 'the error handler sees the mistake as the cause')
  })

  t.test(`${version}: a token from @vonage/jwt tokenGenerate is accepted on its ACL path and refused outside`, async t => {
    const mintedAt = Date.now()
    const vonageToken = tokenGenerate(APP_ID, keys.privatePem, {
      sub: 'alice',
      acl: { paths: { '/*/users/**': {}, '/*/conversations/**': { methods: ['GET'] } } }
    })
    // The SDK stamps iat with the real clock: judge it at the moment it was minted.
    await withServer(expressApp(factory, { now: () => mintedAt, applicationId: APP_ID }), async port => {
      const users = await rawRequest(port, '/v1/users/abc', bearer(vonageToken))
      t.equal(users.status, 200)
      const { auth } = JSON.parse(users.body)
      t.equal(auth.claims.sub, 'alice')
      t.equal(auth.grantedBy, '/*/users/**')
      t.equal(auth.expiresAt, auth.claims.iat + 900, 'the SDK default: 15 minutes')

      t.equal((await rawRequest(port, '/v1/conversations/c', bearer(vonageToken))).status, 200)
      const post = await rawRequest(port, '/v1/conversations/c', bearer(vonageToken), 'POST')
      t.equal(post.status, 403, 'methods: [GET] refuses POST')
      t.equal(JSON.parse(post.body).code, 'VJG_ACL_DENIED')

      const calls = await rawRequest(port, '/v1/calls/abc', bearer(vonageToken))
      t.equal(calls.status, 403)
      t.equal(JSON.parse(calls.body).code, 'VJG_ACL_DENIED')
      t.ok(calls.headers['www-authenticate']!.startsWith(INSUFFICIENT_SCOPE))
    })
  })
}

t.test('bad options throw a TypeError naming the option when the middleware is created', async t => {
  const cases: Array<[string, unknown]> = [
    ['options', undefined],
    ['options', 'pem'],
    ['publicKey', {}],
    ['clockTolerance', { publicKey: keys.publicPem, clockTolerance: 301 }],
    ['publicKeyy', { publicKey: keys.publicPem, publicKeyy: 1 }],
    ['optional', { publicKey: keys.publicPem, optional: 'yes' }],
    ['acl', { publicKey: keys.publicPem, acl: 0 }],
    ['aclPath', { publicKey: keys.publicPem, aclPath: 'api/' }],
    ['errorFormat', { publicKey: keys.publicPem, errorFormat: 'html' }]
  ]
  for (const [option, options] of cases) {
    t.throws(() => expressVonageJwt(options as never), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option }, option)
  }
  t.equal(typeof expressVonageJwt({ publicKey: keys.publicPem, optional: true, acl: false }), 'function')
})
