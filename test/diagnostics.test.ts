/**
 * Every decision is published once on the node:diagnostics_channel channel
 * `vonage-jwt-guard:decision` (SPEC 10), whatever adapter: granted or refused, the code and
 * status, method, canonical path, application_id, sub, grantedBy, duration, how the cache took
 * part, what failed open; never the token. A check skipped under failOpen is also a warn log line.
 */
import { createHash } from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Writable } from 'node:stream'
import express from 'express'
import Fastify from 'fastify'
import { SignJWT } from 'jose'
import t from 'tap'
import vonageJwtGuard, { DECISION_CHANNEL, type GuardDecision, type GuardStore } from '../lib/index.js'
import { expressVonageJwt } from '../lib/express.js'
import { bearer, buildApp } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import { APP_ID, keys, NOW, NOW_MS, otherKeys, token } from './helpers/keys.js'
import { withServer } from './helpers/scenarios.js'

/** Decisions published while `fn` runs. */
async function published (fn: () => Promise<unknown>): Promise<GuardDecision[]> {
  const seen: GuardDecision[] = []
  const listener = (message: unknown): void => { seen.push(message as GuardDecision) }
  subscribe(DECISION_CHANNEL, listener)
  try {
    await fn()
  } finally {
    unsubscribe(DECISION_CHANNEL, listener)
  }
  return seen
}

/** The fields a metric reads, without the duration (checked on its own) and the error object. */
function fields (decision: GuardDecision | undefined): Record<string, unknown> {
  if (decision === undefined) return {}
  const { duration: _duration, error: _error, ...rest } = decision
  return rest
}

const GRANTED = { phase: 'request', granted: true, code: null, statusCode: null, method: 'GET', failedChecks: [], failedOpen: [] }

t.test('the channel name', async t => {
  t.equal(DECISION_CHANNEL, 'vonage-jwt-guard:decision')
})

t.test('granted: two misses (the token is kept from its second sighting), then a hit of the verified-token cache; the canonical path; sub and application_id', async t => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const tok = await token({ sub: 'alice' })
  const seen = await published(async () => {
    for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/v1/users/abc/?page=2', headers: bearer(tok) })).statusCode, 200)
  })
  t.equal(seen.length, 3, 'one decision per request')
  const expected = { ...GRANTED, path: '/v1/users/abc', applicationId: APP_ID, sub: 'alice', grantedBy: '/*/users/**' }
  t.strictSame(seen.map(fields), [{ ...expected, cache: 'miss' }, { ...expected, cache: 'miss' }, { ...expected, cache: 'hit' }])
  for (const decision of seen) {
    t.equal(decision.error, null)
    t.ok(typeof decision.duration === 'number' && decision.duration >= 0 && decision.duration < 10_000, `duration ${decision.duration} ms`)
    t.notOk(JSON.stringify(fields(decision)).includes(tok.split('.')[2]!), 'never the token')
  }
})

t.test('cache off, a root token, an optional route without a token, the ACL not checked', async t => {
  const app = await buildApp({ cache: false }, app => {
    app.get('/*', async () => 'ok')
    app.get('/me', { config: { jwtGuard: { optional: true } } }, async () => 'ok')
    app.get('/whoami', { config: { jwtGuard: { acl: false } } }, async () => 'ok')
  })
  t.teardown(() => app.close())
  const root = await token({ acl: undefined })
  const seen = await published(async () => {
    await app.inject({ url: '/v1/calls/x', headers: bearer(root) })
    await app.inject({ url: '/me' })
    await app.inject({ url: '/whoami', headers: bearer(await token()) })
  })
  t.strictSame(seen.map(fields), [
    { ...GRANTED, path: '/v1/calls/x', applicationId: APP_ID, sub: null, grantedBy: null, cache: 'off' },
    { ...GRANTED, path: '/me', applicationId: null, sub: null, grantedBy: null, cache: 'not-reached' },
    { ...GRANTED, path: '/whoami', applicationId: APP_ID, sub: null, grantedBy: null, cache: 'off' }
  ])
})

