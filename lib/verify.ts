/**
 * `createVerifier()`: options validated and keys prepared once, then a small hot path per token:
 * cache lookup, parse, header, key, signature (node:crypto on a prepared KeyObject), claims.
 * The verifier owns its caches (verified tokens, decoded headers, compiled acls and patterns):
 * two verifiers in one process share none of them.
 */
import { constants, createHmac, timingSafeEqual, verify as cryptoVerify } from 'node:crypto'
import { createAclCompiler, decide, type AclDecision, type CompiledAcl } from './acl.js'
import type { Awaitable } from './awaitable.js'
import { TokenCache } from './cache.js'
import { GuardError } from './errors.js'
import { createRemoteKeySet } from './jwks.js'
import type { PreparedKey } from './keys.js'
import { normalizeOptions, type KeySource, type NormalizedOptions } from './options.js'
import { issuerId } from './profiles.js'
import { checkHeader, createTokenParser, deepFreeze, type ParsedToken } from './token.js'
import type { CacheOutcome, GuardOptions, JsonObject, VerifiedToken } from './types.js'

export type { VerifiedToken } from './types.js'

export interface AuthorizeContext {
  /** The framework request, handed to `aclFilter`. */
  request?: unknown
}

export interface Verifier<Request = unknown> {
  /** Verify a compact JWS: resolves to the verified token or rejects with a coded `GuardError`. */
  verify (token: string): Promise<VerifiedToken>
  /**
   * Decide the ACL for a verified token, a method and a canonical path (from `canonicalPath()`).
   * Returns `{ granted: true, grantedBy }` or throws `VJG_ACL_DENIED` (403).
   */
  authorize (verified: VerifiedToken, method: string, path: string | null, context?: AuthorizeContext): AclDecision
  /** The frozen, defaulted options this verifier runs on. */
  readonly options: NormalizedOptions<Request>
}

/** Hash and padding per JWS algorithm (RFC 7518 section 3). */
const ALGORITHMS: Readonly<Record<string, { hash: string, kind: 'pkcs1' | 'pss' | 'hmac', bytes: number } | undefined>> = {
  RS256: { hash: 'sha256', kind: 'pkcs1', bytes: 32 },
  RS384: { hash: 'sha384', kind: 'pkcs1', bytes: 48 },
  RS512: { hash: 'sha512', kind: 'pkcs1', bytes: 64 },
  PS256: { hash: 'sha256', kind: 'pss', bytes: 32 },
  PS384: { hash: 'sha384', kind: 'pss', bytes: 48 },
  PS512: { hash: 'sha512', kind: 'pss', bytes: 64 },
  HS256: { hash: 'sha256', kind: 'hmac', bytes: 32 },
  HS384: { hash: 'sha384', kind: 'hmac', bytes: 48 },
  HS512: { hash: 'sha512', kind: 'hmac', bytes: 64 }
}

/**
 * One signature check on one key. Never throws, never rejects: a key that cannot verify is a
 * `false`. With `onPool`, RSA runs on the libuv thread pool (`crypto.verify` with a callback)
 * and the answer is a promise; HMAC, and anything refused before the math, stays on the calling
 * thread and answers at once.
 */
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey): boolean
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey, onPool: boolean): Awaitable<boolean>
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey, onPool = false): Awaitable<boolean> {
  const spec = ALGORITHMS[alg]
  if (spec === undefined || (prepared.alg !== undefined && prepared.alg !== alg)) return false
  const key = prepared.key
  try {
    if (spec.kind === 'hmac') {
      if (key.type !== 'secret' || signature.length !== spec.bytes) return false
      return timingSafeEqual(createHmac(spec.hash, key).update(signingInput).digest(), signature)
    }
    // RSA: the signature is exactly as long as the modulus (RFC 8017 8.2.2 step 1).
    if (key.type !== 'public' || signature.length !== prepared.size) return false
    const keyInput = spec.kind === 'pkcs1' ? key : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.bytes }
    if (!onPool) return cryptoVerify(spec.hash, signingInput, keyInput, signature)
    return new Promise((resolve) => {
      try {
        cryptoVerify(spec.hash, signingInput, keyInput, signature, (error, valid) => { resolve(error === null && valid) })
      } catch {
        resolve(false)
      }
    })
  } catch {
    return false
  }
}

