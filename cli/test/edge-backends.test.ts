/**
 * What the backends people put behind the guard read, not what the guard's own tests send: PHP
 * (php8.2-fpm behind the documented Caddy `php_fastcgi` block, and `php -S` behind `proxy`),
 * which reads `X.Vonage.Sub` as `HTTP_X_VONAGE_SUB` and `?.method=` as `_method`; and Express 5
 * with `method-override`, behind the documented nginx and Caddy configurations and behind
 * `proxy`. A token granted only `POST` must never run a `DELETE` handler, and a backend must only
 * ever read the identity the guard verified. Each part is skipped, with the reason, only when its
 * binary is missing (`.ci/run` installs them from Debian's packages).
 */
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import express from 'express'
import methodOverride from 'method-override'
import t, { type Test } from 'tap'
import { APP_ID, keys } from '../../test/helpers/keys.js'
import { liveToken, portOf, start, stop } from './helpers/bin.js'
import { caddyWithDocs, docsConfig, installed, nginxWithDocs, phpFpmBinary, startCaddy, startPhpFpm, startPhpServer, substitute, type StartProxy } from './helpers/edge.js'
import { exchange, METHOD_OVERRIDES } from './helpers/http.js'

const NO_CADDY = installed('caddy', ['version']) ? false : 'caddy is not installed (apt-get install caddy; .ci/run installs it)'
const NO_NGINX = installed('nginx', ['-v']) ? false : 'nginx is not installed (apt-get install nginx; .ci/run installs it)'
const NO_PHP = installed('php', ['-v']) ? false : 'php is not installed (apt-get install php-cli; .ci/run installs it)'
const NO_FPM = phpFpmBinary() !== undefined ? false : 'php-fpm is not installed (apt-get install php-fpm; .ci/run installs it)'

/**
 * The PHP application: what a framework reads of the request (the method after Laravel's and
 * Symfony's `_method` and `X-HTTP-Method-Override` rules, the identity and forwarding headers as
 * `$_SERVER` has them), and a line per request in calls.log.
 */
const PHP_APP = `<?php
$method = $_SERVER['REQUEST_METHOD'];
if ($method === 'POST' && isset($_REQUEST['_method']) && is_string($_REQUEST['_method'])) $method = strtoupper($_REQUEST['_method']);
if ($method === 'POST' && isset($_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE'])) $method = strtoupper($_SERVER['HTTP_X_HTTP_METHOD_OVERRIDE']);
file_put_contents(__DIR__ . '/calls.log', $method . "\\n", FILE_APPEND | LOCK_EX);
header('Content-Type: application/json');
echo json_encode([
  'method' => $method,
  'sub' => $_SERVER['HTTP_X_VONAGE_SUB'] ?? null,
  'app' => $_SERVER['HTTP_X_VONAGE_APPLICATION_ID'] ?? null,
  'originalUrl' => $_SERVER['HTTP_X_ORIGINAL_URL'] ?? null,
  'realIp' => $_SERVER['HTTP_X_REAL_IP'] ?? null,
  'clientIp' => $_SERVER['HTTP_X_CLIENT_IP'] ?? null
]);
`

function phpRoot (t: Test): { root: string, calls: () => string[] } {
  const root = t.testdir({ 'index.php': PHP_APP, 'calls.log': '' })
  return { root, calls: () => readFileSync(join(root, 'calls.log'), 'utf8').split('\n').filter(line => line !== '') }
}

const auth = (token: string): [string, string] => ['Authorization', `Bearer ${token}`]
const json = (body: string): Record<string, unknown> => JSON.parse(body) as Record<string, unknown>

/** Tokens: bob's, one without sub, and one granting only POST under /v1/files. */
async function tokens (): Promise<{ bob: string, noSub: string, postOnly: string }> {
  return {
    bob: await liveToken({ sub: 'bob' }),
    noSub: await liveToken({ sub: undefined }),
    postOnly: await liveToken({ sub: 'bob', acl: { paths: { '/v1/files/**': { methods: ['POST'] } } } })
  }
}

