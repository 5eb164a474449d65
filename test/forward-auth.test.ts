/**
 * vonage-jwt-guard/forward-auth: the plugin a reverse proxy's auth request reaches. The original
 * request is named by a header pair (nginx: X-Original-*; Traefik, Caddy: X-Forwarded-*) or, for
 * Envoy, by the check's own request line; a check that does not name exactly one is never
 * granted. Raw header spellings (underscores, repeats) go over a real socket.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import vonageJwtGuard from '../lib/index.js'
import forwardAuthDefault, { CODE_HEADER, forwardAuth, identityHeaders, type ForwardAuthOptions } from '../lib/forward-auth.js'
import { rawRequest } from './helpers/http.js'
import { APP_ID, keys, NOW, NOW_MS, otherKeys, token } from './helpers/keys.js'
import { INVALID_REQUEST, INVALID_TOKEN, REALM } from './helpers/scenarios.js'

async function listening (options: Partial<ForwardAuthOptions> = {}, register?: (app: FastifyInstance) => Promise<void>): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: false })
  if (register === undefined) await app.register(forwardAuth, { publicKey: keys.publicPem, now: () => NOW_MS, ...options })
  else await register(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

const nginx = (method: string, target: string): Record<string, string> => ({ 'X-Original-Method': method, 'X-Original-URI': target })
const traefik = (method: string, target: string): Record<string, string> => ({ 'X-Forwarded-Method': method, 'X-Forwarded-Uri': target })

t.test('default and named export are the same plugin', async t => {
  t.equal(forwardAuthDefault, forwardAuth)
})

t.test('a granted check: 200 with the verified identity for the proxy to copy, whichever pair names the request', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token({ sub: 'alice' })
  for (const [name, pair] of [['nginx', nginx('GET', '/v1/users/abc?x=1')], ['Traefik and Caddy', traefik('GET', '/v1/users/abc?x=1')],
    ['both pairs, agreeing', { ...nginx('GET', '/v1/users/abc?x=1'), ...traefik('GET', '/v1/users/abc?x=1') }]] as const) {
    const res = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...pair })
    t.equal(res.status, 200, `${name}: ${res.body}`)
    t.equal(res.headers['x-vonage-application-id'], APP_ID, `${name}: the verified application_id`)
    t.equal(res.headers['x-vonage-sub'], 'alice', `${name}: the verified sub`)
    t.equal(res.headers['cache-control'], 'no-store', `${name}: never cached`)
    t.equal(res.headers[CODE_HEADER], undefined, `${name}: no refusal code`)
    t.equal(res.body, '', `${name}: no body`)
  }
  const proxied = await rawRequest(port, '/auth', {
    authorization: `Bearer ${jwt}`,
    ...traefik('GET', '/v1/users/abc?method=x&_methods=y'),
    'X-Forwarded-For': '203.0.113.7',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'api.example.com',
    'X-Real-IP': '203.0.113.7'
  })
  t.equal(proxied.status, 200, `the forwarding headers a proxy sends, spelled as a proxy spells them: ${proxied.body}`)
  const rootToken = await token({ acl: undefined })
  const root = await rawRequest(port, '/', { authorization: `Bearer ${rootToken}`, ...traefik('DELETE', '/anything') })
  t.equal(root.status, 200, 'a root token, any path of the check')
  t.equal(root.headers['x-vonage-sub'], '', 'no sub claim: an empty X-Vonage-Sub (never absent, see Caddy 2.6 in docs/deployment.md)')
})

t.test('a check that does not name exactly one original request is never granted', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token({ acl: undefined }) // a root token: any request it names would be granted
  const auth = { authorization: `Bearer ${jwt}` }
  const cases: Array<[string, Record<string, string | string[]>, string, string?]> = [
    ['no pair at all', {}, 'VJG_FORWARD_INVALID'],
    ['only X-Forwarded-Uri', { 'X-Forwarded-Uri': '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['only X-Forwarded-Method', { 'X-Forwarded-Method': 'GET' }, 'VJG_FORWARD_INVALID'],
    ['only X-Original-URI', { 'X-Original-URI': '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['a full pair and half of the other', { ...nginx('GET', '/v1/users'), 'X-Forwarded-Uri': '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['two pairs that disagree on the target', { ...nginx('GET', '/admin'), ...traefik('GET', '/v1/users') }, 'VJG_FORWARD_INVALID'],
    ['two pairs that disagree on the method', { ...nginx('DELETE', '/v1/users'), ...traefik('GET', '/v1/users') }, 'VJG_FORWARD_INVALID'],
    ['X-Forwarded-Uri twice', { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': ['/v1/users', '/admin'] }, 'VJG_FORWARD_INVALID'],
    ['X-Original-Method twice', { 'X-Original-Method': ['GET', 'GET'], 'X-Original-URI': '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['X_Forwarded_Uri', { 'X-Forwarded-Method': 'GET', X_Forwarded_Uri: '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['X_Original_URI beside a real pair', { ...traefik('GET', '/v1/users'), X_Original_URI: '/v1/users' }, 'VJG_FORWARD_INVALID'],
    ['a method that is no token', traefik('GET /admin', '/v1/users'), 'VJG_FORWARD_INVALID'],
    ['X-Vonage-Sub from the client', { ...traefik('GET', '/v1/users'), 'X-Vonage-Sub': 'mallory' }, 'VJG_IDENTITY_HEADER'],
    ['X_Vonage_Sub from the client', { ...traefik('GET', '/v1/users'), X_Vonage_Sub: 'mallory' }, 'VJG_IDENTITY_HEADER'],
    ['x-vonage_application-id from the client', { ...nginx('GET', '/v1/users'), 'x-vonage_application-id': 'forged' }, 'VJG_IDENTITY_HEADER'],
    ['X-VONAGE-APPLICATION-ID from the client', { ...nginx('GET', '/v1/users'), 'X-VONAGE-APPLICATION-ID': 'forged' }, 'VJG_IDENTITY_HEADER'],
    // PHP reads every character that is not a letter or digit as "_": X.Vonage.Sub is its HTTP_X_VONAGE_SUB.
    ['X.Vonage.Sub from the client', { ...traefik('GET', '/v1/users'), 'X.Vonage.Sub': 'mallory' }, 'VJG_IDENTITY_HEADER', 'X.Vonage.Sub'],
    ['x.vonage-application.id from the client', { ...nginx('GET', '/v1/users'), 'x.vonage-application.id': 'forged' }, 'VJG_IDENTITY_HEADER', 'x.vonage-application.id'],
    ['X.Forwarded.Uri', { 'X-Forwarded-Method': 'GET', 'X.Forwarded.Uri': '/v1/users' }, 'VJG_FORWARD_INVALID', 'X.Forwarded.Uri'],
    ['X.Real.IP', { ...traefik('GET', '/v1/users'), 'X.Real.IP': '6.6.6.6' }, 'VJG_FORWARD_INVALID', 'X.Real.IP'],
    ['X_Forwarded_For', { ...traefik('GET', '/v1/users'), X_Forwarded_For: '6.6.6.6' }, 'VJG_FORWARD_INVALID', 'X_Forwarded_For'],
    ['True_Client_IP', { ...traefik('GET', '/v1/users'), True_Client_IP: '6.6.6.6' }, 'VJG_FORWARD_INVALID', 'True_Client_IP'],
    ['X-Original-URL', { ...traefik('GET', '/v1/users'), 'X-Original-URL': '/admin' }, 'VJG_URL_REWRITE', 'X-Original-URL'],
    ['X.Original.URL', { ...traefik('GET', '/v1/users'), 'X.Original.URL': '/admin' }, 'VJG_URL_REWRITE', 'X.Original.URL'],
    ['X_Rewrite_Url', { ...nginx('GET', '/v1/users'), X_Rewrite_Url: '/admin' }, 'VJG_URL_REWRITE', 'X_Rewrite_Url'],
    ['X-Forwarded-Prefix', { ...traefik('GET', '/v1/users'), 'X-Forwarded-Prefix': '/admin' }, 'VJG_URL_REWRITE', 'X-Forwarded-Prefix'],
    ['X-HTTP-Method-Override', { ...traefik('POST', '/v1/users'), 'X-HTTP-Method-Override': 'DELETE' }, 'VJG_METHOD_OVERRIDE', 'X-HTTP-Method-Override'],
    ['X.HTTP.Method', { ...traefik('POST', '/v1/users'), 'X.HTTP.Method': 'DELETE' }, 'VJG_METHOD_OVERRIDE', 'X.HTTP.Method'],
    ['x_method_override', { ...nginx('POST', '/v1/users'), x_method_override: 'DELETE' }, 'VJG_METHOD_OVERRIDE', 'x_method_override'],
    ['_method in the original query', traefik('POST', '/v1/users?_method=DELETE'), 'VJG_METHOD_OVERRIDE', '_method'],
    ['_METHOD in the original query', nginx('POST', '/v1/users?a=1&_METHOD=DELETE'), 'VJG_METHOD_OVERRIDE', '_METHOD']
  ]
  for (const [name, headers, code, names] of cases) {
    const res = await rawRequest(port, '/auth', { ...auth, ...headers })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(JSON.parse(res.body).code, code, `${name}: ${code}`)
    if (names !== undefined) t.match(JSON.parse(res.body).message, `"${names}"`, `${name}: the message names the header as sent`)
    t.equal(res.headers[CODE_HEADER], code, `${name}: the code in ${CODE_HEADER}`)
    t.match(res.headers['www-authenticate'], INVALID_REQUEST, `${name}: the challenge`)
    t.equal(res.headers['x-vonage-sub'], undefined, `${name}: no identity`)
  }
})

t.test('the guard decides on the original request: the answers the proxy passes on', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token()
  const postOnly = await token({ acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  const cases: Array<[string, Record<string, string | string[]>, number, string, string]> = [
    ['no token', traefik('GET', '/v1/users'), 401, 'VJG_TOKEN_MISSING', REALM],
    ['a bad signature', { authorization: `Bearer ${await token({}, { key: otherKeys.privateKey })}`, ...traefik('GET', '/v1/users') }, 401, 'VJG_SIGNATURE_INVALID', INVALID_TOKEN],
    ['an expired token', { authorization: `Bearer ${await token({ iat: NOW - 4000, exp: NOW - 3000 })}`, ...traefik('GET', '/v1/users') }, 401, 'VJG_TOKEN_EXPIRED', INVALID_TOKEN],
    ['a sub with a line break', { authorization: `Bearer ${await token({ sub: 'alice\r\nx-admin: 1' })}`, ...traefik('GET', '/v1/users') }, 401, 'VJG_CLAIM_INVALID', INVALID_TOKEN],
    ['a path outside the acl', { authorization: `Bearer ${jwt}`, ...nginx('GET', '/v1/calls/abc') }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['a method outside the acl', { authorization: `Bearer ${postOnly}`, ...nginx('DELETE', '/v1/files/f1') }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['..%2f', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/..%2fcalls') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['%2e%2e', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/%2e%2e/calls') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['/../', { authorization: `Bearer ${jwt}`, ...nginx('GET', '/v1/users/../calls') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['//', { authorization: `Bearer ${jwt}`, ...nginx('GET', '/v1/users//abc') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['a leading //', { authorization: `Bearer ${jwt}`, ...nginx('GET', '//v1/users') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['a malformed escape', { authorization: `Bearer ${jwt}`, ...nginx('GET', '/v1/users/%zz') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['absolute-form', { authorization: `Bearer ${jwt}`, ...nginx('GET', 'http://evil.example/v1/users') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['an empty target', { authorization: `Bearer ${jwt}`, ...nginx('GET', '') }, 400, 'VJG_PATH_INVALID', INVALID_REQUEST],
    ['two tokens', { authorization: [`Bearer ${jwt}`, `Bearer ${jwt}`], ...traefik('GET', '/v1/users') }, 400, 'VJG_TOKEN_AMBIGUOUS', INVALID_REQUEST]
  ]
  for (const [name, headers, status, code, challenge] of cases) {
    const res = await rawRequest(port, '/auth', headers)
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(JSON.parse(res.body).code, code, `${name}: ${code}`)
    t.equal(res.headers[CODE_HEADER], code, `${name}: ${CODE_HEADER}`)
    t.match(res.headers['www-authenticate'], challenge, `${name}: challenge`)
    t.equal(res.headers['x-vonage-application-id'], undefined, `${name}: no identity`)
  }
  const post = await rawRequest(port, '/auth', { authorization: `Bearer ${postOnly}`, ...nginx('POST', '/v1/files/f1') })
  t.equal(post.status, 200, 'the method the acl lists')
  const head = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...nginx('HEAD', '/v1/users/abc') })
  t.equal(head.status, 200, 'HEAD counts as GET')
})

t.test('the guard\'s options apply: errorFormat problem, aclPath, a token in the original query, a failing hook', async t => {
  const problem = await listening({ errorFormat: 'problem', aclPath: '/api' })
  t.teardown(() => problem.app.close())
  const jwt = await token()
  const denied = await rawRequest(problem.port, '/auth', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/api/v1/calls') })
  t.equal(denied.status, 403)
  t.match(denied.headers['content-type'], /^application\/problem\+json/)
  t.match(JSON.parse(denied.body), { type: 'https://developer.vonage.com/api-errors#forbidden', code: 'VJG_ACL_DENIED', detail: 'GET /v1/calls is not granted by the token acl' })
  const mapped = await rawRequest(problem.port, '/auth', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/api/v1/users/abc') })
  t.equal(mapped.status, 200, 'aclPath strips /api from the original path')

  const query = await listening({ tokenSources: [{ query: 'token' }] })
  t.teardown(() => query.app.close())
  const fromQuery = await rawRequest(query.port, '/auth', traefik('GET', `/v1/users/abc?token=${jwt}`))
  t.equal(fromQuery.status, 200, 'a query token source reads the original target')

  const failing = await listening({ isRevoked: () => { throw new Error('store down at 10.0.0.7:6379') } })
  t.teardown(() => failing.app.close())
  const unavailable = await rawRequest(failing.port, '/auth', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/abc') })
  t.equal(unavailable.status, 503)
  t.equal(JSON.parse(unavailable.body).code, 'VJG_UNAVAILABLE')
  t.notMatch(unavailable.body, /10\.0\.0\.7/, 'the cause stays in the log')
})

t.test('Envoy: under envoyPathPrefix the check\'s own method and path are the original request', async t => {
  const { app, port } = await listening({ envoyPathPrefix: '/envoy' })
  t.teardown(() => app.close())
  const jwt = await token({ sub: 'alice' })
  const noSub = await token()
  const postOnly = await token({ acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  // Envoy's HTTP ext_authz: the original method, path_prefix + the original path and query,
  // Content-Length 0, the allowed headers (Authorization, Host) and its own x-envoy-* ones.
  const envoy = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}`, 'content-length': '0', 'x-forwarded-proto': 'https', 'x-request-id': 'r-1', 'x-envoy-expected-rq-timeout-ms': '250' })
  const granted = await rawRequest(port, '/envoy/v1/users/abc?x=1', envoy(jwt))
  t.equal(granted.status, 200, granted.body)
  t.equal(granted.headers['x-vonage-sub'], 'alice')
  t.equal(granted.headers['x-envoy-auth-headers-to-remove'], undefined, 'both identity headers set: nothing to remove')
  const withoutSub = await rawRequest(port, '/envoy/v1/users/abc', envoy(noSub))
  t.equal(withoutSub.status, 200)
  t.equal(withoutSub.headers['x-envoy-auth-headers-to-remove'], 'x-vonage-sub', 'no sub: Envoy is asked to remove a client\'s X-Vonage-Sub')
  t.equal(withoutSub.headers['x-vonage-sub'], undefined, 'and is not given an empty one')
  const post = await rawRequest(port, '/envoy/v1/files/f1', { ...envoy(postOnly), 'content-type': 'application/json' }, 'POST')
  t.equal(post.status, 200, 'POST with an empty JSON body: the check\'s body is never parsed')
  const cases: Array<[string, string, string, Record<string, string>, number, string]> = [
    ['a method outside the acl', 'DELETE', '/envoy/v1/files/f1', envoy(postOnly), 403, 'VJG_ACL_DENIED'],
    ['a path outside the acl', 'GET', '/envoy/v1/calls', envoy(jwt), 403, 'VJG_ACL_DENIED'],
    ['%2e%2e', 'GET', '/envoy/v1/users/%2e%2e/calls', envoy(jwt), 400, 'VJG_PATH_INVALID'],
    ['/../', 'GET', '/envoy/v1/users/../calls', envoy(jwt), 400, 'VJG_PATH_INVALID'],
    ['//', 'GET', '/envoy//v1/users', envoy(jwt), 400, 'VJG_PATH_INVALID'],
    ['no token', 'GET', '/envoy/v1/users', {}, 401, 'VJG_TOKEN_MISSING'],
    ['a header pair as well', 'GET', '/envoy/v1/users', { ...envoy(jwt), ...traefik('GET', '/v1/users') }, 400, 'VJG_FORWARD_INVALID'],
    ['an identity header', 'GET', '/envoy/v1/users', { ...envoy(jwt), 'x-vonage-sub': 'mallory' }, 400, 'VJG_IDENTITY_HEADER']
  ]
  for (const [name, method, target, headers, status, code] of cases) {
    const res = await rawRequest(port, target, headers, method)
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(JSON.parse(res.body).code, code, `${name}: ${code}`)
  }
  const outside = await rawRequest(port, '/v1/users/abc', envoy(jwt))
  t.equal(outside.status, 400, 'outside the prefix a check needs a header pair')
  t.equal(JSON.parse(outside.body).code, 'VJG_FORWARD_INVALID')
})

t.test('healthPath: 204 for a probe, never an answer to a check', async t => {
  const { app, port } = await listening({ healthPath: '/healthz', envoyPathPrefix: '/envoy' })
  t.teardown(() => app.close())
  const probe = await rawRequest(port, '/healthz', {})
  t.equal(probe.status, 204)
  t.equal((await rawRequest(port, '/healthz', {}, 'HEAD')).status, 204)
  const misdirected = await rawRequest(port, '/healthz', { authorization: `Bearer ${await token()}`, ...traefik('GET', '/v1/users') })
  t.equal(misdirected.status, 400, 'a proxy pointed at the health route gets no grant')
  t.equal(JSON.parse(misdirected.body).code, 'VJG_FORWARD_INVALID')
  const post = await rawRequest(port, '/healthz', traefik('GET', '/v1/users'), 'POST')
  t.equal(post.status, 401, 'POST is a check like any other: no token')
})

t.test('it embeds: under a prefix, beside a vonageJwtGuard that guards the rest of the app', async t => {
  const { app, port } = await listening({}, async (app) => {
    await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
    app.get('/v1/users/:id', async () => ({ own: true }))
    await app.register(forwardAuth, { prefix: '/auth', publicKey: keys.publicPem, now: () => NOW_MS, envoyPathPrefix: '/envoy' })
  })
  t.teardown(() => app.close())
  const jwt = await token()
  const check = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/abc') })
  t.equal(check.status, 200, 'the outer guard does not judge the check\'s own path')
  const nested = await rawRequest(port, '/auth/verify', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/calls') })
  t.equal(nested.status, 403, 'any path under the prefix')
  const envoy = await rawRequest(port, '/auth/envoy/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(envoy.status, 200, 'the Envoy prefix under the register prefix')
  const own = await rawRequest(port, '/v1/users/abc', {})
  t.equal(own.status, 401, 'the app\'s own routes stay guarded')
})

t.test('a header whose name is a property of Object.prototype is no watched header', async t => {
  const { app, port } = await listening({ envoyPathPrefix: '/envoy' })
  t.teardown(() => app.close())
  const jwt = await token()
  for (const name of ['constructor', 'Constructor', '__proto__', 'toString']) {
    const envoy = await rawRequest(port, '/envoy/v1/users/abc', { authorization: `Bearer ${jwt}`, [name]: 'x' })
    t.equal(envoy.status, 200, `${name}: an Envoy check is decided as without it`)
    const twice = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/abc'), [name]: 'x' })
    t.equal(twice.status, 200, `${name}: a Traefik check too`)
  }
})

t.test('a check at Node\'s header count limit is refused: the headers past it were dropped unseen', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token()
  // rawRequest sends Host and Connection too: 2 + 3 + 995 = 1000 header lines, the limit of a
  // server that sets no maxHeadersCount (Node keeps 1,023 and drops the rest unseen).
  const base = { authorization: `Bearer ${jwt}`, ...traefik('GET', '/v1/users/abc') }
  const at = await rawRequest(port, '/auth', { ...base, 'x-g': Array.from({ length: 995 }, () => '1') })
  t.equal(at.status, 431, at.body)
  t.equal(JSON.parse(at.body).code, 'VJG_HEADERS_TOO_MANY')
  t.equal(at.headers[CODE_HEADER], 'VJG_HEADERS_TOO_MANY')
  t.equal(at.headers['x-vonage-sub'], undefined, 'no identity')
  const past = await rawRequest(port, '/auth', { ...base, 'x-g': Array.from({ length: 2100 }, () => '1'), 'X-Vonage-Sub': 'mallory' })
  t.equal(past.status, 431, 'an X-Vonage-Sub past the limit is never granted')
  const below = await rawRequest(port, '/auth', { ...base, 'x-g': Array.from({ length: 994 }, () => '1') })
  t.equal(below.status, 200, `999 header lines: decided as usual: ${below.body}`)
  app.server.maxHeadersCount = 2000
  const raised = await rawRequest(port, '/auth', { ...base, 'x-g': Array.from({ length: 1994 }, () => '1') })
  t.equal(raised.status, 200, `maxHeadersCount 2000: 1999 header lines are read: ${raised.body}`)
  const atRaised = await rawRequest(port, '/auth', { ...base, 'x-g': Array.from({ length: 1995 }, () => '1') })
  t.equal(atRaised.status, 431, 'maxHeadersCount 2000: 2000 header lines are refused')
})

t.test('registration refuses bad options with a TypeError naming the option', async t => {
  const cases: Array<[string, Partial<ForwardAuthOptions>, RegExp]> = [
    ['envoyPathPrefix without /', { envoyPathPrefix: 'envoy' }, /option "envoyPathPrefix"/],
    ['envoyPathPrefix /', { envoyPathPrefix: '/' }, /option "envoyPathPrefix"/],
    ['envoyPathPrefix with a trailing slash', { envoyPathPrefix: '/envoy/' }, /option "envoyPathPrefix"/],
    ['healthPath with a query', { healthPath: '/healthz?x' }, /option "healthPath"/],
    ['healthPath under envoyPathPrefix', { envoyPathPrefix: '/envoy', healthPath: '/envoy/healthz' }, /option "healthPath"/],
    ['an unknown option', { publicKey: keys.publicPem, clockTolerence: 30 } as Partial<ForwardAuthOptions>, /clockTolerence/],
    ['no key', { publicKey: undefined }, /publicKey/],
    // A check never carries the body that payload_hash signs.
    ['the vonage-webhook profile', { publicKey: undefined, profile: 'vonage-webhook', secrets: { key1: 'a-webhook-signature-secret' } }, /option "profile" vonage-webhook signs the request body .*proxy/]
  ]
  for (const [name, options, message] of cases) {
    const app = Fastify({ logger: false })
    await t.rejects(async () => { await app.register(forwardAuth, { publicKey: keys.publicPem, ...options }).ready() }, { name: 'TypeError', code: 'VJG_INVALID_OPTION', message }, name)
    await app.close()
  }
})

t.test('identityHeaders: the headers of verified claims, refused when a claim cannot travel in a header', async t => {
  t.same(identityHeaders({ application_id: APP_ID, sub: 'alice' }), { 'x-vonage-application-id': APP_ID, 'x-vonage-sub': 'alice' })
  t.same(identityHeaders({ application_id: APP_ID }), { 'x-vonage-application-id': APP_ID })
  for (const sub of ['a\r\nb', 'café', 'tab\there', 42, null]) {
    t.throws(() => identityHeaders({ application_id: APP_ID, sub }), { code: 'VJG_CLAIM_INVALID', statusCode: 401 }, `sub ${JSON.stringify(sub)}`)
  }
})

t.test('every check is one decision on the diagnostics channel, refusals made before the pipeline included, and one log line per refusal', async t => {
  const { subscribe, unsubscribe } = await import('node:diagnostics_channel')
  const { DECISION_CHANNEL } = await import('../lib/index.js')
  const events: Array<{ granted: boolean, code: string | null, method: string, path: string | null, sub: string | null }> = []
  const listener = (message: unknown): void => { events.push(message as typeof events[number]) }
  subscribe(DECISION_CHANNEL, listener)
  t.teardown(() => unsubscribe(DECISION_CHANNEL, listener))
  const lines: Array<{ level: number, code?: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  await app.register(forwardAuth, { publicKey: keys.publicPem, now: () => NOW_MS })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as { port: number }).port
  const jwt = await token({ sub: 'alice' })
  const cases: Array<[string, Record<string, string>, { granted: boolean, code: string | null, method: string, path: string | null }]> = [
    ['granted', { authorization: `Bearer ${jwt}`, ...nginx('POST', '/v1/users/a') }, { granted: true, code: null, method: 'POST', path: '/v1/users/a' }],
    ['outside the ACL', { authorization: `Bearer ${jwt}`, ...nginx('GET', '/v1/calls') }, { granted: false, code: 'VJG_ACL_DENIED', method: 'GET', path: '/v1/calls' }],
    ['no original request named', { authorization: `Bearer ${jwt}` }, { granted: false, code: 'VJG_FORWARD_INVALID', method: 'GET', path: null }],
    ['a client identity header', { authorization: `Bearer ${jwt}`, X_Vonage_Sub: 'mallory', ...nginx('GET', '/v1/users') }, { granted: false, code: 'VJG_IDENTITY_HEADER', method: 'GET', path: null }],
    // Refused while verifying, never a grant then a refusal.
    ['a sub no header can carry', { authorization: `Bearer ${await token({ sub: 'al\u00efce' })}`, ...nginx('GET', '/v1/users') }, { granted: false, code: 'VJG_CLAIM_INVALID', method: 'GET', path: '/v1/users' }]
  ]
  for (const [name, headers, expected] of cases) {
    events.length = 0
    lines.length = 0
    await rawRequest(port, '/auth', headers)
    t.equal(events.length, 1, `${name}: one decision`)
    t.match(events[0], expected, `${name}: the decision`)
    const refusals = lines.filter(line => line.code !== undefined)
    t.equal(refusals.length, expected.granted ? 0 : 1, `${name}: one log line per refusal, none for a grant`)
  }
})
