/**
 * `jwksUrl`: a remote JSON Web Key Set, fetched, checked and cached.
 *
 * Written over `fetch` rather than jose's `createRemoteJWKSet` because that one (jose 6) drops
 * the cached set when a refresh after `cacheMaxAge` fails, retries a failing endpoint on every
 * request, reads only the wall clock, and hands out WebCrypto keys that would skip the strength
 * check every configured key passes. Here:
 * - every fetched key goes through `preparePublicKey` (RSA >= 2048 bits, e = 65537, `use` sig,
 *   `key_ops` verify); a key that fails is skipped, never used;
 * - keys are chosen by the token's `kid`, then by `alg` when the JWK names one;
 * - the set is refetched when older than `cacheMaxAge`, or on an unknown `kid`, but at most once
 *   per `cooldown` (failed attempts included), and concurrent requests share one fetch;
 * - the body is bounded while it is read (MAX_JWKS_BYTES, Content-Length first, then the bytes
 *   as decoded), so an oversized or inflating body is never read whole;
 * - a failing endpoint keeps the last good set; with no set at all the answer is 503
 *   `VJG_UNAVAILABLE` after at most `timeout` ms;
 * - a key keeps its identity across refreshes while the endpoint still lists it, so the
 *   verified-token cache can ask whether the key a token was verified with is still listed.
 */
import { GuardError, invalidOption } from './errors.js'
import { isPlainObject } from './is-plain-object.js'
import { preparePublicKey, type PreparedKey } from './keys.js'
import type { JsonObject } from './types.js'

export interface JwksSettings {
  readonly url: URL
  /** Least ms between two fetches not forced by a missing set. */
  readonly cooldown: number
  /** Longest wait for one fetch, body included, in ms. */
  readonly timeout: number
  /** Ms after which a fetched set is refreshed before use. */
  readonly cacheMaxAge: number
}

interface RemoteKeySet {
  /** The keys that may verify a token with this header and `alg`; throws 401 `VJG_KEY_UNKNOWN` or 503 `VJG_UNAVAILABLE`. */
  keysFor (header: Readonly<JsonObject>, alg: string): Promise<readonly PreparedKey[]>
  /** Whether `key` is still in the set: now, or once the set was refreshed when a refresh is due. */
  holds (key: PreparedKey): boolean | Promise<boolean>
  /** Readiness: whether a set was fetched; not yet, and the endpoint may be asked, it is asked now. */
  loaded (): Promise<boolean>
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

function duration (value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidOption(name, `must be an integer number of ms from ${min} to ${max} (got ${typeof value === 'number' ? value : typeof value})`)
  }
  return value
}

/** Validate `jwksUrl` and `jwks` into settings: https only, plain http only on a loopback host. */
export function jwksSettings (urlOption: unknown, tuning: unknown): JwksSettings {
  let url: URL
  try {
    if (!(typeof urlOption === 'string' || urlOption instanceof URL)) throw new TypeError('not a string')
    url = new URL(urlOption)
  } catch {
    invalidOption('jwksUrl', 'must be an absolute URL (a string or a URL)')
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    invalidOption('jwksUrl', `must be https (plain http only on localhost): keys fetched over ${url.protocol} can be swapped in transit`)
  }
  if (url.username !== '' || url.password !== '') invalidOption('jwksUrl', 'must not carry credentials')
  if (tuning !== undefined && (typeof tuning !== 'object' || tuning === null || Array.isArray(tuning))) {
    invalidOption('jwks', 'must be { cooldown?, timeout?, cacheMaxAge? } (ms)')
  }
  const given = (tuning ?? {}) as Record<string, unknown>
  for (const name of Object.keys(given)) {
    if (name !== 'cooldown' && name !== 'timeout' && name !== 'cacheMaxAge') invalidOption(`jwks.${name}`, 'is not an option of jwks (cooldown, timeout, cacheMaxAge)')
  }
  return Object.freeze({
    url,
    cooldown: duration(given.cooldown, 'jwks.cooldown', 30_000, 0, 86_400_000),
    timeout: duration(given.timeout, 'jwks.timeout', 1000, 1, 60_000),
    cacheMaxAge: duration(given.cacheMaxAge, 'jwks.cacheMaxAge', 600_000, 0, 7 * 86_400_000)
  })
}

/**
 * A key set larger than this many bytes (decoded) is refused: no legitimate JWKS is, and it
 * bounds the memory and work of a fetch. Counted while reading, so a larger body is never read.
 */
export const MAX_JWKS_BYTES = 512 * 1024
const MAX_KEYS = 100
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** What identifies a JWK across fetches: the same kid, alg and public numbers are the same key. */
function fingerprint (jwk: Record<string, unknown>): string {
  return JSON.stringify([jwk.kid, jwk.alg, jwk.kty, jwk.n, jwk.e, jwk.use, jwk.key_ops])
}

/**
 * The body, at most MAX_JWKS_BYTES: refused on a larger Content-Length before a byte is read,
 * then by a running count of the bytes as decoded (a Content-Length is missing with chunked
 * transfer, and counts compressed bytes: 200 KiB of gzip can inflate to 200 MiB). Past the
 * bound the stream is cancelled, which closes the connection: nothing more is read or inflated.
 */
