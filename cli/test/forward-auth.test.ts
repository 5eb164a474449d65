/**
 * forward-auth, the command: the requests Traefik and Envoy send (built as their sources build
 * them, with the values of docs/deployment.md), sent to the real service; its health route, its
 * flags and its shutdown. nginx and Caddy themselves run in forward-auth-proxies.test.ts.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { APP_ID, keys } from '../../test/helpers/keys.js'
import { inTurns, liveToken, portOf, REALM, run, start, stop } from './helpers/bin.js'
import { exchange, fold } from './helpers/http.js'

const DOCS = readFileSync(new URL('../../docs/deployment.md', import.meta.url), 'utf8')

/** A value of the documented configuration, so that the tests and the docs cannot drift. */
function documented (pattern: RegExp, what: string): string {
  const value = pattern.exec(DOCS)?.[1]
  if (value === undefined) throw new Error(`docs/deployment.md no longer shows ${what}`)
  return value
}

const TRAEFIK_PATH = new URL(documented(/forwardauth\.address=(\S+)/, 'the Traefik forwardauth.address')).pathname
const ENVOY_PREFIX = documented(/path_prefix: (\S+)/, 'the Envoy path_prefix')

/** Go's http.CanonicalHeaderKey: letters after "-" upper-cased, the rest lower. */
function goCanonical (name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, letter: string) => dash + letter.toUpperCase())
}

/** Traefik's hop-by-hop list (forward.go) and its managed X-headers (forwarded_header.go), compared with "_" read as "-". */
const TRAEFIK_HOP = new Set(['connection', 'keep-alive', 'te', 'trailers', 'transfer-encoding', 'upgrade'])
const TRAEFIK_X_HEADERS = new Set(['x-forwarded-proto', 'x-forwarded-scheme', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port',
  'x-forwarded-server', 'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-prefix', 'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info', 'x-scheme', 'x-real-ip'])

/**
 * The check Traefik's ForwardAuth sends for a client request, with trustForwardHeader=false
 * (writeHeader in pkg/middlewares/auth/forward.go, v3.7): GET to the address; the client's
 * headers minus the hop-by-hop ones, the names Connection lists and every managed X-header;
 * then its own X-Forwarded-For, -Method, -Proto, -Port, -Host and -Uri. Go's client adds
 * Accept-Encoding, and canonicalizes every name.
 */