t.test('each kind of refusal: its code and status, and how far the request got', async t => {
  const revoked = await token({ sub: 'mallory' })
  const failing: GuardStore = { check: () => { throw new Error('down') }, revokeToken: () => {}, revokeSubject: () => {} }
  const cases: Array<{ name: string, url?: string, headers?: Record<string, string>, options?: Record<string, unknown>, code: string, statusCode: number, path: string | null, applicationId: string | null, sub?: string, cache: string, failedChecks?: string[] }> = [
    { name: 'a path refused before the token', url: '/v1//users', headers: bearer(await token()), code: 'VJG_PATH_INVALID', statusCode: 400, path: null, applicationId: null, cache: 'not-reached' },
    { name: 'no token', code: 'VJG_TOKEN_MISSING', statusCode: 401, path: '/v1/users/x', applicationId: null, cache: 'not-reached' },
    { name: 'two tokens', url: `/v1/users/x?jwt=${await token()}`, headers: bearer(await token()), options: { tokenSources: [{ header: 'authorization' }, { query: 'jwt' }] }, code: 'VJG_TOKEN_AMBIGUOUS', statusCode: 400, path: '/v1/users/x', applicationId: null, cache: 'not-reached' },
    { name: 'a malformed token', headers: bearer('a.b'), code: 'VJG_TOKEN_MALFORMED', statusCode: 401, path: '/v1/users/x', applicationId: null, cache: 'miss' },
    { name: 'a forged signature', headers: bearer(await token({}, { key: otherKeys.privateKey })), code: 'VJG_SIGNATURE_INVALID', statusCode: 401, path: '/v1/users/x', applicationId: null, cache: 'miss' },
    { name: 'expired', headers: bearer(await token({ iat: NOW - 1000, exp: NOW - 31 })), code: 'VJG_TOKEN_EXPIRED', statusCode: 401, path: '/v1/users/x', applicationId: null, cache: 'miss' },
    { name: 'revoked', headers: bearer(revoked), options: { isRevoked: () => true }, code: 'VJG_TOKEN_REVOKED', statusCode: 401, path: '/v1/users/x', applicationId: APP_ID, sub: 'mallory', cache: 'miss' },
    { name: 'replayed', headers: bearer(revoked), options: { replay: true }, code: 'VJG_TOKEN_REPLAYED', statusCode: 401, path: '/v1/users/x', applicationId: APP_ID, sub: 'mallory', cache: 'miss' },
    { name: 'a store down, failOpen off', headers: bearer(await token()), options: { replay: { store: failing } }, code: 'VJG_UNAVAILABLE', statusCode: 503, path: '/v1/users/x', applicationId: APP_ID, cache: 'miss', failedChecks: ['replay'] },
    { name: 'outside the ACL', url: '/v1/calls/x', headers: bearer(await token()), code: 'VJG_ACL_DENIED', statusCode: 403, path: '/v1/calls/x', applicationId: APP_ID, cache: 'miss' },
    { name: 'a throwing getToken', options: { getToken: () => { throw new Error('down') } }, code: 'VJG_UNAVAILABLE', statusCode: 503, path: '/v1/users/x', applicationId: null, cache: 'not-reached' },
    { name: 'an aclPath answer that is no path', headers: bearer(await token()), options: { aclPath: () => 42 }, code: 'VJG_UNAVAILABLE', statusCode: 503, path: '/v1/users/x', applicationId: APP_ID, cache: 'miss' }
  ]
  for (const c of cases) {
    const app = await buildApp(c.options)
    // replayed: the first request consumes the jti, the second (a miss: seen once before) is refused.
    if (c.code === 'VJG_TOKEN_REPLAYED') await app.inject({ url: c.url ?? '/v1/users/x', headers: c.headers })
    const seen = await published(async () => {
      const res = await app.inject({ url: c.url ?? '/v1/users/x', headers: c.headers })
      t.equal(res.statusCode, c.statusCode, `${c.name}: answered ${c.statusCode}`)
    })
    await app.close()
    t.equal(seen.length, 1, `${c.name}: one decision`)
    t.strictSame(fields(seen[0]), {
      phase: 'request', granted: false, code: c.code, statusCode: c.statusCode, method: 'GET', path: c.path,
      applicationId: c.applicationId, sub: c.sub ?? null,
      grantedBy: null, cache: c.cache, failedChecks: c.failedChecks ?? [], failedOpen: []
    }, c.name)
    t.equal(seen[0]?.error?.code, c.code, `${c.name}: the refusal itself`)
    const text = JSON.stringify({ ...fields(seen[0]), message: seen[0]?.error?.message })
    const jwt = c.headers?.authorization?.slice(7)
    if (jwt !== undefined && jwt.length > 20) t.notOk(text.includes(jwt.split('.')[2] ?? jwt), `${c.name}: never the token`)
  }
})