async function boundedBody (response: Response): Promise<Uint8Array> {
  const tooLarge = `the JWKS is over ${MAX_JWKS_BYTES} bytes`
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  const body = response.body
  if (declared > MAX_JWKS_BYTES) {
    await body?.cancel().catch(() => {})
    throw new Error(`${tooLarge} (Content-Length: ${declared})`)
  }
  if (body === null) return new Uint8Array(0)
  const reader = body.getReader() as ReadableStreamDefaultReader<Uint8Array>
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > MAX_JWKS_BYTES) {
      await reader.cancel().catch(() => {})
      throw new Error(tooLarge)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

async function fetchJwks (url: URL, timeout: number): Promise<unknown[]> {
  const response = await fetch(url, {
    method: 'GET',
    // A redirect could lead off the configured origin (or from https to http): treat it as a failure.
    redirect: 'manual',
    signal: AbortSignal.timeout(timeout),
    headers: { accept: 'application/jwk-set+json, application/json' }
  })
  if (response.status !== 200) {
    await response.body?.cancel()
    throw new Error(`the JWKS endpoint answered ${response.status}`)
  }
  const json: unknown = JSON.parse(utf8.decode(await boundedBody(response)))
  if (!isPlainObject(json) || !Array.isArray(json.keys)) throw new Error('the JWKS is not a JSON object with a "keys" array')
  return json.keys as unknown[]
}

export function createRemoteKeySet (settings: JwksSettings, now: () => number): RemoteKeySet {
  const { url, cooldown, timeout, cacheMaxAge } = settings
  let keys: readonly PreparedKey[] = []
  let listed = new Set<PreparedKey>()
  let byFingerprint = new Map<string, PreparedKey>()
  /** Why the keys of the last set that carry a kid were refused, so a 401 can say so. */
  let refused = new Map<string, string>()
  let loaded = false
  let fetchedAt = -Infinity
  let attemptedAt = -Infinity
  let lastError: unknown
  let inflight: Promise<void> | undefined

  function install (list: unknown[]): void {
    const next = new Map<string, PreparedKey>()
    const reasons = new Map<string, string>()
    for (const [i, jwk] of list.slice(0, MAX_KEYS).entries()) {
      if (!isPlainObject(jwk)) continue
      const id = fingerprint(jwk)
      const known = byFingerprint.get(id) ?? next.get(id)
      if (known !== undefined) {
        next.set(id, known)
        continue
      }
      try {
        next.set(id, preparePublicKey(jwk, `jwksUrl keys[${i}]`))
      } catch (error) {
        if (typeof jwk.kid === 'string') reasons.set(jwk.kid, (error as Error).message.replace(/^vonage-jwt-guard: option /, ''))
      }
    }
    byFingerprint = next
    keys = Object.freeze([...next.values()])
    listed = new Set(keys)
    refused = reasons
    loaded = true
  }

  /** One fetch at a time; a failure keeps whatever set is installed. */
  function refresh (): Promise<void> {
    inflight ??= (async () => {
      attemptedAt = now()
      try {
        install(await fetchJwks(url, timeout))
        fetchedAt = now()
        lastError = undefined
      } catch (error) {
        lastError = error
      } finally {
        inflight = undefined
      }
    })()
    return inflight
  }

  const coolingDown = (): boolean => now() - attemptedAt < cooldown

  function unavailable (): GuardError {
    const reason = lastError instanceof Error ? (lastError.name === 'TimeoutError' ? `no answer within ${timeout} ms` : lastError.message) : 'unknown error'
    return new GuardError('VJG_UNAVAILABLE', 'The key set (jwksUrl) cannot be reached', { cause: new Error(`${url.href}: ${reason}`, { cause: lastError }) })
  }

  const isLoaded = (): boolean => loaded
  /** A refresh is due: the set is older than cacheMaxAge, and the endpoint may be asked again. */
  const due = (): boolean => now() - fetchedAt >= cacheMaxAge && !coolingDown()
  /** The installed set can be used as it is: no fetch under way, none due. */
  const usable = (): boolean => inflight === undefined && loaded && !due()

  /** A set to work with: fetched when missing, refreshed when due; a failed refresh keeps the old one. */
  async function ensure (): Promise<void> {
    if (inflight !== undefined) await inflight
    if (!loaded) {
      if (!coolingDown()) await refresh()
      // refresh() may have installed a set while we waited.
      if (!isLoaded()) throw unavailable()
    } else if (due()) {
      await refresh()
    }
  }

  function select (kid: unknown, alg: string): PreparedKey[] {
    return keys.filter(key => (kid === undefined || key.kid === kid) && (key.alg === undefined || key.alg === alg))
  }

  async function keysFor (header: Readonly<JsonObject>, alg: string): Promise<readonly PreparedKey[]> {
    const kid = header.kid
    if (kid !== undefined && typeof kid !== 'string') throw new GuardError('VJG_KEY_UNKNOWN', 'The token "kid" header must be a string', { claim: 'kid' })
    await ensure()
    let found = select(kid, alg)
    if (found.length === 0 && !coolingDown()) {
      // A new key may have been published since the last fetch.
      await refresh()
      found = select(kid, alg)
    }
    if (found.length > 0) return found
    // The endpoint could not tell us whether the key exists: fail closed as unavailable, not unknown.
    if (lastError !== undefined) throw unavailable()
    const reason = typeof kid === 'string' ? refused.get(kid) : undefined
    if (reason !== undefined) throw new GuardError('VJG_KEY_UNKNOWN', `The key set (jwksUrl) lists the token "kid" but its key is refused: ${reason}`)
    throw new GuardError('VJG_KEY_UNKNOWN', kid === undefined ? `No key of the key set (jwksUrl) verifies ${alg}` : 'No key of the key set (jwksUrl) has the token "kid"')
  }

  function holds (key: PreparedKey): boolean | Promise<boolean> {
    if (usable()) return listed.has(key)
    return ensure().then(() => listed.has(key))
  }

  async function everLoaded (): Promise<boolean> {
    if (inflight !== undefined) await inflight
    if (!isLoaded() && !coolingDown()) await refresh()
    return isLoaded()
  }

  return Object.freeze({ keysFor, holds, loaded: everLoaded })
}
