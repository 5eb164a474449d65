/**
 * forward-auth behind the real nginx and the real Caddy, each started on loopback ports with the
 * very configuration docs/deployment.md shows (read from the page at test time, ports
 * substituted; helpers/edge.ts), in front of an upstream that records what reaches it. Skipped,
 * with the reason, only when the binary is missing (`.ci/run` installs both from Debian's packages).
 */
import t, { type Test } from 'tap'
import { APP_ID, keys, otherKeys } from '../../test/helpers/keys.js'
import { freePort, liveToken, portOf, REALM, start, stop, type Server } from './helpers/bin.js'
import { caddyWithDocs, installed, nginxWithDocs, type Proxy, type StartProxy } from './helpers/edge.js'
import { exchange, recordingUpstream, spellings, type Upstream } from './helpers/http.js'

type ProxyName = 'nginx' | 'caddy'

interface Case {
  name: string
  method?: string
  target: string
  headers: Array<[string, string]>
  body?: string
  /** The status the client gets through each proxy. */
  status: Record<ProxyName, number>
  /** The guard's code the client sees (the body through Caddy, X-Vonage-Guard-Code through both). */
  code?: string
}

/** The refusals of issue 14 point 3, and what reaches the upstream of a granted request. */
async function cases (): Promise<Case[]> {
  const now = Math.floor(Date.now() / 1000)
  const jwt = await liveToken({ sub: 'alice' })
  const postOnly = await liveToken({ sub: 'alice', acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  const root = await liveToken({ acl: undefined, sub: undefined })
  const both = (status: number): Record<ProxyName, number> => ({ nginx: status, caddy: status })
  const auth = (token: string): [string, string] => ['Authorization', `Bearer ${token}`]
  return [
    { name: 'no token', target: '/v1/users/abc', headers: [], status: both(401), code: 'VJG_TOKEN_MISSING' },
    { name: 'a bad signature', target: '/v1/users/abc', headers: [auth(await liveToken({}, otherKeys.privateKey))], status: both(401), code: 'VJG_SIGNATURE_INVALID' },
    { name: 'an expired token', target: '/v1/users/abc', headers: [auth(await liveToken({ iat: now - 4000, exp: now - 3000 }))], status: both(401), code: 'VJG_TOKEN_EXPIRED' },
    { name: 'a path outside the ACL', target: '/v1/calls/abc', headers: [auth(jwt)], status: both(403), code: 'VJG_ACL_DENIED' },
    { name: 'a method outside the ACL', method: 'DELETE', target: '/v1/files/f1', headers: [auth(postOnly)], status: both(403), code: 'VJG_ACL_DENIED' },
    { name: '..%2f', target: '/v1/users/..%2fcalls', headers: [auth(jwt)], status: both(400), code: 'VJG_PATH_INVALID' },
    { name: '%2e%2e', target: '/v1/users/%2e%2e/calls', headers: [auth(jwt)], status: both(400), code: 'VJG_PATH_INVALID' },
    { name: '/../', target: '/v1/users/../calls', headers: [auth(jwt)], status: both(400), code: 'VJG_PATH_INVALID' },
    { name: '//', target: '/v1/users//abc', headers: [auth(jwt)], status: both(400), code: 'VJG_PATH_INVALID' },
    { name: 'the client\'s X-Vonage-Sub', target: '/v1/users/abc', headers: [auth(jwt), ['X-Vonage-Sub', 'mallory']], status: both(400), code: 'VJG_IDENTITY_HEADER' },
    { name: 'the client\'s X-Vonage-Sub with a token without sub (GHSA-7r4p-vjf4-gxv4)', target: '/v1/users/abc', headers: [auth(root), ['X-Vonage-Sub', 'mallory']], status: both(400), code: 'VJG_IDENTITY_HEADER' },
    // nginx drops a header with "_" itself (underscores_in_headers off): the request goes on without it.
    { name: 'the client\'s X_Vonage_Sub', target: '/v1/users/abc', headers: [auth(jwt), ['X_Vonage_Sub', 'mallory']], status: { nginx: 200, caddy: 400 } },
    { name: 'the client\'s x-vonage_application-id', target: '/v1/users/abc', headers: [auth(jwt), ['x-vonage_application-id', 'forged']], status: { nginx: 200, caddy: 400 } },
    { name: 'the client naming another request (X-Original-URI)', target: '/v1/calls/abc', headers: [auth(jwt), ['X-Original-Method', 'GET'], ['X-Original-URI', '/v1/users/abc']], status: { nginx: 403, caddy: 400 } },
    { name: 'the client naming another request (X-Forwarded-Uri)', target: '/v1/calls/abc', headers: [auth(jwt), ['X-Forwarded-Method', 'GET'], ['X-Forwarded-Uri', '/v1/users/abc']], status: { nginx: 400, caddy: 403 } },
    { name: 'granted', target: '/v1/users/abc?x=%41&y', headers: [auth(jwt)], status: both(200) },
    { name: 'granted, with a body', method: 'POST', target: '/v1/files/f1', headers: [auth(postOnly), ['Content-Type', 'application/json']], body: '{"name":"f1"}', status: both(200) },
    { name: 'granted, a token without sub', target: '/anything', headers: [auth(root)], status: both(200) }
  ]
}

async function run (t: Test, proxyName: ProxyName, startProxy: StartProxy): Promise<void> {
  const up = await recordingUpstream(t)
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const proxy = await startProxy(t, portOf(guard.base), up.port)
  await checkCases(t, proxyName, proxy, up)
  await checkGuardDown(t, proxyName, proxy, up, guard)
  await checkUnavailable(t, proxyName, startProxy, up)
}

/** A guard that cannot reach its key set answers 503 VJG_UNAVAILABLE: the client gets 503 too, never a grant. */
async function checkUnavailable (t: Test, proxyName: ProxyName, startProxy: StartProxy, up: Upstream): Promise<void> {
  const jwksUrl = `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`
  const guard = await start(['forward-auth', '--port', '0', '--jwks-url', jwksUrl, '--log-level', 'fatal'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const proxy = await startProxy(t, portOf(guard.base), up.port)
  const before = up.seen.length
  const res = await exchange(proxy.port, { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${await liveToken({}, keys.privateKey)}`]] })
  t.equal(res.status, 503, 'the key set cannot be fetched: 503')
  t.equal(res.headers['x-vonage-guard-code'], 'VJG_UNAVAILABLE', 'the client sees VJG_UNAVAILABLE')
  if (proxyName === 'caddy') t.equal(JSON.parse(res.body).code, 'VJG_UNAVAILABLE')
  t.equal(up.seen.length, before, 'nothing reaches the upstream')
}

async function checkCases (t: Test, proxyName: ProxyName, proxy: Proxy, up: Upstream): Promise<void> {
  for (const c of await cases()) {
    const before = up.seen.length
    const res = await exchange(proxy.port, { method: c.method ?? 'GET', target: c.target, headers: c.headers, ...(c.body === undefined ? {} : { body: c.body }) })
    const expected = c.status[proxyName]
    t.equal(res.status, expected, `${c.name}: ${expected}${res.status === expected ? '' : `\n${res.body}\n${proxy.log().slice(-2000)}`}`)
    const forwarded = up.seen.slice(before)
    if (expected !== 200) {
      t.equal(forwarded.length, 0, `${c.name}: never reaches the upstream`)
      if (c.code !== undefined) t.equal(res.headers['x-vonage-guard-code'], c.code, `${c.name}: the client sees ${c.code}`)
      if (expected === 401) t.match(res.headers['www-authenticate'], REALM, `${c.name}: the guard's challenge`)
      if (proxyName === 'caddy' && c.code !== undefined) t.equal(JSON.parse(res.body).code, c.code, `${c.name}: Caddy passes the guard's body`)
      continue
    }
    t.equal(forwarded.length, 1, `${c.name}: reaches the upstream once`)
    const seen = forwarded[0]
    if (seen === undefined) continue
    t.equal(seen.url, c.target, `${c.name}: the target the guard authorized, byte for byte`)
    t.equal(seen.method, c.method ?? 'GET', `${c.name}: the method`)
    if (c.body !== undefined) t.equal(seen.body, c.body, `${c.name}: the body`)
    const sub = spellings(seen, 'x-vonage-sub')
    const token = c.headers.find(([name]) => name === 'Authorization')?.[1] ?? ''
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sub?: string }
    t.same(sub.map(([, value]) => value).filter(value => value !== ''), claims.sub === undefined ? [] : [claims.sub], `${c.name}: X-Vonage-Sub is the verified sub, in one spelling`)
    t.same(spellings(seen, 'x-vonage-application-id').map(([, value]) => value), [APP_ID], `${c.name}: X-Vonage-Application-Id is the verified one`)
    const forged = seen.rawHeaders.filter((value, i) => i % 2 === 1 && (value === 'mallory' || value === 'forged'))
    t.same(forged, [], `${c.name}: no client value of an identity header reaches the upstream`)
  }
}

/** forward-auth down: the proxy fails closed. */
async function checkGuardDown (t: Test, proxyName: ProxyName, proxy: Proxy, up: Upstream, guard: Server): Promise<void> {
  t.equal(await stop(guard), 0, 'forward-auth stops on SIGTERM')
  const before = up.seen.length
  const res = await exchange(proxy.port, { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${await liveToken()}`]] })
  t.equal(res.status, proxyName === 'nginx' ? 503 : 502, 'forward-auth unreachable: the proxy refuses')
  t.equal(up.seen.length, before, 'forward-auth unreachable: nothing reaches the upstream')
}

const NO_NGINX = installed('nginx', ['-v']) ? false : 'nginx is not installed (apt-get install nginx; .ci/run installs it)'
const NO_CADDY = installed('caddy', ['version']) ? false : 'caddy is not installed (apt-get install caddy; .ci/run installs it)'

t.test('forward-auth behind nginx, with the server block of docs/deployment.md', { skip: NO_NGINX }, async t => {
  await run(t, 'nginx', nginxWithDocs)
})

t.test('forward-auth behind Caddy, with the Caddyfile of docs/deployment.md', { skip: NO_CADDY }, async t => {
  await run(t, 'caddy', caddyWithDocs)
})
