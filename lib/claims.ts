/**
 * Claims and lifetime: the rules a verified token's payload must meet (required claims, their
 * types, the application allow-list, NumericDates, the lifetime, a profile's own rules), and
 * the claims as they are handed out. Each refusal names its check and claim as data
 * (`GuardError.check`, `.claim`, `.limit`, `.actual`); `checkOrder` says where a check sits.
 */
import { GuardError, type GuardCheck } from './errors.js'
import type { NormalizedOptions } from './options.js'
import type { JsonObject } from './types.js'

/** The options the claim and lifetime rules read. */
type ClaimRules = Pick<NormalizedOptions, 'requiredClaims' | 'applicationIds' | 'clockTolerance' | 'claimChecks' |
'allowNumericStringDates' | 'defaultLifetime' | 'maxLifetime' | 'lifetimePolicy' | 'minLifetime' | 'maxAge'>

/** The options the effective expiry is computed from. */
type LifetimeRules = Pick<NormalizedOptions, 'allowNumericStringDates' | 'defaultLifetime' | 'maxLifetime' | 'maxAge'>

const MAX_NUMERIC_DATE = 2 ** 53
/**
 * A NumericDate written as a string (Vonage's guide shows `"exp": "1532179987"`; Python's
 * `vonage-jwt` and PyJWT emit them): decimal digits only, no sign, exponent, fraction, space or
 * leading zero, so one number has one spelling.
 */
const DECIMAL = /^(?:0|[1-9][0-9]*)$/

/** Why a claim value is not a NumericDate, or undefined when it is one. */
function numericDateProblem (value: unknown, name: string, allowStrings: boolean): string | undefined {
  if (typeof value === 'string') {
    if (!allowStrings) {
      return DECIMAL.test(value)
        ? `The "${name}" claim is a string: send a number, or set allowNumericStringDates: true`
        : `The "${name}" claim is a string, not a NumericDate (and allowNumericStringDates is off)`
    }
    if (!DECIMAL.test(value)) return `The "${name}" claim is a string that is not a NumericDate: allowNumericStringDates reads decimal digits only, without a leading zero`
  } else if (typeof value !== 'number') {
    return `The "${name}" claim must be a NumericDate (seconds since the epoch)`
  }
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || n >= MAX_NUMERIC_DATE) return `The "${name}" claim is out of the NumericDate range`
  return undefined
}

/**
 * A claim value as verification reads a NumericDate: the number, or undefined when absent or not
 * one (finite, 0 < n < 2^53; a decimal string only with `allowNumericStringDates`). Never throws.
 */
export function readNumericDate (value: unknown, allowNumericStringDates: boolean): number | undefined {
  if (value === undefined || numericDateProblem(value, '', allowNumericStringDates) !== undefined) return undefined
  return Number(value)
}

/** A NumericDate claim, or undefined when absent; 401 `VJG_CLAIM_INVALID` when it is not one. */
function numericDate (claims: JsonObject, name: string, options: ClaimRules): number | undefined {
  const value = claims[name]
  if (value === undefined) return undefined
  const problem = numericDateProblem(value, name, options.allowNumericStringDates)
  if (problem !== undefined) throw new GuardError('VJG_CLAIM_INVALID', problem, { claim: name })
  return Number(value)
}

/** The NumericDate claims, in the order verification reads them. */
const DATE_CLAIMS = ['iat', 'exp', 'nbf'] as const
/** The string claims every token's are checked for, in order, with their longest length. */
const STRING_CLAIMS = [['application_id', 256], ['jti', 256], ['sub', 1024]] as const

/**
 * The claims as handed out (`request.auth.claims`, `isRevoked`, `aclFilter`): a NumericDate that
 * came as a string (`allowNumericStringDates`) is the number it was read as, so no reader
 * downstream reads it another way, or adds to a string. Other claims are left as they came.
 */
