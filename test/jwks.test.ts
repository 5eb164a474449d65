/**
 * jwksUrl against a local JWKS server: keys by kid and alg, weak keys skipped, rotation with a
 * cooldown, a removed key refused after the refresh (cached tokens included), the last good set
 * kept while the endpoint fails, and a fast 503 when there is no set and no endpoint.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { constants as zlib, createGzip } from 'node:zlib'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import { MAX_JWKS_BYTES } from '../lib/jwks.js'
import { buildApp } from './helpers/app.js'
import { claims, keys, makeKeyPair, NOW_MS, otherKeys, signRaw, token } from './helpers/keys.js'
import { INVALID_TOKEN, REALM, rejected, send } from './helpers/state.js'

/** The part of a tap test the helpers need. */
interface Teardown { teardown: (fn: () => unknown) => void }

type Mode = 'ok' | 'error' | 'hang' | 'redirect' | 'garbage'

interface JwksServer {
  url: string
  /** The set served now. */
  keys: Array<Record<string, unknown>>
  mode: Mode
  /** Requests received. */
  fetches: number
}

async function jwksServer (t: Teardown): Promise<JwksServer> {
  const hanging: ServerResponse[] = []
  const state: JwksServer = { url: '', keys: [], mode: 'ok', fetches: 0 }
  const server = createServer((_req, res) => {
    state.fetches++
    if (state.mode === 'hang') {
      hanging.push(res)
      return
    }
    if (state.mode === 'error') return res.writeHead(500).end('boom')
    if (state.mode === 'redirect') return res.writeHead(302, { location: '/elsewhere' }).end()
    if (state.mode === 'garbage') return res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": "none"}')
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
  t.teardown(() => {
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return state
}

function jwk (publicKey: KeyObject, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...publicKey.export({ format: 'jwk' }), use: 'sig', ...extra }
}

const k1 = jwk(keys.publicKey, { kid: 'k1', alg: 'RS256' })
const k2 = jwk(otherKeys.publicKey, { kid: 'k2' })
const small = makeKeyPair(1024)
const exponent3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })

function signedBy (kid: string | undefined, key: KeyObject): Promise<string> {
  return token({}, { key, header: kid === undefined ? {} : { kid } })
}

/** jose will not sign with a 1024-bit key: sign the bytes directly. */
function signedByWeak (kid: string | undefined, key: KeyObject): string {
  return signRaw({ alg: 'RS256', typ: 'JWT', ...(kid === undefined ? {} : { kid }) }, claims(), key)
}

const COOLDOWN = 30_000
const MAX_AGE = 600_000

async function guardedApp (t: Teardown, server: JwksServer, clock: { now: number }, extra: Record<string, unknown> = {}) {
  const app = await buildApp({
    publicKey: undefined,
    jwksUrl: server.url,
    jwks: { cooldown: COOLDOWN, cacheMaxAge: MAX_AGE, timeout: 300 },
    now: () => clock.now,
    ...extra
  })
  t.teardown(() => app.close())
  return app
}

t.test('keys are chosen by kid; weak keys in the set are skipped, never used', async (t) => {
  const server = await jwksServer(t)
  server.keys = [
    k1,
    jwk(small.publicKey, { kid: 'small' }),
    jwk(exponent3.publicKey, { kid: 'e3' }),
    { kty: 'EC', crv: 'P-256', kid: 'ec', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
    jwk(otherKeys.publicKey, { kid: 'enc', use: 'enc' })
  ]
  const app = await guardedApp(t, server, { now: NOW_MS })
  t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200, 'the strong key verifies')
  const smallAnswer = await send(app, signedByWeak('small', small.privateKey))
  rejected(t, smallAnswer, 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
  t.match(smallAnswer.challenge, /lists the token 'kid' but its key is refused: .*1024-bit RSA key/, 'the 401 says why')
  const e3Answer = await send(app, await signedBy('e3', exponent3.privateKey))
  rejected(t, e3Answer, 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
  t.match(e3Answer.challenge, /public exponent 3/, 'the 401 says why')
  rejected(t, await send(app, await signedBy('enc', otherKeys.privateKey)), 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
  rejected(t, await send(app, signedByWeak(undefined, small.privateKey)), 401, 'VJG_SIGNATURE_INVALID', INVALID_TOKEN)
  rejected(t, await send(app, await signedBy('k1', otherKeys.privateKey)), 401, 'VJG_SIGNATURE_INVALID', INVALID_TOKEN)
  t.equal((await send(app, await signedBy(undefined, keys.privateKey))).status, 200, 'a token without kid tries the keys of its alg')
  t.equal(server.fetches, 1, 'unknown kids within the cooldown fetch nothing')
})

t.test('a JWK bound to another alg does not verify RS256', async (t) => {
  const server = await jwksServer(t)
  server.keys = [{ ...k1, alg: 'RS384' }]
  const app = await guardedApp(t, server, { now: NOW_MS })
  rejected(t, await send(app, await signedBy('k1', keys.privateKey)), 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
})

t.test('rotation: a new kid is picked up once the cooldown has passed', async (t) => {
  const server = await jwksServer(t)
  server.keys = [k1]
  const clock = { now: NOW_MS }
  const app = await guardedApp(t, server, clock)
  t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200)
  server.keys = [k1, k2]
  rejected(t, await send(app, await signedBy('k2', otherKeys.privateKey)), 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
  t.equal(server.fetches, 1, 'within the cooldown an unknown kid does not refetch')
  clock.now += COOLDOWN
  t.equal((await send(app, await signedBy('k2', otherKeys.privateKey))).status, 200, 'the new key after a refetch')
  t.equal(server.fetches, 2)
  t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200, 'the old key still listed')
})

t.test('a key removed from the set is refused after the refresh, cached tokens included', async (t) => {
  for (const cache of [{ max: 100 }, false] as const) {
    await t.test(`cache ${JSON.stringify(cache)}`, async (t) => {
      const server = await jwksServer(t)
      server.keys = [k1, k2]
      const clock = { now: NOW_MS }
      const app = await guardedApp(t, server, clock, { cache })
      const old = await signedBy('k1', keys.privateKey)
      t.equal((await send(app, old)).status, 200)
      server.keys = [k2]
      t.equal((await send(app, old)).status, 200, 'until the set is due for a refresh')
      clock.now += MAX_AGE
      rejected(t, await send(app, old), 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
      t.equal(server.fetches, 2, 'refreshed once')
      rejected(t, await send(app, await signedBy('k1', keys.privateKey)), 401, 'VJG_KEY_UNKNOWN', INVALID_TOKEN)
      t.equal((await send(app, await signedBy('k2', otherKeys.privateKey))).status, 200)
    })
  }
})

t.test('the endpoint fails: the last good set keeps working', async (t) => {
  for (const mode of ['error', 'hang', 'garbage', 'redirect'] as const) {
    await t.test(mode, async (t) => {
      const server = await jwksServer(t)
      server.keys = [k1]
      const clock = { now: NOW_MS }
      const app = await guardedApp(t, server, clock)
      const cached = await signedBy('k1', keys.privateKey)
      t.equal((await send(app, cached)).status, 200)
      server.mode = mode
      clock.now += MAX_AGE
      const answer = await send(app, cached)
      t.equal(answer.status, 200, 'a cached token')
      t.ok(answer.elapsed < 1500, `within the fetch timeout (${answer.elapsed} ms)`)
      t.equal(server.fetches, 2, 'the refresh was tried')
      t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200, 'a new token with a listed key')
      // Whether k2 exists cannot be known while the endpoint fails: unavailable, not unknown.
      rejected(t, await send(app, await signedBy('k2', otherKeys.privateKey)), 503, 'VJG_UNAVAILABLE', REALM)
      t.equal(server.fetches, 2, 'no retry within the cooldown')
    })
  }
})

t.test('no key set and the endpoint down: 503 VJG_UNAVAILABLE, fast', async (t) => {
  await t.test('nobody listens', async (t) => {
    const probe = createServer()
    await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>(resolve => probe.close(() => resolve()))
    const app = await buildApp({ publicKey: undefined, jwksUrl: `http://127.0.0.1:${port}/jwks` })
    t.teardown(() => app.close())
    const answer = await send(app, await signedBy('k1', keys.privateKey))
    rejected(t, answer, 503, 'VJG_UNAVAILABLE', REALM)
    t.ok(answer.elapsed < 1000, `answered in ${answer.elapsed} ms`)
  })

  for (const mode of ['hang', 'error', 'garbage', 'redirect'] as const) {
    await t.test(mode, async (t) => {
      const server = await jwksServer(t)
      server.keys = [k1]
      server.mode = mode
      const clock = { now: NOW_MS }
      const app = await guardedApp(t, server, clock)
      const jwt = await signedBy('k1', keys.privateKey)
      const first = await send(app, jwt)
      rejected(t, first, 503, 'VJG_UNAVAILABLE', REALM)
      t.ok(first.elapsed < 1500, `answered within the 300 ms fetch timeout (${first.elapsed} ms)`)
      const second = await send(app, jwt)
      rejected(t, second, 503, 'VJG_UNAVAILABLE', REALM)
      t.equal(server.fetches, 1, 'within the cooldown a failed endpoint is not asked again')
      server.mode = 'ok'
      clock.now += COOLDOWN
      t.equal((await send(app, jwt)).status, 200, 'the endpoint is back')
    })
  }
})

t.test('concurrent requests share one fetch', async (t) => {
  const server = await jwksServer(t)
  server.keys = [k1]
  const app = await guardedApp(t, server, { now: NOW_MS })
  const tokens = await Promise.all(Array.from({ length: 10 }, () => signedBy('k1', keys.privateKey)))
  const answers = await Promise.all(tokens.map(jwt => send(app, jwt)))
  t.same(answers.map(a => a.status), Array(10).fill(200))
  t.equal(server.fetches, 1)
})

/**
 * A JWKS endpoint that sends an oversized body its own way, then holds the response open (never
 * ends it): a client that reads to the end waits for ever, one that bounds its read cancels the
 * body, which closes the connection. The server reports that close and how much it had written.
 */
interface Hostile {
  url: string
  /** Resolves when the client closed the connection before the response ended. */
  closedEarly: Promise<void>
  /** Body bytes written on the wire (compressed, for gzip). */
  written: () => number
  /** Body bytes the client would have to decode. */
  decoded: () => number
}

type BodyMode = 'content-length' | 'chunked' | 'lying-gzip' | 'gzip'

/** A body of 2 MiB that would be a JWKS if it were read to its end: `{"keys":[` and spaces. */
const BIG = 4 * MAX_JWKS_BYTES
const CHUNK = 64 * 1024

async function hostileServer (t: Teardown, mode: BodyMode, good?: Array<Record<string, unknown>>): Promise<Hostile & { hostile: { on: boolean } }> {
  let written = 0
  let decoded = 0
  let signalClose: () => void = () => {}
  const closedEarly = new Promise<void>(resolve => { signalClose = resolve })
  const hostile = { on: good === undefined }
  const open: ServerResponse[] = []
  const server = createServer((_req, res) => {
    if (!hostile.on) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: good }))
    open.push(res)
    res.on('close', () => { if (!res.writableEnded) signalClose() })
    const filler = (n: number): Buffer => Buffer.alloc(n, 0x20)
    if (mode === 'content-length') {
      // Honest about its size, which is over the bound: not a byte of the body is needed to refuse it.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(BIG) })
      res.flushHeaders()
      return
    }
    if (mode === 'chunked') {
      res.writeHead(200, { 'content-type': 'application/json' })
      for (let sent = 0; sent < MAX_JWKS_BYTES + 2 * CHUNK; sent += CHUNK) {
        const chunk = sent === 0 ? Buffer.concat([Buffer.from('{"keys":['), filler(CHUNK - 9)]) : filler(CHUNK)
        written += chunk.length
        decoded += chunk.length
        res.write(chunk)
      }
      return
    }
    // gzip: 2 MiB of body deflated to a few KiB and flushed, so the client can inflate it all
    // now; 'lying-gzip' also declares a Content-Length under the bound (of 4 KiB) it never sends.
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-encoding': 'gzip' }
    if (mode === 'lying-gzip') headers['content-length'] = '4096'
    res.writeHead(200, headers)
    const gzip = createGzip({ level: 9 })
    gzip.on('data', (chunk: Buffer) => { written += chunk.length; res.write(chunk) })
    gzip.write('{"keys":[')
    for (let n = 0; n < BIG; n += CHUNK) gzip.write(filler(CHUNK))
    decoded = BIG + 9
    gzip.flush(zlib.Z_SYNC_FLUSH)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const res of open) res.destroy()
    server.closeAllConnections()
    return new Promise<void>(resolve => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`, closedEarly, written: () => written, decoded: () => decoded, hostile }
}

t.test(`jwksUrl bounds the bytes while reading (${MAX_JWKS_BYTES} decoded), keeps the last good set, never reads a large body whole`, async (t) => {
  const cases: Array<{ mode: BodyMode, name: string }> = [
    { mode: 'content-length', name: 'an honest Content-Length over the bound: refused before the body' },
    { mode: 'chunked', name: 'no Content-Length (chunked), a body over the bound: refused at the bound' },
    { mode: 'lying-gzip', name: 'a Content-Length under the bound, a gzip body that inflates past it' },
    { mode: 'gzip', name: 'a gzip body (chunked) that inflates past the bound' }
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const server = await hostileServer(t, c.mode)
      // A long timeout: a client that read to the end would wait for it, and say so.
      const verifier = createVerifier({ publicKey: undefined, jwksUrl: server.url, jwks: { timeout: 30_000 }, now: () => NOW_MS })
      const error = await verifier.verify(await signedBy('k1', keys.privateKey)).then(() => undefined, (e: unknown) => e as Error & { code: string, cause?: Error })
      t.equal(error?.code, 'VJG_UNAVAILABLE', 'no key set: 503')
      t.match(error?.cause?.message, `the JWKS is over ${MAX_JWKS_BYTES} bytes`, 'refused by the bound, not by a timeout or a parse error')
      await server.closedEarly
      t.pass('the client closed the connection while the server still held the rest of the body')
      if (c.mode === 'content-length') t.equal(server.written(), 0, 'not a body byte was sent, or needed')
      else t.ok(server.decoded() > MAX_JWKS_BYTES, `the server offered ${server.decoded()} decoded bytes`)
    })
  }

  await t.test('the last good set is kept when the refresh is oversized', async (t) => {
    const server = await hostileServer(t, 'gzip', [k1])
    const clock = { now: NOW_MS }
    const app = await buildApp({ publicKey: undefined, jwksUrl: server.url, jwks: { cooldown: COOLDOWN, cacheMaxAge: MAX_AGE, timeout: 30_000 }, now: () => clock.now })
    t.teardown(() => app.close())
    t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200, 'the good set')
    server.hostile.on = true
    clock.now += MAX_AGE
    t.equal((await send(app, await signedBy('k1', keys.privateKey))).status, 200, 'still verified by the last good set')
    await server.closedEarly
    rejected(t, await send(app, await signedBy('k2', otherKeys.privateKey)), 503, 'VJG_UNAVAILABLE', REALM)
  })
})

t.test('options are checked at registration', async (t) => {
  const cases: Array<{ options: Record<string, unknown>, option: string }> = [
    { options: { publicKey: undefined, jwksUrl: 'http://keys.example.com/jwks' }, option: 'jwksUrl' },
    { options: { publicKey: undefined, jwksUrl: 'ftp://127.0.0.1/jwks' }, option: 'jwksUrl' },
    { options: { publicKey: undefined, jwksUrl: 'not a url' }, option: 'jwksUrl' },
    { options: { publicKey: undefined, jwksUrl: 'https://user:pass@keys.example.com/jwks' }, option: 'jwksUrl' },
    { options: { jwksUrl: 'https://keys.example.com/jwks' }, option: 'jwksUrl' },
    { options: { jwks: { timeout: 100 } }, option: 'jwks' },
    { options: { publicKey: undefined, jwksUrl: 'https://keys.example.com/jwks', jwks: { timeout: 0 } }, option: 'jwks.timeout' },
    { options: { publicKey: undefined, jwksUrl: 'https://keys.example.com/jwks', jwks: { ttl: 5 } }, option: 'jwks.ttl' }
  ]
  for (const c of cases) {
    await t.rejects(buildApp(c.options), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: c.option }, JSON.stringify(c.options))
  }
  const app = await buildApp({ publicKey: undefined, jwksUrl: new URL('https://keys.example.com/.well-known/jwks.json') })
  t.teardown(() => app.close())
  t.pass('an https URL object is accepted (nothing is fetched before the first token)')
})
