/**
 * Token profiles: each a named preset of the same options, plus the claim rules that are the
 * profile's own. A user's explicit option always wins over the preset.
 */
import { DEFAULT_REALM } from './errors.js'
import type { GuardOptions } from './options.js'
import type { JsonObject } from './token.js'

/** What a profile's claim rule may look at, besides the claims. */
export interface ClaimContext {
  /** Now, in seconds. */
  readonly now: number
  readonly clockTolerance: number
}

/** A profile's own claim rule: throws a GuardError (VJG_CLAIM_MISSING / VJG_CLAIM_INVALID) or returns. */
export type ClaimCheck = (claims: JsonObject, context: ClaimContext) => void

export interface Profile {
  /** Option defaults of this profile (over the common ones). */
  readonly defaults: Readonly<Partial<GuardOptions>>
  /** The largest `maxLifetime` the profile allows, in seconds. */
  readonly lifetimeCeiling: number
  readonly claimChecks: readonly ClaimCheck[]
}

const DAY = 86_400

/** Defaults shared by every profile (SPEC section 9). */
const COMMON: Readonly<Partial<GuardOptions>> = Object.freeze({
  algorithms: ['RS256'],
  clockTolerance: 30,
  defaultLifetime: 900,
  maxLifetime: DAY,
  lifetimePolicy: 'cap',
  requiredClaims: ['application_id', 'iat', 'jti'],
  allowNumericStringDates: false,
  requireAcl: false,
  tokenSources: [{ header: 'authorization', scheme: 'Bearer' }],
  maxTokenLength: 8192,
  cache: { max: 10_000 },
  errorFormat: 'fastify',
  realm: DEFAULT_REALM,
  now: Date.now
})

export const PROFILES = Object.freeze({
  /** Vonage application JWTs (Client SDK and REST): SPEC 2.1. */
  vonage: Object.freeze({ defaults: COMMON, lifetimeCeiling: DAY, claimChecks: Object.freeze([]) })
} satisfies Record<string, Profile>)

export type ProfileName = keyof typeof PROFILES