/** How a verifier runs, as its callers inside the package choose; not a user option. */
export interface VerifierRuntime {
  /**
   * Verify RSA signatures on the libuv thread pool when the server is busy (see `createPoolRule`)
   * rather than always on the event loop. The adapters turn it on; a lone verify() is faster
   * without the hop.
   */
  readonly signaturesOnPool?: boolean
}

/**
 * How many RSA verifications under way make a server busy: on the thread pool, or already run
 * on the calling thread in this turn of the event loop. Measured in bench/ (connections 1, 2,
 * 10, 100): see `createPoolRule`.
 */
export const BUSY = 2

/** Where the RSA work of one token runs. */
interface PoolRule {
  /** True: on the thread pool; false: on the calling thread. Asked once per token. */
  readonly toPool: () => boolean
  /** A verification went to the pool; `settled` when it answered. */
  readonly started: () => void
  readonly settled: () => void
}

/**
 * RSA on the thread pool only when the server is busy. A hop to the pool costs a request about
 * 50 us of latency (two thread handovers) and saves the event loop the RSA work (about 22 us for
 * RSA-2048): worth it when requests queue behind each other, a loss when one is alone or two
 * take turns. "Busy" is BUSY verifications already under way, counted from two signs that cost
 * nothing to keep: those still on the pool, and those run on the calling thread in this turn of
 * the event loop (the poll phase handed over several requests at once). One or two connections
 * never get there, so every token is verified on the calling thread; under load the pool keeps
 * two or more and every token goes there. (Going to the pool as soon as one verification was on
 * it made the pool hold itself at two connections: 0.66x the floor, bench/ conn-2.)
 */
function createPoolRule (enabled: boolean): PoolRule {
  let onPool = 0
  let onThreadThisTurn = 0
  let turnWatched = false
  const endTurn = (): void => {
    onThreadThisTurn = 0
    turnWatched = false
  }
  return {
    toPool: () => {
      if (!enabled) return false
      if (onPool + onThreadThisTurn >= BUSY) return true
      onThreadThisTurn++
      if (!turnWatched) {
        turnWatched = true
        // Runs in the check phase, after every request this poll phase handed over.
        setImmediate(endTurn)
      }
      return false
    },
    started: () => { onPool++ },
    settled: () => { onPool-- }
  }
}

/**
 * The bytes of a signing input for a verification on the calling thread: written into one
 * buffer kept for that (nothing else runs between the write and the synchronous verify), which
 * saves an allocation and a copy per token. The thread pool gets a buffer of its own.
 */
let scratch = Buffer.allocUnsafeSlow(8192)

function signingBytes (signingInput: string, onThread: boolean): Buffer {
  if (!onThread) return Buffer.from(signingInput, 'latin1')
  if (signingInput.length > scratch.length) scratch = Buffer.allocUnsafeSlow(signingInput.length)
  return scratch.subarray(0, scratch.write(signingInput, 0, 'latin1'))
}

/** The options the claim and lifetime rules read. */
type ClaimRules = Pick<NormalizedOptions, 'requiredClaims' | 'applicationIds' | 'clockTolerance' | 'claimChecks' |
'allowNumericStringDates' | 'defaultLifetime' | 'maxLifetime' | 'lifetimePolicy' | 'minLifetime' | 'maxAge'>

const MAX_NUMERIC_DATE = 2 ** 53
/**
 * A NumericDate written as a string (Vonage's guide shows `"exp": "1532179987"`; Python's
 * `vonage-jwt` and PyJWT emit them): decimal digits only, no sign, exponent, fraction, space or
 * leading zero, so one number has one spelling.
 */
const DECIMAL = /^(?:0|[1-9][0-9]*)$/

