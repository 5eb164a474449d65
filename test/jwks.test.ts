/**
 * jwksUrl against a local JWKS server: keys by kid and alg, weak keys skipped, rotation with a
 * cooldown, a removed key refused after the refresh (cached tokens included), the last good set
 * kept while the endpoint fails, and a fast 503 when there is no set and no endpoint.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
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
