/**
 * `createVerifier()`: options validated and keys prepared once, then a small hot path per token:
 * cache lookup, parse, header, key, signature (signature.ts), claims (claims.ts). This module
 * puts those steps in order and owns the verified-token cache.
 * The verifier owns its caches (verified tokens, decoded headers, compiled acls and patterns):
 * two verifiers in one process share none of them.
 */
import { createAclStage, type AclDecision, type CompiledAcl } from './acl.js'
import type { Awaitable } from './awaitable.js'
import { TokenCache } from './cache.js'
import { checkClaims, withNumericDates } from './claims.js'
import { GuardError } from './errors.js'
import type { PreparedKey } from './keys.js'
import { normalizeOptions, type NormalizedOptions } from './options.js'
import { ALGORITHMS, createKeyLookup, createPoolRule, orderedKeys, signingBytes, verifySignature } from './signature.js'
import { checkHeader, createTokenParser, deepFreeze, type ParsedToken } from './token.js'
import type { CacheOutcome, GuardOptions, VerifiedToken } from './types.js'

export type { VerifiedToken } from './types.js'

export interface AuthorizeContext<Request = unknown> {
  /** The framework request, handed to `aclFilter`. */
  request?: Request
}

export interface Verifier<Request = unknown> {
  /** Verify a compact JWS: resolves to the verified token or rejects with a coded `GuardError`. */
  verify (token: string): Promise<VerifiedToken>
  /**
   * Decide the ACL for a verified token, a method and a canonical path (from `canonicalPath()`).
   * Returns `{ granted: true, grantedBy }` or throws `VJG_ACL_DENIED` (403).
   */
  authorize (verified: VerifiedToken, method: string, path: string | null, context?: AuthorizeContext<Request>): AclDecision
  /** What this verifier checks, as a tool that explains its decisions reads it. */
  readonly rules: VerifierRules
}

/**
 * The rules a verifier checks a token by (its options, defaulted and validated), as far as a
 * tool that explains its decisions needs them: no keys, stores or hooks.
 */
export interface VerifierRules {
  readonly algorithms: ReadonlySet<string>
  /** The accepted `application_id`s; null: any. */
  readonly applicationIds: ReadonlySet<string> | null
  readonly requiredClaims: readonly string[]
  readonly clockTolerance: number
  readonly defaultLifetime: number
  readonly maxLifetime: number
  readonly maxAge: number | null
  readonly allowNumericStringDates: boolean
  readonly requireAcl: boolean
  /** Whether an `aclFilter` decides the rules that carry filters. */
  readonly hasAclFilter: boolean
  /** The verifier's clock, in milliseconds. */
  readonly now: () => number
}

function rulesOf<Request> (options: NormalizedOptions<Request>): VerifierRules {
  const { algorithms, applicationIds, requiredClaims, clockTolerance, defaultLifetime, maxLifetime, maxAge, allowNumericStringDates, requireAcl, now } = options
  return Object.freeze({ algorithms, applicationIds, requiredClaims, clockTolerance, defaultLifetime, maxLifetime, maxAge, allowNumericStringDates, requireAcl, hasAclFilter: options.aclFilter !== undefined, now })
}

/** How a verifier runs, as its callers inside the package choose; not a user option. */
interface VerifierRuntime {
  /**
   * Verify RSA signatures on the libuv thread pool when the server is busy (see `createPoolRule`)
   * rather than always on the event loop. The adapters turn it on; a lone verify() is faster
   * without the hop.
   */
  readonly signaturesOnPool?: boolean
}



/**
 * A verified token and what the ACL stage compiled of it, as the pipeline hands them on (and the
 * cache keeps them): the compiled acl travels beside the token, never inside it.
 */
export interface Verification {
  readonly verified: VerifiedToken
  /** The compiled `acl` claim; null: the token has none. */
  readonly acl: CompiledAcl | null
  /** Whether `verify()` handed this token out already (its acl is then kept for `authorize()`). */
  handedOut: boolean
}