/** A NumericDate claim, or undefined when absent. Finite, 0 < n < 2^53 (`1e309` is Infinity). */
function numericDate (claims: JsonObject, name: string, options: ClaimRules): number | undefined {
  const value = claims[name]
  if (value === undefined) return undefined
  if (typeof value === 'string') {
    if (!options.allowNumericStringDates) {
      throw new GuardError('VJG_CLAIM_INVALID', DECIMAL.test(value)
        ? `The "${name}" claim is a string: send a number, or set allowNumericStringDates: true`
        : `The "${name}" claim is a string, not a NumericDate (and allowNumericStringDates is off)`)
    }
    if (!DECIMAL.test(value)) {
      throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim is a string that is not a NumericDate: allowNumericStringDates reads decimal digits only, without a leading zero`)
    }
  } else if (typeof value !== 'number') {
    throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim must be a NumericDate (seconds since the epoch)`)
  }
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isFinite(n) || n <= 0 || n >= MAX_NUMERIC_DATE) {
    throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim is out of the NumericDate range`)
  }
  return n
}

const DATE_CLAIMS = ['iat', 'exp', 'nbf'] as const

/**
 * The claims as handed out (`request.auth.claims`, `isRevoked`, `aclFilter`): a NumericDate that
 * came as a string (`allowNumericStringDates`) is the number it was read as, so no reader
 * downstream reads it another way, or adds to a string. Other claims are left as they came.
 */
function withNumericDates (claims: JsonObject): JsonObject {
  if (typeof claims.iat !== 'string' && typeof claims.exp !== 'string' && typeof claims.nbf !== 'string') return claims
  const copy: JsonObject = { ...claims }
  for (const name of DATE_CLAIMS) {
    // A decimal string, as numericDate() let through: its number.
    if (typeof copy[name] === 'string') copy[name] = Number(copy[name])
  }
  return copy
}

function nonEmptyString (claims: JsonObject, name: string, max: number): void {
  const value = claims[name]
  if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > max)) {
    throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim must be a non-empty string of at most ${max} characters`)
  }
}

interface Lifetime {
  /** The effective expiry, seconds. */
  expiresAt: number
  /** Before this instant (seconds, tolerance included) the token is not valid yet. */
  validFrom: number
}

/** The lifetime rules of docs/options.md "Token lifetime": one tolerance on every check; exp defaults to iat + defaultLifetime; cap or reject past maxLifetime. */
function lifetime (claims: JsonObject, options: ClaimRules, now: number): Lifetime {
  const tolerance = options.clockTolerance
  const iat = numericDate(claims, 'iat', options)
  const exp = numericDate(claims, 'exp', options)
  const nbf = numericDate(claims, 'nbf', options)
  if (iat === undefined && exp === undefined) {
    throw new GuardError('VJG_CLAIM_MISSING', 'The token has neither "iat" nor "exp": its lifetime cannot be known')
  }
  if (iat !== undefined && exp !== undefined && exp < iat) throw new GuardError('VJG_CLAIM_INVALID', 'The "exp" claim is before "iat"')
  if (nbf !== undefined && exp !== undefined && nbf > exp) throw new GuardError('VJG_CLAIM_INVALID', 'The "nbf" claim is after "exp"')

  const validFrom = Math.max(iat ?? 0, nbf ?? 0) - tolerance
  if (now < validFrom) {
    throw new GuardError('VJG_TOKEN_NOT_YET_VALID', `The token is not valid until ${new Date(validFrom * 1000).toISOString()} (check the clock of the issuer)`)
  }
  let expiresAt: number
  if (iat === undefined) {
    // Without iat no cap can be computed: an exp further away than maxLifetime is refused.
    // (A token with neither was refused above.)
    expiresAt = exp ?? Number.NEGATIVE_INFINITY
    if (expiresAt - now > options.maxLifetime + tolerance) {
      throw new GuardError('VJG_LIFETIME_EXCEEDED', `The token has no "iat" and expires more than ${options.maxLifetime} s from now`)
    }
  } else {
    if (exp !== undefined && options.lifetimePolicy === 'reject' && exp - iat > options.maxLifetime) {
      throw new GuardError('VJG_LIFETIME_EXCEEDED', `The token lifetime (exp - iat = ${exp - iat} s) exceeds maxLifetime (${options.maxLifetime} s)`)
    }
    // Without exp the lifetime is defaultLifetime, which registration keeps >= minLifetime.
    if (exp !== undefined && exp - iat < options.minLifetime) {
      throw new GuardError('VJG_LIFETIME_TOO_SHORT', `The token lifetime (exp - iat = ${exp - iat} s) is below minLifetime (${options.minLifetime} s)`)
    }
    expiresAt = Math.min(exp ?? iat + options.defaultLifetime, iat + options.maxLifetime)
  }
  if (options.maxAge !== null) {
    // Freshness counted from iat alone (signed webhooks carry no exp); it also bounds the cache.
    if (iat === undefined) throw new GuardError('VJG_CLAIM_MISSING', 'The token has no "iat": its age cannot be checked against maxAge')
    if (now - tolerance >= iat + options.maxAge) {
      throw new GuardError('VJG_TOKEN_EXPIRED', `The token was issued more than ${options.maxAge} s ago (maxAge)`)
    }
    expiresAt = Math.min(expiresAt, iat + options.maxAge)
  }
  if (now - tolerance >= expiresAt) {
    throw new GuardError('VJG_TOKEN_EXPIRED', `The token expired at ${new Date(expiresAt * 1000).toISOString()}`)
  }
  return { expiresAt, validFrom }
}

