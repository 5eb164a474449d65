/**
 * The Fastify plugin end to end: every row of the SPEC section 5 table that a request can reach,
 * with the status, the code and the WWW-Authenticate challenge asserted.
 */
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import vonageJwtGuard from '../lib/index.js'
import { bearer, buildApp } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import { APP_ID, b64, claims, keys, NOW, NOW_MS, otherKeys, sign, signRaw, token } from './helpers/keys.js'

const REALM = 'Bearer realm="vonage-jwt-guard"'
const INVALID_TOKEN = `${REALM}, error="invalid_token", error_description="`
const INVALID_REQUEST = `${REALM}, error="invalid_request", error_description="`
const INSUFFICIENT_SCOPE = `${REALM}, error="insufficient_scope", error_description="`

interface Row {
  name: string
  url?: string
  method?: 'GET' | 'POST' | 'HEAD' | 'DELETE'
  headers?: Record<string, string>
  options?: Record<string, unknown>
  status: number
  code?: string
  /** The exact challenge, or its prefix when it ends with `error_description="`. */
  challenge?: string
}

async function rows (): Promise<Row[]> {
  const valid = await token()
  const [h, p] = valid.split('.')
  return [
    { name: 'valid token on an ACL path', url: '/v1/users/abc', headers: bearer(valid), status: 200 },
    { name: 'valid token, HEAD counts as GET', method: 'HEAD', url: '/v1/users/abc', headers: bearer(valid), status: 200 },
    { name: 'scheme is case-insensitive', url: '/v1/users', headers: { authorization: `bEaReR ${valid}` }, status: 200 },

    { name: 'no token', url: '/v1/users', status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'another scheme is no bearer token', url: '/v1/users', headers: { authorization: 'Basic dXNlcjpwYXNz' }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },

    { name: 'empty bearer token', url: '/v1/users', headers: { authorization: 'Bearer ' }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'two parts', url: '/v1/users', headers: bearer(`${h}.${p}`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'five parts (JWE)', url: '/v1/users', headers: bearer(`${valid}.${h}.${p}`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'base64 padding', url: '/v1/users', headers: bearer(`${valid}==`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'payload not JSON', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, 'not json')), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'payload a JSON array', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, [1, 2])), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'header not an object', url: '/v1/users', headers: bearer(signRaw('"RS256"', claims())), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'over maxTokenLength', url: '/v1/users', headers: bearer(valid), options: { maxTokenLength: 100 }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'typ other than JWT', url: '/v1/users', headers: bearer(await token({}, { header: { typ: 'at+jwt' } })), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },

    { name: 'two tokens from two sources', url: `/v1/users?token=${valid}`, headers: bearer(valid), options: { tokenSources: [{ header: 'authorization' }, { query: 'token' }] }, status: 400, code: 'VJG_TOKEN_AMBIGUOUS', challenge: INVALID_REQUEST },

    { name: 'alg none', url: '/v1/users', headers: bearer(`${b64({ alg: 'none' })}.${p}.`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'alg none with a signature part', url: '/v1/users', headers: bearer(`${b64({ alg: 'none' })}.${p}.AAAA`), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'alg HS256', url: '/v1/users', headers: bearer(signRaw({ alg: 'HS256' }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'alg RS384 not in algorithms', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS384' }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'crit header', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256', crit: ['exp'] }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },

    { name: 'signed by another key', url: '/v1/users', headers: bearer(await token({}, { key: otherKeys.privateKey })), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'payload swapped after signing', url: '/v1/users', headers: bearer(`${h}.${b64(claims({ sub: 'admin' }))}.${valid.split('.')[2]}`), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },

    { name: 'unknown application_id with publicKeys', url: '/v1/users', headers: bearer(await token({ application_id: 'someone-else' })), options: { publicKey: undefined, publicKeys: { [APP_ID]: keys.publicPem } }, status: 401, code: 'VJG_KEY_UNKNOWN', challenge: INVALID_TOKEN },

    { name: 'no jti', url: '/v1/users', headers: bearer(await token({ jti: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'no application_id', url: '/v1/users', headers: bearer(await token({ application_id: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'no iat', url: '/v1/users', headers: bearer(await token({ iat: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'neither iat nor exp', url: '/v1/users', headers: bearer(await token({ iat: undefined, exp: undefined })), options: { requiredClaims: ['application_id'] }, status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },

    { name: 'exp as a string of digits', url: '/v1/users', headers: bearer(await token({ exp: String(NOW + 60) })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'exp 1e309', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, `{"application_id":"${APP_ID}","iat":${NOW},"jti":"j","exp":1e309}`)), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'exp before iat', url: '/v1/users', headers: bearer(await token({ exp: NOW - 20 })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'acl of the wrong shape', url: '/v1/users', headers: bearer(await token({ acl: { paths: ['/*/users/**'] } })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'empty jti', url: '/v1/users', headers: bearer(await token({ jti: '' })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },

    { name: 'application_id not allowed', url: '/v1/users', headers: bearer(valid), options: { applicationId: ['another-app'] }, status: 401, code: 'VJG_APPLICATION_MISMATCH', challenge: INVALID_TOKEN },

    { name: 'expired', url: '/v1/users', headers: bearer(await token({ iat: NOW - 1000, exp: NOW - 31 })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'no exp: 15 minutes from iat', url: '/v1/users', headers: bearer(await token({ iat: NOW - 931, exp: undefined })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'exp a week away is capped at iat + 24 h', url: '/v1/users', headers: bearer(await token({ iat: NOW - 86_431, exp: NOW + 7 * 86_400 })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },

    { name: 'iat in the future', url: '/v1/users', headers: bearer(await token({ iat: NOW + 31 })), status: 401, code: 'VJG_TOKEN_NOT_YET_VALID', challenge: INVALID_TOKEN },
    { name: 'nbf in the future', url: '/v1/users', headers: bearer(await token({ nbf: NOW + 31 })), status: 401, code: 'VJG_TOKEN_NOT_YET_VALID', challenge: INVALID_TOKEN },

    { name: 'lifetime over 24 h with policy reject', url: '/v1/users', headers: bearer(await token({ exp: NOW - 10 + 86_401 })), options: { lifetimePolicy: 'reject' }, status: 401, code: 'VJG_LIFETIME_EXCEEDED', challenge: INVALID_TOKEN },

    { name: 'path outside the ACL', url: '/v1/calls/abc', headers: bearer(valid), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: '/*/users/** does not match /v1/userss', url: '/v1/userss', headers: bearer(valid), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'root token (no acl) with requireAcl', url: '/v1/users', headers: bearer(await token({ acl: undefined })), options: { requireAcl: true }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },

    { name: 'path parameter', url: '/v1/users;jsessionid=x', headers: bearer(valid), status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'encoded slash', url: '/v1/users%2F..%2Fcalls', headers: bearer(valid), status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'path checked before the token', url: '/v1//users', status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },

    { name: 'a throwing aclFilter fails closed', url: '/v1/users/x', headers: bearer(await token({ acl: { paths: { '/v1/users/**': { filters: { a: 1 } } } } })), options: { aclFilter: () => { throw new Error('down') } }, status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM }
  ]
}

t.test('SPEC section 5: status, code and challenge for each case', async t => {
  for (const row of await rows()) {
    const app = await buildApp(row.options as never)
    const res = await app.inject({ method: row.method ?? 'GET', url: row.url ?? '/v1/users', headers: row.headers })
    t.equal(res.statusCode, row.status, `${row.name}: status`)
    if (row.code !== undefined) {
      t.equal(res.json().code, row.code, `${row.name}: code`)
      const header = res.headers['www-authenticate'] as string
      if (row.challenge!.endsWith('error_description="')) {
        t.ok(header.startsWith(row.challenge!) && header.endsWith('"'), `${row.name}: challenge ${header}`)
      } else {
        t.equal(header, row.challenge, `${row.name}: challenge`)
      }
      t.notMatch(res.body, /eyJ/, `${row.name}: the body never holds the token`)
    }
    await app.close()
  }
})

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

t.test('a custom realm is used in every challenge', async t => {
  const app = await buildApp({ realm: 'my-api' })
  const res = await app.inject({ url: '/v1/users' })
  t.equal(res.headers['www-authenticate'], 'Bearer realm="my-api"')
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
    await t.rejects(app.register(vonageJwtGuard, options as never).ready(), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option }, option)
  }
})

t.test('over a real socket: two Authorization headers, dot segments', async t => {
  const app = await buildApp()
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const tok = await token()

  // Node keeps only the first Authorization header in req.headers: the guard reads rawHeaders.
  const twice = await rawRequest(port, '/v1/users', { authorization: [`Bearer ${tok}`, `Bearer ${tok}`] })
  t.equal(twice.status, 400)
  t.equal(JSON.parse(twice.body).code, 'VJG_TOKEN_AMBIGUOUS')
  t.ok(twice.headers['www-authenticate']!.startsWith(INVALID_REQUEST))

  for (const target of ['/v1/users/../calls', '/v1/users/./x', '/v1/users/..', '/v1/calls/%2e%2e/users/x']) {
    const res = await rawRequest(port, target, { authorization: `Bearer ${tok}` })
    t.equal(res.status, 400, `${target}: status`)
    t.equal(JSON.parse(res.body).code, 'VJG_PATH_INVALID', `${target}: code`)
    t.ok(res.headers['www-authenticate']!.startsWith(INVALID_REQUEST), `${target}: challenge`)
  }
  await app.close()
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

t.test('tokens from a cookie or a custom header', async t => {
  const app = await buildApp({ tokenSources: [{ cookie: 'vjg' }, { header: 'x-token', scheme: null }] })
  const tok = await token()
  t.equal((await app.inject({ url: '/v1/users', headers: { cookie: `a=b; vjg=${tok}` } })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/users', headers: { 'x-token': tok } })).statusCode, 200)
  const both = await app.inject({ url: '/v1/users', headers: { 'x-token': tok, cookie: `vjg=${tok}` } })
  t.equal(both.statusCode, 400)
  t.equal(both.json().code, 'VJG_TOKEN_AMBIGUOUS')
  t.equal((await app.inject({ url: '/v1/users', headers: bearer(tok) })).statusCode, 401, 'Authorization is not a source any more')
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
