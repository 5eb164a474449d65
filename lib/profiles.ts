/**
 * Token profiles: each a named preset of the same options, plus the claim rules that are the
 * profile's own. A user's explicit option always wins over the preset.
 */
import { DEFAULT_REALM, GuardError } from './errors.js'
import type { GuardOptions, JsonObject, ProfileName } from './types.js'

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
  /**
   * HS256 profiles: the claim whose value picks the secret in `secrets: { [id]: secret }`.
   * Undefined for the RS256 profiles, which refuse `secrets`.
   */
  readonly secretClaim?: string
  /** The request body (GET: the query) must match the `payload_hash` claim (signed webhooks). */
  readonly payloadHash?: boolean
}

const DAY = 86_400

/** Defaults shared by every profile (docs/options.md, the options table). */
const COMMON: Readonly<Partial<GuardOptions>> = Object.freeze({
  algorithms: ['RS256'],
  clockTolerance: 30,
  defaultLifetime: 900,
  maxLifetime: DAY,
  lifetimePolicy: 'cap',
  minLifetime: 0,
  requiredClaims: ['application_id', 'iat', 'jti'],
  // Strict by default; the RS profiles, whose issuers include string-date minters, relax it below.
  allowNumericStringDates: false,
  requireAcl: false,
  identityHeaders: false,
  forUpstream: false,
  tokenSources: [{ header: 'authorization', scheme: 'Bearer' }],
  maxTokenLength: 8192,
  cache: { max: 10_000 },
  errorFormat: 'fastify',
  realm: DEFAULT_REALM,
  now: Date.now
})

/**
 * Defaults of the RS256 profiles (`vonage`, `vonage-video`), whose tokens come from Vonage's own
 * SDKs and guides: Vonage's guide shows `"exp": "1532179987"`, its API accepts string dates, and
 * Python's `vonage-jwt` (which also mints the Python SDK's Video client tokens) and PyJWT emit
 * them. The HS profiles (Vonage's servers and the OpenTok SDKs sign those) keep strict numbers.
 */
const RS_COMMON: Readonly<Partial<GuardOptions>> = Object.freeze({ ...COMMON, allowNumericStringDates: true })

function invalid (claim: string, message: string): never {
  throw new GuardError('VJG_CLAIM_INVALID', message, { claim })
}

function optionalString (claims: JsonObject, name: string, max: number): void {
  const value = claims[name]
  if (value !== undefined && (typeof value !== 'string' || value.length > max)) {
    invalid(name, `The "${name}" claim must be a string of at most ${max} characters`)
  }
}

const VIDEO_ROLES: ReadonlySet<unknown> = new Set(['publisher', 'subscriber', 'publisheronly', 'moderator'])
/** Vonage Video refuses connection data longer than this. */
const VIDEO_CONNECTION_DATA_MAX = 1000

/** Vonage Video client token (`@vonage/video` generateClientToken): docs/profiles.md, "vonage-video". */
const videoClaims: ClaimCheck = (claims) => {
  if (claims.scope !== 'session.connect') invalid('scope', 'The "scope" claim must be "session.connect"')
  if (typeof claims.session_id !== 'string' || claims.session_id.length === 0) invalid('session_id', 'The "session_id" claim must be a non-empty string')
  if (!VIDEO_ROLES.has(claims.role)) invalid('role', 'The "role" claim must be one of publisher, subscriber, publisheronly, moderator')
  optionalString(claims, 'connection_data', VIDEO_CONNECTION_DATA_MAX)
  // Older tokens carry the connection data as "data".
  optionalString(claims, 'data', VIDEO_CONNECTION_DATA_MAX)
  const layout = claims.initial_layout_class_list
  if (layout !== undefined && typeof layout !== 'string' &&
    !(Array.isArray(layout) && layout.every(item => typeof item === 'string'))) {
    invalid('initial_layout_class_list', 'The "initial_layout_class_list" claim must be a string or an array of strings')
  }
}

const OPENTOK_ISSUER_TYPES: ReadonlySet<unknown> = new Set(['project', 'account'])

/**
 * The OpenTok API key as the string `secrets` is keyed by: SDKs send it as a string, some as a
 * JSON number; both name the same key, so an integer is read as its decimal string.
 */
export function issuerId (iss: unknown): string | undefined {
  if (typeof iss === 'string' && iss.length > 0) return iss
  if (typeof iss === 'number' && Number.isSafeInteger(iss) && iss >= 0) return String(iss)
  return undefined
}