/** Required claims, types, the application allow-list, the profile's own rules, then the lifetime. */
function checkClaims (claims: JsonObject, options: ClaimRules, now: number): Lifetime {
  for (const name of options.requiredClaims) {
    if (!Object.hasOwn(claims, name) || claims[name] === undefined) {
      throw new GuardError('VJG_CLAIM_MISSING', `The token has no "${name}" claim`)
    }
  }
  nonEmptyString(claims, 'application_id', 256)
  nonEmptyString(claims, 'jti', 256)
  nonEmptyString(claims, 'sub', 1024)
  const appId = claims.application_id
  if (options.applicationIds !== null && (typeof appId !== 'string' || !options.applicationIds.has(appId))) {
    throw new GuardError('VJG_APPLICATION_MISMATCH', 'The token "application_id" is not one this server accepts')
  }
  const time = lifetime(claims, options, now)
  if (options.claimChecks.length > 0) {
    const context = { now, clockTolerance: options.clockTolerance }
    for (const check of options.claimChecks) check(claims, context)
  }
  return time
}

interface CacheEntry {
  readonly verified: VerifiedToken
  readonly validFrom: number
  /** The key that verified the signature: a hit is served only while a remote key set still lists it. */
  readonly key: PreparedKey
}

/** A cached token is live from `validFrom` until its effective expiry, with the clock tolerance. */
function live (entry: CacheEntry, now: number, clockTolerance: number): boolean {
  return now >= entry.validFrom && !expired(entry, now, clockTolerance)
}

/** Past its effective expiry, with the clock tolerance: what the cache evicts first. */
function expired (entry: CacheEntry, now: number, clockTolerance: number): boolean {
  return now - clockTolerance >= entry.verified.expiresAt
}

/**
 * The keys to try, best first: those whose `kid` the token names, then the key that verified
 * last, then the others in their configured order. Only the order changes: a token verifies if
 * any of the candidates verifies it, as before, but rotation with several keys costs one RSA
 * operation, not one per key ahead of the signer.
 */
export function orderedKeys (candidates: readonly PreparedKey[], kid: unknown, last: PreparedKey | undefined): readonly PreparedKey[] {
  if (candidates.length < 2) return candidates
  const named = typeof kid === 'string' && candidates.some(key => key.kid === kid)
  if (!named && (last === undefined || candidates[0] === last || !candidates.includes(last))) return candidates
  const first = named ? candidates.filter(key => key.kid === kid) : []
  if (last !== undefined && !first.includes(last) && candidates.includes(last)) first.push(last)
  for (const key of candidates) if (!first.includes(key)) first.push(key)
  return first
}

/**
 * A verified token as verify() hands it out (frozen: header, claims, expiresAt), carrying the
 * compiled `acl` claim (null: a root token) in a private field: not a claim, invisible to
 * Object.keys, JSON and spreads. A private field rather than a non-enumerable symbol property
 * (defining one cost about 0.17 us per token, measured) or a WeakMap (an entry per token is work
 * for every garbage collection).
 */
class Verified implements VerifiedToken {
  readonly header: Readonly<JsonObject>
  readonly claims: Readonly<JsonObject>
  readonly expiresAt: number
  readonly #acl: CompiledAcl | null

  constructor (header: Readonly<JsonObject>, claims: Readonly<JsonObject>, expiresAt: number, acl: CompiledAcl | null) {
    this.header = header
    this.claims = claims
    this.expiresAt = expiresAt
    this.#acl = acl
    Object.freeze(this)
  }

  /** The compiled acl of a token this module verified; undefined for any other object. */
  static aclOf (verified: VerifiedToken): CompiledAcl | null | undefined {
    return #acl in verified ? verified.#acl : undefined
  }
}

