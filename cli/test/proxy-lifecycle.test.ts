/**
 * proxy around its upstream: an upstream that is down or slow (502 / 504 in the guard's error
 * shape, no internal address, the cause logged), the unguarded health route, and a graceful
 * shutdown on SIGTERM that finishes the requests in flight.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { keys } from '../../test/helpers/keys.js'
import { freePort, inTurns, liveToken, portOf, run, start, stop, type Server } from './helpers/bin.js'
import { installed } from './helpers/edge.js'
import { exchange, recordingUpstream } from './helpers/http.js'

async function proxyTo (t: Test, upstream: string, extra: string[] = []): Promise<{ port: number, proxy: Server }> {
  const proxy = await start(['proxy', '--upstream', upstream, '--port', '0', '--public-key', keys.publicPem, '--log-level', 'error', ...extra])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  return { port: portOf(proxy.base), proxy }
}

/** Resolves once `check` is true (polled every 20 ms, 10 s at most). */
async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('an upstream that is down: 502 VJG_UPSTREAM_FAILED in the guard\'s shape, no internal address, the cause logged', async t => {
  const downPort = await freePort()
  const jwt = await liveToken()
  for (const format of ['fastify', 'problem']) {
    const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${downPort}`, ['--error-format', format])
    const res = await exchange(port, { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${jwt}`]] })
    t.equal(res.status, 502, `${format}: 502`)
    const body = JSON.parse(res.body) as Record<string, unknown>
    t.equal(body.code, 'VJG_UPSTREAM_FAILED', `${format}: the code`)
    if (format === 'problem') {
      t.match(res.headers['content-type'], /^application\/problem\+json/, 'problem: its content type')
      t.match(body, { title: 'Bad Gateway', detail: String, instance: String }, 'problem: RFC 7807 members')
    } else {
      t.match(body, { statusCode: 502, error: 'Bad Gateway', message: String })
    }
    t.notMatch(res.body, /127\.0\.0\.1|ECONNREFUSED|connect |\d{4,5}/, `${format}: no internal address, port or errno in the body`)
    await until(() => proxy.stdout().includes('ECONNREFUSED'), 'the logged cause')
    t.match(proxy.stdout(), /ECONNREFUSED/, `${format}: the cause is in the log`)
    t.equal(await stop(proxy), 0)
  }
})

const NO_OPENSSL = installed('openssl', ['version']) ? false : 'openssl is not installed (apt-get install openssl): no self-signed certificate to test with'

t.test('an https upstream is verified: a certificate no CA vouches for is 502; NODE_EXTRA_CA_CERTS makes it trusted', { skip: NO_OPENSSL }, async t => {
  const dir = t.testdir()
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.end('{"tls":true}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const upstream = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const jwt = await liveToken()

  const unverified = await proxyTo(t, upstream)
  const refused = await exchange(unverified.port, { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${jwt}`]] })
  t.equal(refused.status, 502, 'a self-signed certificate is not accepted')
  t.equal(JSON.parse(refused.body).code, 'VJG_UPSTREAM_FAILED')
  t.equal(await stop(unverified.proxy), 0)

  const proxy = await start(['proxy', '--upstream', upstream, '--port', '0', '--public-key', keys.publicPem, '--log-level', 'error'], { env: { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } })
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const trusted = await exchange(portOf(proxy.base), { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${jwt}`]] })
  t.equal(trusted.status, 200, 'with the certificate among the CAs')
  t.equal(trusted.body, '{"tls":true}')
  t.equal(await stop(proxy), 0)
})