/** Legacy OpenTok REST token (`X-OPENTOK-AUTH`): docs/profiles.md, "opentok". The lifetime rules are preset options. */
const opentokClaims: ClaimCheck = (claims) => {
  if (issuerId(claims.iss) === undefined) invalid('iss', 'The "iss" claim must be the OpenTok API key (a string or an integer)')
  if (!OPENTOK_ISSUER_TYPES.has(claims.ist)) invalid('ist', 'The "ist" claim must be "project" or "account"')
}

const HEX_SHA256 = /^[0-9a-f]{64}$/

/** Vonage signed webhook: docs/profiles.md, "vonage-webhook". The body itself is compared by the adapters (webhook.ts). */
const webhookClaims: ClaimCheck = (claims) => {
  if (claims.iss !== 'Vonage') invalid('iss', 'The "iss" claim of a signed webhook must be "Vonage"')
  if (typeof claims.api_key !== 'string' || claims.api_key.length === 0) invalid('api_key', 'The "api_key" claim must be a non-empty string')
  if (typeof claims.payload_hash !== 'string' || !HEX_SHA256.test(claims.payload_hash)) {
    invalid('payload_hash', 'The "payload_hash" claim must be a lowercase hex SHA-256 (64 characters)')
  }
}

/** What a Video client token without an acl may open: the path every Vonage SDK writes. */
const VIDEO_DEFAULT_ACL = Object.freeze({ paths: Object.freeze({ '/session/**': Object.freeze({}) }) })

/** OpenTok REST tokens live five minutes at most (exp - iat <= 300). */
const OPENTOK_LIFETIME = 300
/** Video client tokens live 30 days at most. */
const VIDEO_LIFETIME = 30 * DAY
/** A signed webhook older than this is stale (now - iat <= maxAge). */
const WEBHOOK_MAX_AGE = 300

export type { ProfileName } from './types.js'

export const PROFILES: Readonly<Record<ProfileName, Profile>> = Object.freeze({
  /** Vonage application JWTs (Client SDK and REST): docs/options.md, "Token format and header" and "Token lifetime". */
  vonage: Object.freeze({ defaults: RS_COMMON, lifetimeCeiling: DAY, claimChecks: Object.freeze([]) }),
  /** Vonage Video client connection tokens: RS256 with the application key, up to 30 days. */
  'vonage-video': Object.freeze({
    defaults: Object.freeze({
      ...RS_COMMON,
      // Capped like vonage at 24 h: Vonage accepted its own reference app's tokens whose exp
      // was in milliseconds, so a longer lifetime is shortened to 30 days, not refused.
      maxLifetime: VIDEO_LIFETIME,
      requiredClaims: ['application_id', 'iat', 'jti', 'scope', 'session_id', 'role'],
      // The Java and .NET SDKs send no acl: a session.connect token is not a root token. Every
      // SDK that writes an acl writes this one.
      defaultAcl: VIDEO_DEFAULT_ACL
    }),
    lifetimeCeiling: VIDEO_LIFETIME,
    claimChecks: Object.freeze([videoClaims])
  }),
  /** Legacy OpenTok REST: HS256 with the API secret chosen by `iss`, in `X-OPENTOK-AUTH`, 5 minutes at most. */
  opentok: Object.freeze({
    defaults: Object.freeze({
      ...COMMON,
      algorithms: ['HS256'],
      defaultLifetime: OPENTOK_LIFETIME,
      maxLifetime: OPENTOK_LIFETIME,
      lifetimePolicy: 'reject',
      requiredClaims: ['iss', 'ist', 'iat', 'exp'],
      tokenSources: [{ header: 'x-opentok-auth', scheme: null }]
    }),
    lifetimeCeiling: OPENTOK_LIFETIME,
    claimChecks: Object.freeze([opentokClaims]),
    secretClaim: 'iss'
  }),
  /** Vonage signed webhooks: HS256 with the signature secret chosen by `api_key`, fresh for `maxAge`. */
  'vonage-webhook': Object.freeze({
    defaults: Object.freeze({
      ...COMMON,
      algorithms: ['HS256'],
      maxAge: WEBHOOK_MAX_AGE,
      requiredClaims: ['iss', 'api_key', 'iat', 'jti', 'payload_hash']
    }),
    lifetimeCeiling: DAY,
    claimChecks: Object.freeze([webhookClaims]),
    secretClaim: 'api_key',
    payloadHash: true
  })
})