export function withNumericDates (claims: JsonObject): JsonObject {
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
    throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim must be a non-empty string of at most ${max} characters`, { claim: name, limit: max })
  }
}

interface Lifetime {
  /** The effective expiry, seconds. */
  expiresAt: number
  /** Before this instant (seconds, tolerance included) the token is not valid yet. */
  validFrom: number
}

/**
 * The effective expiry of a token with this `iat` (docs/options.md "Token lifetime"): its `exp`,
 * or `iat + defaultLifetime` without one, capped at `iat + maxLifetime` and `iat + maxAge`.
 */
function expiryFrom (iat: number, exp: number | undefined, rules: LifetimeRules): number {
  const expiresAt = Math.min(exp ?? iat + rules.defaultLifetime, iat + rules.maxLifetime)
  return rules.maxAge === null ? expiresAt : Math.min(expiresAt, iat + rules.maxAge)
}

/**
 * The effective expiry (NumericDate seconds) verification gives these claims, whether or not
 * they would verify: what `expiresAt` is for a token that does. Without a readable `iat` it is
 * `exp`, or undefined when that is not readable either. Never throws.
 */
export function effectiveExpiry (claims: Readonly<Record<string, unknown>>, rules: LifetimeRules): number | undefined {
  const iat = readNumericDate(claims.iat, rules.allowNumericStringDates)
  const exp = readNumericDate(claims.exp, rules.allowNumericStringDates)
  return iat === undefined ? exp : expiryFrom(iat, exp, rules)
}

/** The lifetime rules of docs/options.md "Token lifetime": one tolerance on every check; exp defaults to iat + defaultLifetime; cap or reject past maxLifetime. */
function lifetime (claims: JsonObject, options: ClaimRules, now: number): Lifetime {
  const tolerance = options.clockTolerance
  const iat = numericDate(claims, 'iat', options)
  const exp = numericDate(claims, 'exp', options)
  const nbf = numericDate(claims, 'nbf', options)
  if (iat === undefined && exp === undefined) {
    throw new GuardError('VJG_CLAIM_MISSING', 'The token has neither "iat" nor "exp": its lifetime cannot be known', { claim: 'iat' })
  }
  if (iat !== undefined && exp !== undefined && exp < iat) throw new GuardError('VJG_CLAIM_INVALID', 'The "exp" claim is before "iat"', { claim: 'exp', limit: iat, actual: exp })
  if (nbf !== undefined && exp !== undefined && nbf > exp) throw new GuardError('VJG_CLAIM_INVALID', 'The "nbf" claim is after "exp"', { claim: 'nbf', limit: exp, actual: nbf })

  const validFrom = Math.max(iat ?? 0, nbf ?? 0) - tolerance
  if (now < validFrom) {
    throw new GuardError('VJG_TOKEN_NOT_YET_VALID', `The token is not valid until ${new Date(validFrom * 1000).toISOString()} (check the clock of the issuer)`,
      { claim: nbf !== undefined && nbf > (iat ?? 0) ? 'nbf' : 'iat', limit: validFrom, actual: now })
  }
  let expiresAt: number
  if (iat === undefined) {
    // Without iat no cap can be computed: an exp further away than maxLifetime is refused.
    // (A token with neither was refused above.)
    expiresAt = exp ?? Number.NEGATIVE_INFINITY
    if (expiresAt - now > options.maxLifetime + tolerance) {
      throw new GuardError('VJG_LIFETIME_EXCEEDED', `The token has no "iat" and expires more than ${options.maxLifetime} s from now`, { claim: 'exp', limit: options.maxLifetime, actual: expiresAt - now })
    }
  } else {
    if (exp !== undefined && options.lifetimePolicy === 'reject' && exp - iat > options.maxLifetime) {
      throw new GuardError('VJG_LIFETIME_EXCEEDED', `The token lifetime (exp - iat = ${exp - iat} s) exceeds maxLifetime (${options.maxLifetime} s)`, { claim: 'exp', limit: options.maxLifetime, actual: exp - iat })
    }
    // Without exp the lifetime is defaultLifetime, which registration keeps >= minLifetime.
    if (exp !== undefined && exp - iat < options.minLifetime) {
      throw new GuardError('VJG_LIFETIME_TOO_SHORT', `The token lifetime (exp - iat = ${exp - iat} s) is below minLifetime (${options.minLifetime} s)`, { claim: 'exp', limit: options.minLifetime, actual: exp - iat })
    }
    if (options.maxAge !== null && now - tolerance >= iat + options.maxAge) {
      // Freshness counted from iat alone (signed webhooks carry no exp); it also bounds the cache.
      throw new GuardError('VJG_TOKEN_EXPIRED', `The token was issued more than ${options.maxAge} s ago (maxAge)`, { claim: 'iat', limit: iat + options.maxAge, actual: now })
    }
    expiresAt = expiryFrom(iat, exp, options)
  }
  if (options.maxAge !== null && iat === undefined) {
    throw new GuardError('VJG_CLAIM_MISSING', 'The token has no "iat": its age cannot be checked against maxAge', { claim: 'iat' })
  }
  if (now - tolerance >= expiresAt) {
    throw new GuardError('VJG_TOKEN_EXPIRED', `The token expired at ${new Date(expiresAt * 1000).toISOString()}`, { claim: 'exp', limit: expiresAt, actual: now })
  }
  return { expiresAt, validFrom }
}

/** Required claims, types, the application allow-list, then the lifetime, then the profile's own rules. */
export function checkClaims (claims: JsonObject, options: ClaimRules, now: number): Lifetime {
  for (const name of options.requiredClaims) {
    if (!Object.hasOwn(claims, name) || claims[name] === undefined) {
      throw new GuardError('VJG_CLAIM_MISSING', `The token has no "${name}" claim`, { claim: name })
    }
  }
  for (const [name, max] of STRING_CLAIMS) nonEmptyString(claims, name, max)
  const appId = claims.application_id
  if (options.applicationIds !== null && (typeof appId !== 'string' || !options.applicationIds.has(appId))) {
    throw new GuardError('VJG_APPLICATION_MISMATCH', 'The token "application_id" is not one this server accepts', { claim: 'application_id' })
  }
  const time = lifetime(claims, options, now)
  if (options.claimChecks.length > 0) {
    const context = { now, clockTolerance: options.clockTolerance }
    for (const check of options.claimChecks) check(claims, context)
  }
  return time
}

/** The steps of verification in the order they run (checkClaims above; the acl claim is compiled last). */
const STEPS = ['format', 'header', 'key', 'required', ...STRING_CLAIMS.map(([name]) => name), 'application', ...DATE_CLAIMS, 'lifetime', 'claim', 'acl'] as const

/**
 * Where a check of verification sits in its order, for a tool that lists every check of a token
 * (`vonage-jwt-guard verify`): a check ranked below a refusal's was passed, one ranked above it
 * was not reached. `claim` names the claim of a `claim` check (its type or value); the claims of
 * a profile's own rules share one rank, after the lifetime, and the `acl` claim's shape comes
 * last. `signature` ranks with `key`. Checks outside verification (the path, replay, the ACL
 * decision) rank after every one of it.
 */
export function checkOrder (check: GuardCheck, claim?: string): number {
  const step = check === 'signature' ? 'key' : check === 'claim' && claim !== undefined && (STEPS as readonly string[]).includes(claim) ? claim : check
  const rank = (STEPS as readonly string[]).indexOf(step)
  return rank === -1 ? STEPS.length : rank
}