t.test('an upstream that does not answer in time: 504 VJG_UPSTREAM_TIMEOUT after --upstream-timeout', async t => {
  const hung = await recordingUpstream(t, () => { /* never answers */ })
  const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${hung.port}`, ['--upstream-timeout', '1'])
  const jwt = await liveToken()
  const started = Date.now()
  const res = await exchange(port, { target: '/v1/users/abc', headers: [['Authorization', `Bearer ${jwt}`]] })
  const took = Date.now() - started
  t.equal(res.status, 504, res.body)
  t.match(JSON.parse(res.body), { statusCode: 504, code: 'VJG_UPSTREAM_TIMEOUT', error: 'Gateway Timeout' })
  t.notMatch(res.body, /127\.0\.0\.1|UND_ERR|\d{4,5}/, 'no internal address or error code of undici in the body')
  t.ok(took >= 900 && took < 8000, `answered after the timeout (${took} ms)`)
  t.equal(await stop(proxy), 0)
})

t.test('the guard\'s own refusals honour --error-format problem', async t => {
  const up = await recordingUpstream(t)
  const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${up.port}`, ['--error-format', 'problem'])
  const res = await exchange(port, { target: '/v1/users/abc' })
  t.equal(res.status, 401)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(JSON.parse(res.body), { type: 'https://developer.vonage.com/api-errors#unauthorized', code: 'VJG_TOKEN_MISSING' })
  t.equal(up.seen.length, 0)
  t.equal(await stop(proxy), 0)
})

t.test('the health route answers without a token and without the upstream; --health-path moves it, --no-health-path removes it', async t => {
  const downPort = await freePort()
  const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${downPort}`)
  for (const [method, target] of [['GET', '/healthz'], ['HEAD', '/healthz'], ['GET', '/healthz?probe=1']] as const) {
    const res = await exchange(port, { method, target })
    t.equal(res.status, 200, `${method} ${target}: 200 although the upstream is down`)
    if (method === 'GET') t.same(JSON.parse(res.body), { status: 'ok' })
  }
  const post = await exchange(port, { method: 'POST', target: '/healthz', body: '' })
  t.equal(post.status, 401, 'POST /healthz is no health check: guarded like any request')
  const other = await exchange(port, { target: '/healthz/x' })
  t.equal(other.status, 401, 'a path under it is guarded')
  t.equal(await stop(proxy), 0)

  const moved = await proxyTo(t, `http://127.0.0.1:${downPort}`, ['--health-path', '/-/ready'])
  t.equal((await exchange(moved.port, { target: '/-/ready' })).status, 200, '--health-path /-/ready')
  t.equal((await exchange(moved.port, { target: '/healthz' })).status, 401, '/healthz is guarded then')
  t.equal(await stop(moved.proxy), 0)

  const none = await proxyTo(t, `http://127.0.0.1:${downPort}`, ['--no-health-path'])
  t.equal((await exchange(none.port, { target: '/healthz' })).status, 401, '--no-health-path: guarded like any path')
  t.equal(await stop(none.proxy), 0)
})

t.test('SIGTERM: the proxy stops accepting, finishes the request in flight, then exits 0', async t => {
  const slow = await recordingUpstream(t, (_req, res) => {
    setTimeout(() => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ slow: true }))
    }, 1500)
  })
  const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${slow.port}`)
  const jwt = await liveToken()
  // A keep-alive client, as browsers and SDKs are: its idle connection must not hold the exit.
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const inFlight = new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest(`${proxy.base}/v1/users/abc`, { agent, headers: { authorization: `Bearer ${jwt}` } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.end()
  })
  await until(() => slow.arrived() === 1, 'the request to reach the upstream')
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  await new Promise(resolve => setTimeout(resolve, 300))
  const refused = await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.on('connect', () => { socket.destroy(); resolve('connected') })
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
  })
  t.equal(refused, 'ECONNREFUSED', 'no new connection is accepted once SIGTERM arrived')
  const res = await inFlight
  t.equal(res.status, 200, 'the request in flight completes')
  t.same(JSON.parse(res.body), { slow: true })
  t.equal(await proxy.exited, 0, 'then the process exits 0')
  t.ok(Date.now() - signalled < 5000, 'without waiting for the keep-alive connection to time out')
})

t.test('SIGTERM: --grace-period bounds the wait for a request that never ends (exit 1)', async t => {
  const hung = await recordingUpstream(t, () => { /* never answers */ })
  const { proxy } = await proxyTo(t, `http://127.0.0.1:${hung.port}`, ['--grace-period', '1'])
  const jwt = await liveToken()
  const inFlight = new Promise<string>((resolve) => {
    const req = httpRequest(`${proxy.base}/v1/users/abc`, { headers: { authorization: `Bearer ${jwt}` } }, (res) => {
      res.resume()
      res.on('end', () => resolve(`status ${res.statusCode}`))
      res.on('error', () => resolve('cut'))
    })
    req.on('error', () => resolve('cut'))
    req.end()
  })
  await until(() => hung.arrived() === 1, 'the request to reach the upstream')
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  t.equal(await proxy.exited, 1, 'exit 1: the grace period ran out')
  const took = Date.now() - signalled
  t.ok(took >= 900 && took < 4000, `after about the grace period (${took} ms)`)
  t.equal(await inFlight, 'cut', 'the request that never ended is cut')
})