interface CacheEntry extends Verification {
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



/** Where one verification writes how the cache took part, for the guard's decision event. */
export interface VerifyTrace {
  cache: CacheOutcome
}

/** What `createGuard` builds on: the public verifier, and its verification without the promise. */
interface TokenVerifier<Request = unknown> {
  readonly verifier: Verifier<Request>
  /**
   * `verify()` without the promise when nothing waits: the verification now (a cache hit,
   * RSA on the calling thread, a static key), a promise of it when a remote key set or RSA on
   * the thread pool must answer first. Throws, or rejects with, a coded GuardError. Writes the
   * cache outcome into `trace` when given one.
   */
  readonly verifyToken: (token: string, trace?: VerifyTrace) => Awaitable<Verification>
  /** `authorize()` on a verification: the acl it carries, no look-up. */
  readonly authorizeVerified: (verification: Verification, method: string, path: string | null, request: unknown) => AclDecision
  /** Readiness: whether this verifier has keys (a remote key set: fetched at least once; asked when not yet). */
  readonly keysLoaded: () => Awaitable<boolean>
}

/** One token's signature check: what every key tried is checked against. */
interface Attempt {
  readonly token: string
  readonly parsed: ParsedToken
  readonly alg: string
  /** The keys to try, best first. */
  readonly candidates: readonly PreparedKey[]
  readonly signingInput: Buffer
  readonly onPool: boolean
  readonly now: number
}

/** Verify tokens and decide their ACL with these options (validated by `normalizeOptions`). */
export function createTokenVerifier<Request> (options: NormalizedOptions<Request>, runtime: VerifierRuntime = {}): TokenVerifier<Request> {
  const pool = createPoolRule(runtime.signaturesOnPool === true)
  const { clockTolerance } = options
  const cache = options.cacheMax > 0
    ? new TokenCache<CacheEntry>(options.cacheMax, { expired: (entry, now) => expired(entry, now, clockTolerance) })
    : null
  const parse = createTokenParser(options.maxTokenLength)
  const acls = createAclStage(options)
  const keys = createKeyLookup(options.keys, options.now)
  /** The key that verified the last token: tried first among several. */
  let lastKey: PreparedKey | undefined

  /**
   * The first candidate from `index` on that verifies the signature, then the claims (`accept`);
   * no key verifies: 401. On the thread pool, one promise reaction per key tried carries the
   * verification and the claims (each reaction costs the event loop a little).
   */
  function verifiedBy (attempt: Attempt, index: number): Awaitable<Verification> {
    const { candidates } = attempt
    for (let i = index; i < candidates.length; i++) {
      const key = candidates[i] as PreparedKey
      const valid = verifySignature(attempt.alg, attempt.signingInput, attempt.parsed.signature, key, attempt.onPool)
      if (valid === true) {
        lastKey = key
        return accept(attempt, key)
      }
      if (valid !== false) {
        pool.started()
        return valid.then((ok) => {
          pool.settled()
          if (!ok) return verifiedBy(attempt, i + 1)
          lastKey = key
          return accept(attempt, key)
        })
      }
    }
    throw new GuardError('VJG_SIGNATURE_INVALID')
  }

  /**
   * The claims of a token whose signature verified: checked, handed out frozen, and cached from
   * the token's second sighting on (`TokenCache.seen`).
   */
  function accept ({ token, parsed, now }: Attempt, key: PreparedKey): Verification {
    const time = checkClaims(parsed.payload, options, now)
    const kept = cache !== null && cache.seen(token)
    // The parser froze the payload at its top level; a cached one is shared by every request
    // that hits, so no handler may change its inner objects either. A copy with numeric dates
    // is frozen like it (its values are the payload's).
    const payload = parsed.payload
    if (kept) deepFreeze(payload)
    const claims = withNumericDates(payload)
    if (claims !== payload) Object.freeze(claims)
    const acl = acls.compileClaim(claims)
    const verified: VerifiedToken = Object.freeze({ header: parsed.header, claims, expiresAt: time.expiresAt })
    if (!kept) return { verified, acl, handedOut: false }
    const entry: CacheEntry = { verified, acl, handedOut: false, validFrom: time.validFrom, key }
    cache.set(token, entry, now)
    return entry
  }

  /** Parse, header, keys: a token the cache does not vouch for (a remote key set may have to answer first). */
  function verifyAfresh (token: string, now: number): Awaitable<Verification> {
    const parsed = parse(token)
    const alg = checkHeader(parsed.header, options.algorithms)
    const candidates = keys.keysFor(parsed, alg)
    if (candidates instanceof Promise) return candidates.then(found => verifyWith(token, parsed, alg, found, now))
    return verifyWith(token, parsed, alg, candidates, now)
  }

  /** The signature (on the thread pool: once it answered), then the claims, trusted from `accept` on. */
  function verifyWith (token: string, parsed: ParsedToken, alg: string, candidates: readonly PreparedKey[], now: number): Awaitable<Verification> {
    // HMAC never leaves the calling thread: only RSA asks where to run.
    const onPool = ALGORITHMS[alg]?.kind !== 'hmac' && pool.toPool()
    const signingInput = signingBytes(parsed.signingInput, !onPool)
    return verifiedBy({ token, parsed, alg, candidates: orderedKeys(candidates, parsed.header.kid, lastKey), signingInput, onPool, now }, 0)
  }

  function verifyToken (token: string, trace?: VerifyTrace): Awaitable<Verification> {
    if (typeof token !== 'string' || token.length === 0) throw new GuardError('VJG_TOKEN_MALFORMED', 'The token must be a non-empty string')
    const now = options.now() / 1000
    const hit = cache?.get(token)
    if (hit !== undefined && live(hit, now, clockTolerance)) {
      const held = keys.holds(hit.key)
      if (held === true) {
        if (trace !== undefined) trace.cache = 'hit'
        return hit
      }
      if (held !== false) {
        return held.then((stillHeld) => {
          if (trace !== undefined) trace.cache = stillHeld ? 'hit' : 'miss'
          if (stillHeld) return hit
          cache?.delete(token)
          return verifyAfresh(token, now)
        })
      }
    }
    if (hit !== undefined) cache?.delete(token)
    if (trace !== undefined) trace.cache = cache === null ? 'off' : 'miss'
    return verifyAfresh(token, now)
  }

  const authorizeVerified = ({ verified, acl }: Verification, method: string, path: string | null, request: unknown): AclDecision =>
    acls.decide(acl, verified.claims, method, path, request)

  function authorize (verified: VerifiedToken, method: string, path: string | null, context: AuthorizeContext<Request> = {}): AclDecision {
    return acls.decide(acls.aclOf(verified), verified.claims, method, path, context.request)
  }

  /** A token as `verify()` hands it out, its compiled acl kept (once) for `authorize()`. */
  function handOut (verification: Verification): VerifiedToken {
    if (!verification.handedOut) {
      acls.keep(verification.verified, verification.acl)
      verification.handedOut = true
    }
    return verification.verified
  }

  // async: a throw of verifyToken is a rejection, as the public verify() promises; a promise is
  // awaited only when verifyToken made one (an await of a token at hand costs a cache hit a tick).
  async function verify (token: string): Promise<VerifiedToken> {
    const verification = verifyToken(token)
    return handOut(verification instanceof Promise ? await verification : verification)
  }
  return Object.freeze({ verifier: Object.freeze({ verify, authorize, rules: rulesOf(options) }), verifyToken, authorizeVerified, keysLoaded: keys.loaded })
}

/** A verifier for these options (validated here: a bad one throws a TypeError naming it). */
export function createVerifier<Request = unknown> (input: GuardOptions<Request>): Verifier<Request> {
  return createTokenVerifier(normalizeOptions(input)).verifier
}