/** What a client may send to be read as alice, to reach another URL or to claim another address. */
const FORGED: Array<{ header: string, value: string, code: string }> = [
  { header: 'X.Vonage.Sub', value: 'alice', code: 'VJG_IDENTITY_HEADER' },
  { header: 'X_Vonage_Sub', value: 'alice', code: 'VJG_IDENTITY_HEADER' },
  { header: 'x.vonage-sub', value: 'alice', code: 'VJG_IDENTITY_HEADER' },
  { header: 'X.Vonage.Application.Id', value: 'forged', code: 'VJG_IDENTITY_HEADER' },
  { header: 'X.Original.URL', value: '/admin', code: 'VJG_URL_REWRITE' },
  { header: 'X.Real.IP', value: '6.6.6.6', code: 'VJG_FORWARD_INVALID' },
  { header: 'X.Client.IP', value: '6.6.6.6', code: 'VJG_FORWARD_INVALID' }
]

/** Method overrides a token granted only POST may try (helpers/http.ts), each refused with VJG_METHOD_OVERRIDE. */
const OVERRIDES = METHOD_OVERRIDES

t.test('PHP (php-fpm) behind the documented Caddy php_fastcgi block: PHP reads only the identity the guard verified, and never a DELETE', { skip: NO_CADDY || NO_FPM }, async t => {
  const { root, calls } = phpRoot(t)
  const fpm = await startPhpFpm(t)
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const caddy = await startCaddy(t, (port) => substitute(docsConfig('caddy-php'), [
    ['api.example.com {', `http://127.0.0.1:${port} {`],
    ['127.0.0.1:3001', `127.0.0.1:${portOf(guard.base)}`],
    ['/var/www/api/public', root],
    ['unix//run/php/php8.2-fpm.sock', `127.0.0.1:${fpm.port}`]
  ]))
  const { bob, noSub, postOnly } = await tokens()

  // Caddy passes every spelling on in Go's map order: ten tries each, so one order cannot hide it.
  for (const { header, value, code } of FORGED) {
    for (const token of [bob, noSub]) {
      for (let i = 0; i < 10; i++) {
        const res = await exchange(caddy.port, { target: '/v1/users/abc', headers: [auth(token), [header, value]] })
        t.equal(res.status, 400, `${header}: 400`)
        t.equal(res.headers['x-vonage-guard-code'], code, `${header}: ${code}`)
        if (res.status !== 400) break
      }
    }
  }
  t.same(calls(), [], 'no forged request reached PHP')

  for (let i = 0; i < 10; i++) {
    const granted = await exchange(caddy.port, { target: '/v1/users/abc', headers: [auth(bob)] })
    t.equal(granted.status, 200, granted.body)
    t.same([json(granted.body).sub, json(granted.body).app], ['bob', APP_ID], 'PHP reads the verified sub and application id')
  }
  const anonymous = await exchange(caddy.port, { target: '/v1/users/abc', headers: [auth(noSub)] })
  t.equal(anonymous.status, 200)
  t.not(json(anonymous.body).sub, 'alice')

  for (const { name, query, headers = [] } of OVERRIDES) {
    const res = await exchange(caddy.port, { method: 'POST', target: `/v1/files/f1${query === undefined ? '' : `?${query}`}`, headers: [auth(postOnly), ...headers], body: '{}' })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(res.headers['x-vonage-guard-code'], 'VJG_METHOD_OVERRIDE', `${name}: VJG_METHOD_OVERRIDE`)
  }
  // Go writes header names in sorted order: 1,990 X-G lines come before the client's X-Vonage-Sub,
  // past the 1,000 lines Node reads of a check; the check is refused, not decided without it.
  const many: Array<[string, string]> = [auth(bob), ...Array.from({ length: 1990 }, (): [string, string] => ['X-G', '1']), ['X-Vonage-Sub', 'alice']]
  const before = calls().length
  const crowded = await exchange(caddy.port, { target: '/v1/users/abc', headers: many })
  t.equal(crowded.status, 431, 'a check past Node\'s header count limit: 431')
  // From the guard on Node 20, which drops the lines past its limit; Node 22 and later refuse them itself.
  if (crowded.headers['x-vonage-guard-code'] !== undefined) t.equal(crowded.headers['x-vonage-guard-code'], 'VJG_HEADERS_TOO_MANY')
  t.equal(calls().length, before, 'nothing reached PHP')
  t.equal((await exchange(caddy.port, { method: 'DELETE', target: '/v1/files/f1', headers: [auth(postOnly)] })).status, 403, 'DELETE itself: 403')
  t.equal((await exchange(caddy.port, { method: 'POST', target: '/v1/files/f1', headers: [auth(postOnly)], body: '{}' })).status, 200, 'POST: granted')
  t.notOk(calls().includes('DELETE'), 'PHP never ran a DELETE')
  t.equal(await stop(guard), 0)
})