/** A raw connection: resolves with what it received and how long it stayed open after `write` started. */
function trickle (port: number, head: string, every: number, limit: number): Promise<{ received: string, open: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const started = Date.now()
    let received = ''
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.on('error', () => {})
    socket.write(head)
    const timer = setInterval(() => { if (!socket.destroyed) socket.write('x') }, every)
    socket.on('close', () => {
      clearInterval(timer)
      resolve({ received, open: Date.now() - started })
    })
    setTimeout(() => { socket.destroy() }, limit)
  })
}

t.test('a refusal sent before the body arrived closes the connection: a trickled body holds nothing, and SIGTERM does not wait for it', async t => {
  const up = await recordingUpstream(t)
  const { port, proxy } = await proxyTo(t, `http://127.0.0.1:${up.port}`)
  const head = 'POST /v1/files/f1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n'
  const refused = await trickle(port, head, 200, 10_000)
  t.match(refused.received, /^HTTP\/1\.1 401 /, 'the 401 is sent at once')
  t.match(refused.received, /\r\nconnection: close\r\n/i, 'with Connection: close')
  t.ok(refused.open < 3000, `and the connection closed (${refused.open} ms), not held while the body trickles`)
  const holding = trickle(port, head, 500, 8000)
  await new Promise(resolve => setTimeout(resolve, 300))
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  t.equal(await proxy.exited, 0, 'SIGTERM: exit 0, nothing left in flight')
  t.ok(Date.now() - signalled < 3000, 'without waiting for the trickling client')
  t.match((await holding).received, /^HTTP\/1\.1 401 /)
  t.equal(up.arrived(), 0)
})

t.test('--request-timeout: a granted request whose body never ends is answered 408 and closed', async t => {
  const up = await recordingUpstream(t)
  const { port } = await proxyTo(t, `http://127.0.0.1:${up.port}`, ['--request-timeout', '2'])
  const jwt = await liveToken({ acl: { paths: { '/v1/files/**': {} } } })
  const head = `POST /v1/files/f1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${jwt}\r\nContent-Length: 1000000\r\n\r\n`
  const slow = await trickle(port, head, 300, 15_000)
  t.ok(slow.open >= 1800 && slow.open < 6000, `closed after about the timeout (${slow.open} ms)`)
  t.notMatch(slow.received, /^HTTP\/1\.1 200 /, 'never answered as if the body had arrived')
})

t.test('proxy refuses bad server flags with exit 2', async t => {
  const base = ['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', keys.publicPem]
  const cases: Array<[string, string[], RegExp]> = [
    ['--trust-proxy that is no address', ['--trust-proxy', 'proxy.example.com'], /--trust-proxy/],
    ['--health-path without /', ['--health-path', 'healthz'], /--health-path/],
    ['--health-path that is not canonical', ['--health-path', '/a/../b'], /--health-path/],
    ['--upstream-timeout 0', ['--upstream-timeout', '0'], /--upstream-timeout/],
    ['--grace-period -1', ['--grace-period', '-1'], /--grace-period/],
    ['--request-timeout 0', ['--request-timeout', '0'], /--request-timeout/],
    ['--error-format xml', ['--error-format', 'xml'], /--error-format/]
  ]
  const results = await inTurns(cases, ([, args]) => run([...base, ...args]))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
  }
})
