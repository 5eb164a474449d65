/**
 * Claims and lifetime: the rules a verified token's payload must meet (required claims, their
 * types, the application allow-list, NumericDates, the lifetime, a profile's own rules), and
 * the claims as they are handed out.
 */
import { GuardError } from './errors.js'
import type { NormalizedOptions } from './options.js'
import type { JsonObject } from './types.js'

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
    throw new GuardError('VJG_CLAIM_INVALID', `The "${name}" claim must be a non-empty string of at most ${max} characters`)
  }
}

export interface Lifetime {
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
export function checkClaims (claims: JsonObject, options: ClaimRules, now: number): Lifetime {
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