t.test('PHP (php -S) behind proxy: a forged spelling never reaches it, and a _method never runs', { skip: NO_PHP }, async t => {
  const { root, calls } = phpRoot(t)
  const php = await startPhpServer(t, root, 'index.php')
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${php.port}`, '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const { bob, noSub, postOnly } = await tokens()

  const forged = FORGED.map(({ header, value }): [string, string] => [header, value])
  const withoutSub = await exchange(port, { target: '/v1/users/abc', headers: [auth(noSub), ...forged] })
  t.equal(withoutSub.status, 200, withoutSub.body)
  t.same(json(withoutSub.body), { method: 'GET', sub: null, app: APP_ID, originalUrl: null, realIp: null, clientIp: null },
    'a token without sub: PHP reads no sub, no forged URL, no forged address')
  const asBob = await exchange(port, { target: '/v1/users/abc', headers: [auth(bob), ...forged] })
  t.same([json(asBob.body).sub, json(asBob.body).app], ['bob', APP_ID], 'bob\'s token: PHP reads bob')

  for (const { name, query, headers = [] } of OVERRIDES) {
    const res = await exchange(port, { method: 'POST', target: `/v1/files/f1${query === undefined ? '' : `?${query}`}`, headers: [auth(postOnly), ...headers], body: '{}' })
    t.equal(res.status, 400, `${name}: 400`)
    t.equal(json(res.body).code, 'VJG_METHOD_OVERRIDE', `${name}: VJG_METHOD_OVERRIDE`)
  }
  t.notOk(calls().includes('DELETE'), 'PHP never ran a DELETE')
  t.equal(await stop(proxy), 0)
})

/** Express 5 with method-override reading every header and the query, as apps configure it; counts the handlers that ran. */
async function expressWithOverrides (t: Test): Promise<{ port: number, ran: string[] }> {
  const app = express()
  for (const getter of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override', '_method']) app.use(methodOverride(getter))
  const ran: string[] = []
  app.post('/v1/files/:id', (req, res) => { ran.push('POST'); res.json({ handler: 'POST' }) })
  app.delete('/v1/files/:id', (req, res) => { ran.push('DELETE'); res.json({ handler: 'DELETE' }) })
  const server = app.listen(0, '127.0.0.1')
  await new Promise(resolve => server.once('listening', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  return { port: (server.address() as AddressInfo).port, ran }
}

/** What a token granted only POST may send, and what each proxy answers. */
const EXPRESS_CASES: Array<{ name: string, method: string, query?: string, headers?: Array<[string, string]>, status: number, code?: string }> = [
  { name: 'DELETE', method: 'DELETE', status: 403, code: 'VJG_ACL_DENIED' },
  ...OVERRIDES.map(({ name, query, headers = [] }) => ({ name, method: 'POST', query, headers, status: 400, code: 'VJG_METHOD_OVERRIDE' })),
  { name: 'X-Original-URL', method: 'POST', headers: [['X-Original-URL', '/v1/files/f2']], status: 400, code: 'VJG_URL_REWRITE' },
  { name: 'X-Rewrite-URL', method: 'POST', headers: [['X-Rewrite-URL', '/v1/files/f2']], status: 400, code: 'VJG_URL_REWRITE' },
  { name: 'X-Forwarded-Prefix', method: 'POST', headers: [['X-Forwarded-Prefix', '/admin']], status: 400, code: 'VJG_URL_REWRITE' },
  { name: 'POST', method: 'POST', status: 200 }
]

async function checkExpress (t: Test, name: string, startProxy: StartProxy): Promise<void> {
  const upstream = await expressWithOverrides(t)
  const guard = await start(['forward-auth', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { guard.child.kill('SIGKILL') })
  const proxy = await startProxy(t, portOf(guard.base), upstream.port)
  const { postOnly } = await tokens()
  let posts = 0
  for (const c of EXPRESS_CASES) {
    const res = await exchange(proxy.port, { method: c.method, target: `/v1/files/f1${c.query === undefined ? '' : `?${c.query}`}`, headers: [auth(postOnly), ['Content-Type', 'application/json'], ...(c.headers ?? [])], body: '{}' })
    // nginx drops a header whose name holds anything but letters, digits and "-"
    // (ignore_invalid_headers, its default): the POST goes on without it.
    const dropped = name === 'nginx' && (c.headers ?? []).some(([header]) => /[^A-Za-z0-9-]/.test(header))
    if (dropped || c.status === 200) posts++
    t.equal(res.status, dropped ? 200 : c.status, `${name}, ${c.name}: ${dropped ? 'dropped by nginx' : c.status}`)
    t.equal(res.headers['x-vonage-guard-code'], dropped ? undefined : c.code, `${name}, ${c.name}: ${c.code ?? 'no code'}`)
  }
  t.same(upstream.ran, Array.from({ length: posts }, () => 'POST'), `${name}: only plain POSTs reached Express, whose DELETE handler never ran`)
  t.equal(await stop(guard), 0)
}

t.test('Express 5 with method-override behind the documented nginx: a token granted only POST never runs DELETE', { skip: NO_NGINX }, async t => {
  await checkExpress(t, 'nginx', nginxWithDocs)
})

t.test('Express 5 with method-override behind the documented Caddy: a token granted only POST never runs DELETE', { skip: NO_CADDY }, async t => {
  await checkExpress(t, 'caddy', caddyWithDocs)
})

t.test('Express 5 with method-override behind proxy: a token granted only POST never runs DELETE', async t => {
  const upstream = await expressWithOverrides(t)
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${upstream.port}`, '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const { postOnly } = await tokens()
  for (const c of EXPRESS_CASES) {
    const res = await exchange(portOf(proxy.base), { method: c.method, target: `/v1/files/f1${c.query === undefined ? '' : `?${c.query}`}`, headers: [auth(postOnly), ['Content-Type', 'application/json'], ...(c.headers ?? [])], body: '{}' })
    // The proxy strips URL rewrite headers instead of refusing them: the POST goes up without them.
    const rewrite = c.code === 'VJG_URL_REWRITE'
    t.equal(res.status, rewrite ? 200 : c.status, `proxy, ${c.name}`)
    if (!rewrite && c.code !== undefined) t.equal(json(res.body).code, c.code, `proxy, ${c.name}: ${c.code}`)
  }
  t.notOk(upstream.ran.includes('DELETE'), 'the DELETE handler never ran')
  t.equal(upstream.ran.length, 4, 'the plain POST and the three with a rewrite header removed')
  t.equal(await stop(proxy), 0)
})