/** A Fastify app whose log lines are kept, parsed. */
async function loggedApp (options: Record<string, unknown>): Promise<{ app: ReturnType<typeof Fastify>, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, ...options })
  app.get('/*', async () => 'ok')
  await app.ready()
  return { app, lines }
}

t.test('failOpen: the skipped checks are named in the decision and logged at warn', async t => {
  const down = (): never => { throw new Error('store down') }
  const failing: GuardStore = { check: down, revokeToken: () => {}, revokeSubject: () => {} }
  const cases: Array<{ name: string, options: Record<string, unknown>, failedOpen: string[] }> = [
    { name: 'isRevoked throws', options: { isRevoked: down, failOpen: true }, failedOpen: ['isRevoked'] },
    { name: 'the replay store is down', options: { replay: { store: failing }, failOpen: true }, failedOpen: ['replay'] },
    { name: 'one store for replay and revocation is down', options: { replay: { store: failing }, revocation: failing, failOpen: true }, failedOpen: ['replay', 'revocation'] },
    { name: 'the revocation store and isRevoked are down', options: { revocation: failing, isRevoked: async () => { throw new Error('hook down') }, failOpen: true }, failedOpen: ['revocation', 'isRevoked'] }
  ]
  for (const c of cases) {
    const { app, lines } = await loggedApp(c.options)
    const tok = await token()
    const seen = await published(async () => {
      t.equal((await app.inject({ url: '/v1/users/x', headers: bearer(tok) })).statusCode, 200, `${c.name}: granted`)
    })
    await app.close()
    t.strictSame(fields(seen[0]), { ...GRANTED, path: '/v1/users/x', applicationId: APP_ID, sub: null, grantedBy: '/*/users/**', cache: 'miss', failedChecks: c.failedOpen, failedOpen: c.failedOpen }, c.name)
    const warn = lines.filter(line => line.level === 40)
    t.equal(warn.length, 1, `${c.name}: one warn line`)
    t.strictSame(warn[0]?.failedOpen, c.failedOpen)
    t.match(warn[0]?.msg, /^vonage-jwt-guard: the .* check failed and was skipped \(failOpen\)$/)
    t.notOk(JSON.stringify(lines).includes(tok.split('.')[2]!), 'never the token in a log line')
  }
})

t.test('without failOpen: the checks that could not be made are named in the 503 decision', async t => {
  const down = (): never => { throw new Error('store down') }
  const failing: GuardStore = { check: down, revokeToken: () => {}, revokeSubject: () => {} }
  const cases: Array<{ name: string, options: Record<string, unknown>, failedChecks: string[] }> = [
    { name: 'isRevoked throws', options: { isRevoked: down }, failedChecks: ['isRevoked'] },
    { name: 'the replay store is down', options: { replay: { store: failing } }, failedChecks: ['replay'] },
    { name: 'one store for replay and revocation is down', options: { replay: { store: failing }, revocation: failing }, failedChecks: ['replay', 'revocation'] },
    { name: 'isRevoked answers with no boolean', options: { isRevoked: async () => 'yes' }, failedChecks: ['isRevoked'] }
  ]
  for (const c of cases) {
    const { app, lines } = await loggedApp(c.options)
    const tok = await token()
    const seen = await published(async () => {
      const res = await app.inject({ url: '/v1/users/x', headers: bearer(tok) })
      t.equal(res.statusCode, 503, `${c.name}: 503`)
      t.equal(res.json().code, 'VJG_UNAVAILABLE')
    })
    await app.close()
    t.strictSame(fields(seen[0]), {
      phase: 'request', granted: false, code: 'VJG_UNAVAILABLE', statusCode: 503, method: 'GET', path: '/v1/users/x',
      applicationId: APP_ID, sub: null, grantedBy: null, cache: 'miss', failedChecks: c.failedChecks, failedOpen: []
    }, c.name)
    t.equal(lines.filter(line => line.level === 40).length, 0, `${c.name}: nothing skipped, no warn line`)
  }
})

t.test('a route config found bad at request time is published as a refusal', async t => {
  const app = Fastify()
  app.get('/early', { config: { jwtGuard: { optinal: true } as never } }, async () => 'x')
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  await app.ready()
  t.teardown(() => app.close())
  const seen = await published(async () => {
    t.equal((await app.inject({ url: '/early' })).statusCode, 503)
  })
  t.equal(seen.length, 1)
  t.match(fields(seen[0]), { phase: 'request', granted: false, code: 'VJG_UNAVAILABLE', statusCode: 503, cache: 'not-reached' })
  t.match(seen[0]?.error?.cause, { code: 'VJG_INVALID_OPTION', option: 'config.jwtGuard of GET /early.optinal' })
})

