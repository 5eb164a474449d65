/**
 * `createVerifier()`: options validated and keys prepared once, then a small hot path per token:
 * cache lookup, parse, header, key, signature (signature.ts), claims (claims.ts). This module
 * puts those steps in order and owns the verified-token cache.
 * The verifier owns its caches (verified tokens, decoded headers, compiled acls and patterns):
 * two verifiers in one process share none of them.
 */
import { createAclCompiler, decide, type AclDecision, type CompiledAcl } from './acl.js'
import type { Awaitable } from './awaitable.js'
import { TokenCache } from './cache.js'
import { checkClaims, withNumericDates } from './claims.js'
import { GuardError } from './errors.js'
import type { PreparedKey } from './keys.js'
import { normalizeOptions, type NormalizedOptions } from './options.js'
import { ALGORITHMS, createKeyLookup, createPoolRule, orderedKeys, signingBytes, verifySignature } from './signature.js'
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

/** How a verifier runs, as its callers inside the package choose; not a user option. */
export interface VerifierRuntime {
  /**
   * Verify RSA signatures on the libuv thread pool when the server is busy (see `createPoolRule`)
   * rather than always on the event loop. The adapters turn it on; a lone verify() is faster
   * without the hop.
   */
  readonly signaturesOnPool?: boolean
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
