/**
 * proxy: the guard in front of a real upstream; only granted requests go up, byte for byte, with
 * the verified identity.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, claims, keys, otherKeys, sign } from '../../test/helpers/keys.js'
import { REALM, inTurns, liveToken, portOf, run, start, stop } from './helpers/bin.js'


interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/** A real upstream that records the raw request target and headers it receives. */
async function upstream (t: Test): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ upstream: true }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, seen }
}

t.test('proxy forwards a granted request byte for byte with the verified identity, and never a refused one', async t => {
  const up = await upstream(t)
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', join(dir, 'public.key'), '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken({ sub: 'alice' })

  const target = "/v1/users/abc%20d/x:y@z?b=2&a=1&a=%2F&empty&sp=%20+&q=a%3Db&raw=~!$'()*,;:@/?"
  const granted = await rawRequest(port, target, {
    authorization: `Bearer ${jwt}`,
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
    'x-forwarded-prefix': '/admin',
    'x-http-method-override': 'DELETE',
    'x-vonage-application-id': 'forged-app',
    'X-Vonage-Sub': 'mallory'
  })
  t.equal(granted.status, 200, granted.body)
  t.same(JSON.parse(granted.body), { upstream: true })
  t.equal(up.seen.length, 1)
  const seen = up.seen[0]!
  t.equal(seen.url, target, 'path and query forwarded byte for byte')
  t.equal(seen.method, 'GET')
  for (const name of ['x-original-url', 'x-rewrite-url', 'x-forwarded-prefix', 'x-http-method-override']) {
    t.equal(seen.headers[name], undefined, `${name} stripped`)
  }
  t.equal(seen.headers['x-vonage-application-id'], APP_ID, 'application id from the verified claims')
  t.equal(seen.headers['x-vonage-sub'], 'alice', 'sub from the verified claims, not the client\'s copy')

  const posted = await new Promise<{ status: number }>((resolve, reject) => {
    const req = httpRequest(`${proxy.base}/v1/conversations/CON-1/events`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode! }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ type: 'text' }))
  })
  t.equal(posted.status, 200)
  t.equal(up.seen.length, 2)
  t.equal(up.seen[1]!.method, 'POST')
  t.equal(up.seen[1]!.body, '{"type":"text"}', 'the body goes up unchanged')

  const rootToken = await liveToken({ acl: undefined, sub: undefined })
  const root = await rawRequest(port, '/anything', { authorization: `Bearer ${rootToken}`, 'x-vonage-sub': 'mallory' })
  t.equal(root.status, 200)
  t.equal(up.seen[2]!.headers['x-vonage-sub'], undefined, 'no sub claim: the client\'s X-Vonage-Sub is removed, none is set')

  const forwarded = up.seen.length
  const refusals: Array<[string, string, Record<string, string | string[]>, number, string, string]> = [
    ['no token', '/v1/users', {}, 401, 'VJG_TOKEN_MISSING', REALM],
    ['another key', '/v1/users', { authorization: `Bearer ${await liveToken({}, otherKeys.privateKey)}` }, 401, 'VJG_SIGNATURE_INVALID', `${REALM}, error="invalid_token"`],
    ['expired', '/v1/users', { authorization: `Bearer ${await liveToken({ iat: Math.floor(Date.now() / 1000) - 4000, exp: Math.floor(Date.now() / 1000) - 3000 })}` }, 401, 'VJG_TOKEN_EXPIRED', `${REALM}, error="invalid_token"`],
    ['a sub with a line break', '/v1/users', { authorization: `Bearer ${await liveToken({ sub: 'alice\r\nx-admin: 1' })}` }, 401, 'VJG_CLAIM_INVALID', `${REALM}, error="invalid_token"`],
    ['an application_id with a control character', '/v1/users', { authorization: `Bearer ${await liveToken({ application_id: 'app\u0000' })}` }, 401, 'VJG_CLAIM_INVALID', `${REALM}, error="invalid_token"`],
    ['outside the acl', '/v1/calls/abc', { authorization: `Bearer ${jwt}` }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['an encoded dot segment', '/v1/users/%2e%2e/calls', { authorization: `Bearer ${jwt}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`],
    ['an encoded slash', '/v1/users%2f..%2fcalls', { authorization: `Bearer ${jwt}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`],
    ['two tokens', '/v1/users', { authorization: [`Bearer ${jwt}`, `Bearer ${jwt}`] }, 400, 'VJG_TOKEN_AMBIGUOUS', `${REALM}, error="invalid_request"`]
  ]
  for (const [name, path, headers, status, code, challenge] of refusals) {
    const res = await rawRequest(port, path, headers)
    t.equal(res.status, status, `${name}: status`)
    t.equal(JSON.parse(res.body).code, code, `${name}: code`)
    t.match(res.headers['www-authenticate'], challenge, `${name}: challenge`)
  }
  const badEscape = await rawRequest(port, '/v1/users/%zz', { authorization: `Bearer ${jwt}` })
  t.equal(badEscape.status, 400, 'a malformed escape: Fastify answers before the guard')
  t.equal(JSON.parse(badEscape.body).code, 'FST_ERR_BAD_URL')
  t.equal(up.seen.length, forwarded, 'no refused request reached the upstream')
  t.equal(await stop(proxy), 0)
})

t.test('proxy with an upstream path and --acl-path: the ACL sees the Vonage path, the upstream the whole one', async t => {
  const up = await upstream(t)
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}/base`, '--port', '0', '--public-key', keys.publicPem, '--acl-path', '/api', '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken()
  const ok = await rawRequest(port, '/api/v1/users/abc?x=%41', { authorization: `Bearer ${jwt}` })
  t.equal(ok.status, 200, ok.body)
  t.equal(up.seen[0]?.url, '/base/api/v1/users/abc?x=%41')
  const outside = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(outside.status, 403, 'a path outside the --acl-path prefix is granted by no rule')
  t.equal(JSON.parse(outside.body).code, 'VJG_ACL_DENIED')
  t.equal(up.seen.length, 1)
  t.equal(await stop(proxy), 0)
})

t.test('proxy --jwks-url verifies with the keys of a remote key set, chosen by kid', async t => {
  const up = await upstream(t)
  const jwk = { ...keys.publicKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'RS256', use: 'sig' }
  let fetches = 0
  const jwks = createServer((_req, res) => {
    fetches++
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    jwks.closeAllConnections()
    jwks.close(() => resolve())
  }))
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--jwks-url', jwksUrl, '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const now = Math.floor(Date.now() / 1000)
  const signed = await sign(claims({ iat: now - 10, exp: now + 600 }), { header: { kid: 'key-1' } })
  const ok = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${signed}` })
  t.equal(ok.status, 200, ok.body)
  t.equal(up.seen.length, 1)
  t.ok(fetches >= 1, 'the key set was fetched')
  const forged = await sign(claims({ iat: now - 10, exp: now + 600 }), { key: otherKeys.privateKey, header: { kid: 'key-1' } })
  const refused = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${forged}` })
  t.equal(refused.status, 401)
  t.equal(JSON.parse(refused.body).code, 'VJG_SIGNATURE_INVALID')
  t.equal(up.seen.length, 1, 'the forged token was not forwarded')
  t.equal(await stop(proxy), 0)
})

t.test('proxy refuses a bad command line with exit 2', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no --upstream', ['proxy', '--public-key', keys.publicPem], /--upstream/],
    ['no key', ['proxy', '--upstream', 'http://127.0.0.1:1'], /exactly one of --public-key and --jwks-url/],
    ['a JWKS over plain http off localhost', ['proxy', '--upstream', 'http://127.0.0.1:1', '--jwks-url', 'http://keys.example.com/jwks.json'], /option "jwksUrl" must be https/],
    ['an upstream that is not a URL', ['proxy', '--upstream', 'localhost:8080', '--public-key', keys.publicPem], /--upstream/],
    ['an upstream with a query', ['proxy', '--upstream', 'http://127.0.0.1:1/?a=1', '--public-key', keys.publicPem], /no query/],
    ['a bad --acl-path', ['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', keys.publicPem, '--acl-path', 'api/'], /option "aclPath"/]
  ]
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
  }
})