t.test('Express 5 publishes the same decisions', async t => {
  const app = express()
  app.use(expressVonageJwt({ publicKey: keys.publicPem, now: () => NOW_MS }))
  app.use((req, res) => { res.json({ ok: true }) })
  app.use((error: { status: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => { res.status(error.status).end() })
  const tok = await token({ sub: 'bob' })
  const seen = await published(() => withServer(app, async port => {
    for (let i = 0; i < 3; i++) t.equal((await rawRequest(port, '/v1/users/x', bearer(tok))).status, 200)
    t.equal((await rawRequest(port, '/v1/calls/x', bearer(tok))).status, 403)
  }))
  t.strictSame(seen.map(fields), [
    { ...GRANTED, path: '/v1/users/x', applicationId: APP_ID, sub: 'bob', grantedBy: '/*/users/**', cache: 'miss' },
    { ...GRANTED, path: '/v1/users/x', applicationId: APP_ID, sub: 'bob', grantedBy: '/*/users/**', cache: 'miss' },
    { ...GRANTED, path: '/v1/users/x', applicationId: APP_ID, sub: 'bob', grantedBy: '/*/users/**', cache: 'hit' },
    { phase: 'request', granted: false, code: 'VJG_ACL_DENIED', statusCode: 403, method: 'GET', path: '/v1/calls/x', applicationId: APP_ID, sub: 'bob', grantedBy: null, cache: 'hit', failedChecks: [], failedOpen: [] }
  ])
})

t.test('a signed webhook whose body does not match: a request grant, then a body refusal', async t => {
  const secret = 'a-signature-secret-of-32-bytes!!'
  const body = '{"status":"delivered"}'
  const claims = { iss: 'Vonage', api_key: 'abcd1234', iat: NOW - 5, jti: 'j-1', payload_hash: createHash('sha256').update(body).digest('hex') }
  const jwt = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(Buffer.from(secret))
  const app = Fastify()
  await app.register(vonageJwtGuard, { profile: 'vonage-webhook', secrets: { abcd1234: secret }, now: () => NOW_MS })
  app.post('/webhooks/status', async () => 'ok')
  await app.ready()
  t.teardown(() => app.close())
  const seen = await published(async () => {
    const res = await app.inject({ method: 'POST', url: '/webhooks/status', headers: { ...bearer(jwt), 'content-type': 'application/json' }, payload: '{"status":"rejected"}' })
    t.equal(res.statusCode, 401)
  })
  t.strictSame(seen.map(decision => [decision.phase, decision.granted, decision.code]), [['request', true, null], ['body', false, 'VJG_SIGNATURE_INVALID']])
  t.match(fields(seen[1]), { method: 'POST', path: '/webhooks/status', statusCode: 401 })
})

t.test('no decision carries token material: a header or payload that is not JSON is refused without JSON.parse\'s message, which quotes the text', async t => {
  const app = await buildApp({ publicKey: keys.publicPem, now: () => NOW_MS })
  t.teardown(() => app.close())
  const part = (text: string): string => Buffer.from(text).toString('base64url')
  const header = part('{"alg":"RS256","typ":"JWT"}')
  const cases: Array<[string, string]> = [
    // V8 quotes about 16 characters around the fault.
    ['a header that is not JSON', `${part('{"k":SECRETMATERIAL}')}.${part('{}')}.c2ln`],
    ['a payload that is not JSON', `${header}.${part('SECRETMATERIAL')}.c2ln`],
    ['a payload with a bare word', `${header}.${part('{"a":SECRETMATERIAL}')}.c2ln`]
  ]
  for (const [name, jwt] of cases) {
    const [decision] = await published(() => app.inject({ url: '/v1/users/abc', headers: bearer(jwt) }))
    t.equal(decision?.code, 'VJG_TOKEN_MALFORMED', `${name}: refused as malformed`)
    let error: unknown = decision?.error
    const texts: string[] = []
    while (error instanceof Error) {
      texts.push(error.message, String(error.stack))
      error = error.cause
    }
    t.notMatch(`${JSON.stringify(fields(decision))} ${texts.join(' ')}`, /SECRETMATERIAL/, `${name}: no piece of the token in the decision, its error or a cause`)
  }
})