function traefikCheck (client: { method: string, target: string, headers: Array<[string, string]> }): { target: string, headers: Array<[string, string]> } {
  const listed = new Set(client.headers.filter(([name]) => fold(name) === 'connection').flatMap(([, value]) => value.split(',').map(v => fold(v.trim()))))
  const headers: Array<[string, string]> = client.headers
    .filter(([name]) => !TRAEFIK_HOP.has(name.toLowerCase()) && !listed.has(name.toLowerCase()) && !TRAEFIK_X_HEADERS.has(fold(name)))
    .map(([name, value]) => [goCanonical(name), value])
  if (!headers.some(([name]) => name === 'User-Agent')) headers.push(['User-Agent', ''])
  headers.push(['X-Forwarded-For', '203.0.113.7'], ['X-Forwarded-Method', client.method], ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Port', '443'], ['X-Forwarded-Host', 'api.example.com'], ['X-Forwarded-Uri', client.target], ['Accept-Encoding', 'gzip'])
  return { target: TRAEFIK_PATH, headers: headers.filter(([, value]) => value !== '') }
}

/**
 * The check Envoy's HTTP ext_authz sends (RawHttpClientImpl::check in
 * ext_authz_http_impl.cc): the original method; path_prefix + the original path and query;
 * Content-Length 0; of the client's headers only Authorization, the Host and the
 * allowed_headers of the docs (the two identity headers); and the router's own x-envoy-* ones.
 */
function envoyCheck (client: { method: string, target: string, headers: Array<[string, string]> }): { method: string, target: string, headers: Array<[string, string]> } {
  const allowed = new Set(['authorization', 'x-vonage-application-id', 'x-vonage-sub'])
  const headers: Array<[string, string]> = client.headers.filter(([name]) => allowed.has(name.toLowerCase())).map(([name, value]) => [name.toLowerCase(), value])
  headers.push(['content-length', '0'], ['x-envoy-expected-rq-timeout-ms', '1000'], ['x-forwarded-proto', 'https'], ['x-request-id', 'a1b2c3'])
  return { method: client.method, target: `${ENVOY_PREFIX}${client.target}`, headers }
}

t.test('the checks Traefik sends (trustForwardHeader=false, the docs\' labels)', async t => {
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const port = portOf(guard.base)
  const jwt = await liveToken({ sub: 'alice' })
  const postOnly = await liveToken({ acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  const auth = (token: string): [string, string] => ['Authorization', `Bearer ${token}`]
  const cases: Array<[string, string, string, Array<[string, string]>, number, string | null]> = [
    ['granted', 'GET', '/v1/users/abc?x=1', [auth(jwt), ['Connection', 'keep-alive, X-Hop'], ['X-Hop', '1'], ['Keep-Alive', 'timeout=5']], 200, null],
    ['a method the acl lists', 'POST', '/v1/files/f1', [auth(postOnly), ['Content-Type', 'application/json']], 200, null],
    ['no token', 'GET', '/v1/users/abc', [], 401, 'VJG_TOKEN_MISSING'],
    ['a method outside the acl', 'DELETE', '/v1/files/f1', [auth(postOnly)], 403, 'VJG_ACL_DENIED'],
    ['a path outside the acl', 'GET', '/v1/calls', [auth(jwt)], 403, 'VJG_ACL_DENIED'],
    // Traefik removes a client's X-Forwarded-* in any spelling, but not X-Original-*:
    ['the client\'s X-Original-URI naming another request', 'GET', '/v1/calls', [auth(jwt), ['X-Original-Method', 'GET'], ['X-Original-URI', '/v1/users/abc']], 400, 'VJG_FORWARD_INVALID'],
    ['the client\'s X-Forwarded-Uri (removed by Traefik)', 'GET', '/v1/users/abc', [auth(jwt), ['X-Forwarded-Uri', '/v1/calls'], ['X_Forwarded_Method', 'DELETE']], 200, null],
    ['the client\'s X-Vonage-Sub', 'GET', '/v1/users/abc', [auth(jwt), ['X-Vonage-Sub', 'mallory']], 400, 'VJG_IDENTITY_HEADER'],
    ['the client\'s X_Vonage_Sub (Traefik keeps "_" names by default)', 'GET', '/v1/users/abc', [auth(jwt), ['X_Vonage_Sub', 'mallory']], 400, 'VJG_IDENTITY_HEADER'],
    ['the client\'s X-Vonage-Application-Id', 'GET', '/v1/users/abc', [auth(jwt), ['x-vonage-application-id', 'forged']], 400, 'VJG_IDENTITY_HEADER'],
    ['the client\'s X.Vonage.Sub (Traefik keeps "." names too)', 'GET', '/v1/users/abc', [auth(jwt), ['X.Vonage.Sub', 'mallory']], 400, 'VJG_IDENTITY_HEADER'],
    ['X-HTTP-Method-Override on a POST the acl lists', 'POST', '/v1/files/f1', [auth(postOnly), ['X-HTTP-Method-Override', 'DELETE']], 400, 'VJG_METHOD_OVERRIDE'],
    ['?_method=DELETE on a POST the acl lists', 'POST', '/v1/files/f1?_method=DELETE', [auth(postOnly)], 400, 'VJG_METHOD_OVERRIDE'],
    ['X-Original-URL', 'GET', '/v1/users/abc', [auth(jwt), ['X-Original-URL', '/v1/calls']], 400, 'VJG_URL_REWRITE'],
    ['X_Rewrite_URL', 'GET', '/v1/users/abc', [auth(jwt), ['X_Rewrite_URL', '/v1/calls']], 400, 'VJG_URL_REWRITE']
  ]
  for (const [name, method, target, headers, status, code] of cases) {
    const check = traefikCheck({ method, target, headers })
    const res = await exchange(port, { target: check.target, headers: check.headers })
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(res.headers['x-vonage-guard-code'], code ?? undefined, `${name}: X-Vonage-Guard-Code`)
    if (status === 200) {
      t.equal(res.headers['x-vonage-application-id'], APP_ID, `${name}: the application id for authResponseHeaders`)
      t.ok('x-vonage-sub' in res.headers, `${name}: X-Vonage-Sub always present, so Traefik replaces a client's copy`)
    } else {
      t.equal(JSON.parse(res.body).code, code, `${name}: the body Traefik passes to the client`)
      if (status === 401) t.match(res.headers['www-authenticate'], REALM)
    }
  }
  t.equal(await stop(guard), 0)
})

t.test('the checks Envoy sends (--envoy-path-prefix as the docs\' path_prefix)', async t => {
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--envoy-path-prefix', ENVOY_PREFIX, '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const port = portOf(guard.base)
  const jwt = await liveToken({ sub: 'alice' })
  const noSub = await liveToken()
  const postOnly = await liveToken({ sub: 'alice', acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  const auth = (token: string): [string, string] => ['Authorization', `Bearer ${token}`]
  const cases: Array<[string, string, string, Array<[string, string]>, number, string | null]> = [
    ['granted', 'GET', '/v1/users/abc?x=1', [auth(jwt), ['Cookie', 'a=b']], 200, null],
    ['granted POST', 'POST', '/v1/files/f1', [auth(postOnly), ['Content-Type', 'application/json']], 200, null],
    ['a method outside the acl', 'DELETE', '/v1/files/f1', [auth(postOnly)], 403, 'VJG_ACL_DENIED'],
    ['no token', 'GET', '/v1/users/abc', [], 401, 'VJG_TOKEN_MISSING'],
    ['%2e%2e', 'GET', '/v1/users/%2e%2e/calls', [auth(jwt)], 400, 'VJG_PATH_INVALID'],
    ['/../', 'GET', '/v1/users/../calls', [auth(jwt)], 400, 'VJG_PATH_INVALID'],
    ['//', 'GET', '/v1/users//abc', [auth(jwt)], 400, 'VJG_PATH_INVALID'],
    ['the client\'s X-Vonage-Sub (allowed_headers lets the guard see it)', 'GET', '/v1/users/abc', [auth(jwt), ['X-Vonage-Sub', 'mallory']], 400, 'VJG_IDENTITY_HEADER']
  ]
  for (const [name, method, target, headers, status, code] of cases) {
    const check = envoyCheck({ method, target, headers })
    const res = await exchange(port, { method: check.method, target: check.target, headers: check.headers })
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(res.headers['x-vonage-guard-code'], code ?? undefined, `${name}: X-Vonage-Guard-Code`)
    if (status === 200) t.equal(res.headers['x-vonage-sub'], 'alice', `${name}: the sub for allowed_upstream_headers`)
  }
  const withoutSub = envoyCheck({ method: 'GET', target: '/v1/users/abc', headers: [auth(noSub)] })
  const res = await exchange(port, withoutSub)
  t.equal(res.status, 200)
  t.equal(res.headers['x-envoy-auth-headers-to-remove'], 'x-vonage-sub', 'a token without sub: Envoy removes a client\'s X-Vonage-Sub')
  const misconfigured = await exchange(port, { target: '/v1/users/abc', headers: [auth(jwt), ['content-length', '0']] })
  t.equal(misconfigured.status, 400, 'an Envoy without path_prefix reaches the pair checks: never granted')
  t.equal(misconfigured.headers['x-vonage-guard-code'], 'VJG_FORWARD_INVALID')
  t.equal(await stop(guard), 0)
})

t.test('forward-auth: the health route, --error-format problem, and the banner', async t => {
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--error-format', 'problem', '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  t.match(guard.stdout(), /vonage-jwt-guard forward-auth: listening on http:\/\/127\.0\.0\.1:\d+, checks on any path \(Ctrl-C to stop\)/)
  const port = portOf(guard.base)
  t.equal((await exchange(port, { target: '/healthz' })).status, 204, 'GET /healthz: 204')
  t.equal((await exchange(port, { method: 'HEAD', target: '/healthz' })).status, 204, 'HEAD /healthz: 204')
  const pointed = await exchange(port, { target: '/healthz', headers: [['X-Forwarded-Method', 'GET'], ['X-Forwarded-Uri', '/v1/users'], ['Authorization', `Bearer ${await liveToken()}`]] })
  t.equal(pointed.status, 400, 'a proxy pointed at the health route is refused')
  t.match(pointed.headers['content-type'], /^application\/problem\+json/)
  t.match(JSON.parse(pointed.body), { code: 'VJG_FORWARD_INVALID', type: 'https://developer.vonage.com/api-errors#bad-request' })
  t.equal(await stop(guard), 0, 'SIGTERM: exit 0')

  const moved = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--health-path', '/-/health', '--envoy-path-prefix', '/ext', '--log-level', 'warn'])
  t.teardown(() => { moved.child.kill('SIGKILL') })
  t.match(moved.stdout(), /Envoy checks under \/ext\//)
  t.equal((await exchange(portOf(moved.base), { target: '/-/health' })).status, 204)
  t.equal((await exchange(portOf(moved.base), { target: '/healthz' })).status, 400, '/healthz is a check path then: no header pair, refused')
  t.equal(await stop(moved), 0)
})

t.test('forward-auth refuses a bad command line with exit 2', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no key', ['forward-auth'], /no keys: give --public-key, --public-keys-dir or --jwks-url/],
    ['--envoy-path-prefix without /', ['forward-auth', '--public-key', keys.publicPem, '--envoy-path-prefix', 'envoy'], /--envoy-path-prefix/],
    ['--envoy-path-prefix /', ['forward-auth', '--public-key', keys.publicPem, '--envoy-path-prefix', '/'], /--envoy-path-prefix/],
    ['the health route under the Envoy prefix', ['forward-auth', '--public-key', keys.publicPem, '--envoy-path-prefix', '/envoy', '--health-path', '/envoy/healthz'], /option "healthPath"/],
    ['--error-format xml', ['forward-auth', '--public-key', keys.publicPem, '--error-format', 'xml'], /--error-format/],
    ['a bad --acl-path', ['forward-auth', '--public-key', keys.publicPem, '--acl-path', 'api/'], /option "aclPath"/],
    // A check never carries the body payload_hash signs: a captured webhook token would pass with any body.
    ['--profile vonage-webhook', ['forward-auth', '--profile', 'vonage-webhook', '--secret', 'key1=a-webhook-signature-secret'], /--profile: .*vonage-webhook signs the request body \(payload_hash\).*the CLI's proxy/]
  ]
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
  }
})