/** How one verifier finds the keys of a token, and whether a key that verified one still counts. */
interface KeyLookup {
  /** The keys that may verify this token: configured ones now, a remote key set's once it answered. */
  readonly keysFor: (parsed: ParsedToken, alg: string) => Awaitable<readonly PreparedKey[]>
  /** Whether a cached token's key still verifies: always for configured keys; while listed, for a remote key set. */
  readonly holds: (key: PreparedKey) => Awaitable<boolean>
}

const ALWAYS = (): boolean => true

function createKeyLookup (source: KeySource, now: () => number): KeyLookup {
  if (source.kind === 'static') return { keysFor: () => source.keys, holds: ALWAYS }
  if (source.kind === 'jwks') {
    const remote = createRemoteKeySet(source.jwks, now)
    // A key removed from the JWKS stops verifying cached tokens as soon as the set is refreshed.
    return { keysFor: (parsed, alg) => remote.keysFor(parsed.header, alg), holds: key => remote.holds(key) }
  }
  return {
    keysFor: (parsed) => {
      const claim = parsed.payload[source.claim]
      // OpenTok SDKs send the API key in `iss` as a string or a JSON integer: the same key.
      const id = source.integerIds === true ? issuerId(claim) : claim
      const keys = typeof id === 'string' ? source.keys.get(id) : undefined
      if (keys === undefined) throw new GuardError('VJG_KEY_UNKNOWN', `No key is configured for the token's "${source.claim}"`)
      return keys
    },
    holds: ALWAYS
  }
}

/** Where one verification writes how the cache took part, for the guard's decision event. */
export interface VerifyTrace {
  cache: CacheOutcome
}

/** What `createGuard` builds on: the public verifier, and its verification without the promise. */
export interface TokenVerifier<Request = unknown> {
  readonly verifier: Verifier<Request>
  /**
   * `verify()` without the promise when nothing waits: the verified token now (a cache hit,
   * RSA on the calling thread, a static key), a promise of it when a remote key set or RSA on
   * the thread pool must answer first. Throws, or rejects with, a coded GuardError. Writes the
   * cache outcome into `trace` when given one.
   */
  readonly verifyToken: (token: string, trace?: VerifyTrace) => Awaitable<VerifiedToken>
}

/** Verify tokens and decide their ACL with these options (validated by `normalizeOptions`). */
export function createTokenVerifier<Request> (options: NormalizedOptions<Request>, runtime: VerifierRuntime = {}): TokenVerifier<Request> {
  const pool = createPoolRule(runtime.signaturesOnPool === true)
  const { clockTolerance, defaultAcl } = options
  const cache = options.cacheMax > 0
    ? new TokenCache<CacheEntry>(options.cacheMax, { expired: (entry, now) => expired(entry, now, clockTolerance) })
    : null
  const parse = createTokenParser(options.maxTokenLength)
  const acls = createAclCompiler()
  /** The compiled `acl` claim of tokens verified elsewhere (null: a root token). */
  const foreignAcls = new WeakMap<VerifiedToken, CompiledAcl | null>()
  const keys = createKeyLookup(options.keys, options.now)
  /** The key that verified the last token: tried first among several. */
  let lastKey: PreparedKey | undefined

  /**
   * The first of `candidates` from `index` on that verifies the signature, then the claims
   * (`accept`); no key verifies: 401. On the thread pool, one promise reaction per key tried
   * carries the verification and the claims (each reaction costs the event loop a little).
   */
  function verifiedBy (token: string, parsed: ParsedToken, candidates: readonly PreparedKey[], index: number, alg: string, signingInput: Buffer, onPool: boolean, now: number): Awaitable<VerifiedToken> {
    for (let i = index; i < candidates.length; i++) {
      const key = candidates[i] as PreparedKey
      const valid = verifySignature(alg, signingInput, parsed.signature, key, onPool)
      if (valid === true) {
        lastKey = key
        return accept(token, parsed, key, now)
      }
      if (valid !== false) {
        pool.started()
        return valid.then((ok) => {
          pool.settled()
          if (!ok) return verifiedBy(token, parsed, candidates, i + 1, alg, signingInput, onPool, now)
          lastKey = key
          return accept(token, parsed, key, now)
        })
      }
    }
    throw new GuardError('VJG_SIGNATURE_INVALID')
  }

  /**
   * The claims of a token whose signature verified: checked, handed out frozen, and cached from
   * the token's second sighting on (`TokenCache.seen`).
   */
  function accept (token: string, parsed: ParsedToken, key: PreparedKey, now: number): VerifiedToken {
    const time = checkClaims(parsed.payload, options, now)
    const kept = cache !== null && cache.seen(token)
    // The parser froze the payload at its top level; a cached one is shared by every request
    // that hits, so no handler may change its inner objects either. A copy with numeric dates
    // is frozen like it (its values are the payload's).
    const payload = parsed.payload
    if (kept) deepFreeze(payload)
    const claims = withNumericDates(payload)
    if (claims !== payload) Object.freeze(claims)
    const acl = claims.acl === undefined ? null : acls.compileAclClaim(claims.acl)
    const verified = new Verified(parsed.header, claims, time.expiresAt, acl)
    if (kept) cache.set(token, { verified, validFrom: time.validFrom, key }, now)
    return verified
  }

  /** Parse, header, keys: a token the cache does not vouch for (a remote key set may have to answer first). */
  function verifyAfresh (token: string, now: number): Awaitable<VerifiedToken> {
    const parsed = parse(token)
    const alg = checkHeader(parsed.header, options.algorithms)
    const candidates = keys.keysFor(parsed, alg)
    if (candidates instanceof Promise) return candidates.then(found => verifyWith(token, parsed, alg, found, now))
    return verifyWith(token, parsed, alg, candidates, now)
  }

  /** The signature (on the thread pool: once it answered), then the claims, trusted from `accept` on. */
  function verifyWith (token: string, parsed: ParsedToken, alg: string, candidates: readonly PreparedKey[], now: number): Awaitable<VerifiedToken> {
    // HMAC never leaves the calling thread: only RSA asks where to run.
    const onPool = ALGORITHMS[alg]?.kind !== 'hmac' && pool.toPool()
    const input = signingBytes(parsed.signingInput, !onPool)
    return verifiedBy(token, parsed, orderedKeys(candidates, parsed.header.kid, lastKey), 0, alg, input, onPool, now)
  }

  function verifyToken (token: string, trace?: VerifyTrace): Awaitable<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0) throw new GuardError('VJG_TOKEN_MALFORMED', 'The token must be a non-empty string')
    const now = options.now() / 1000
    const hit = cache?.get(token)
    if (hit !== undefined && live(hit, now, clockTolerance)) {
      const held = keys.holds(hit.key)
      if (held === true) {
        if (trace !== undefined) trace.cache = 'hit'
        return hit.verified
      }
      if (held !== false) {
        return held.then((stillHeld) => {
          if (trace !== undefined) trace.cache = stillHeld ? 'hit' : 'miss'
          if (stillHeld) return hit.verified
          cache?.delete(token)
          return verifyAfresh(token, now)
        })
      }
    }
    if (hit !== undefined) cache?.delete(token)
    if (trace !== undefined) trace.cache = cache === null ? 'off' : 'miss'
    return verifyAfresh(token, now)
  }

  function authorize (verified: VerifiedToken, method: string, path: string | null, context: AuthorizeContext = {}): AclDecision {
    // null: the token has no acl claim (its own compiled acl is null, not undefined).
    let acl = Verified.aclOf(verified)
    if (acl === undefined) acl = foreignAcls.get(verified)
    if (acl === undefined) {
      acl = verified.claims.acl === undefined ? null : acls.compileAcl(verified.claims.acl)
      foreignAcls.set(verified, acl)
    }
    // A token without acl gets defaultAcl (null under requireAcl, which then refuses it).
    const fromDefault = acl === null && defaultAcl !== null
    return decide(fromDefault ? defaultAcl : acl, method, path, {
      requireAcl: options.requireAcl,
      aclFilter: options.aclFilter,
      claims: verified.claims,
      request: context.request,
      fromDefault
    })
  }

  // async: a throw of verifyToken is a rejection, as the public verify() promises.
  const verify = async (token: string): Promise<VerifiedToken> => verifyToken(token)
  return Object.freeze({ verifier: Object.freeze({ verify, authorize, options }), verifyToken })
}

/** A verifier for these options (validated here: a bad one throws a TypeError naming it). */
export function createVerifier<Request = unknown> (input: GuardOptions<Request>): Verifier<Request> {
  return createTokenVerifier(normalizeOptions(input)).verifier
}
