/**
 * Options: their types (with defaults in TSDoc) and `normalizeOptions()`, which validates them
 * once and returns one frozen, fully defaulted object. A bad option is a `TypeError` with code
 * `VJG_INVALID_OPTION` naming it; nothing on the security path falls back silently.
 */
import { compileAcl, type AclFilter, type CompiledAcl } from './acl.js'
import { GuardError, invalidOption } from './errors.js'
import type { KeyObject } from 'node:crypto'
import { preparePublicKeys, prepareSecret, type PreparedKey, type PublicKeyInput } from './keys.js'
import { PROFILES, type ClaimCheck, type Profile, type ProfileName } from './profiles.js'
import { jwksSettings, type JwksSettings } from './jwks.js'
import { stateOptions, type RevocationHook, type StateOptions } from './state.js'
import type { GuardStore } from './stores/store.js'

/** An HMAC secret: a UTF-8 string, bytes, or a secret `KeyObject`; at least 16 bytes. */
export type SecretInput = string | Buffer | KeyObject

/** Where a token may come from. The default is `[{ header: 'authorization', scheme: 'Bearer' }]`. */
export type TokenSource =
  | { header: string, scheme?: string | null }
  | { cookie: string }
  | { query: string }

/** A token source after validation: header names lower-cased, the scheme resolved. */
export type ResolvedTokenSource =
  | { readonly header: string, readonly scheme: string | null }
  | { readonly cookie: string }
  | { readonly query: string }

/** The Vonage claims every profile knows. Extend it by declaration merging to type your own. */
export interface VonageClaims {
  application_id?: string
  iat?: number
  exp?: number
  nbf?: number
  jti?: string
  sub?: string
  acl?: { paths: Record<string, { methods?: string[], filters?: Record<string, unknown> }> }
  [claim: string]: unknown
}

export interface GuardOptions<Request = unknown> {
  /** The application's public key(s): PEM SPKI, PEM certificate, JWK, `KeyObject`, or an array (any may verify). */
  publicKey?: PublicKeyInput | PublicKeyInput[]
  /** Keys by `application_id`: the unverified `application_id` chooses the key; an unknown id is 401 `VJG_KEY_UNKNOWN`. */
  publicKeys?: Record<string, PublicKeyInput | PublicKeyInput[]>
  /**
   * HS256 profiles only: shared secrets (at least 16 bytes) by id, the id being the token's `iss`
   * for `opentok` (the API key) and its `api_key` for `vonage-webhook`; an unknown id is 401
   * `VJG_KEY_UNKNOWN`. Never combined with a public key. @default undefined
   */
  secrets?: Record<string, SecretInput>
  /**
   * The oldest token accepted, in seconds since its `iat` (which it then must have): refused once
   * `now - iat > maxAge` (plus `clockTolerance`), whatever its `exp`. @default undefined (vonage-webhook: 300)
   */
  maxAge?: number
  /** Token profile, a preset of these options. @default 'vonage' */
  profile?: ProfileName
  /** Accepted `alg` values. `none` and HS* are never accepted with a public key. @default ['RS256'] */
  algorithms?: string[]
  /** When set, `application_id` must be one of these, else 401 `VJG_APPLICATION_MISMATCH`. @default undefined */
  applicationId?: string | string[]
  /** Seconds of clock skew allowed on every time check; at most 300. @default 30 */
  clockTolerance?: number
  /** Lifetime in seconds of a token without `exp`, counted from `iat`. @default 900 */
  defaultLifetime?: number
  /** The longest lifetime in seconds a token may have. @default 86400 */
  maxLifetime?: number
  /** `'cap'` shortens a longer token to `iat + maxLifetime` (what Vonage does); `'reject'` refuses it. @default 'cap' */
  lifetimePolicy?: 'cap' | 'reject'
  /**
   * The shortest lifetime in seconds a token may state: `exp - iat` below it is 401
   * `VJG_LIFETIME_TOO_SHORT` (Vonage's notes give `exp` a 30 s minimum). A token without `exp`
   * lives `defaultLifetime`, which must be at least this; one without `iat` states no lifetime
   * and is not checked. 0 turns the check off. @default 0
   */
  minLifetime?: number
  /** Claims that must be present. @default ['application_id', 'iat', 'jti'] */
  requiredClaims?: string[]
  /** Read a NumericDate written as a string of decimal digits (Vonage's docs show `"exp": "1532179987"`) as that number; any other string is 401 `VJG_CLAIM_INVALID`. @default true (vonage, vonage-video), false (opentok, vonage-webhook) */
  allowNumericStringDates?: boolean
  /**
   * Refuse every token without its own `acl` claim with 403 `VJG_ACL_DENIED`, whatever
   * `defaultAcl` (giving both is a registration error). @default false
   */
  requireAcl?: boolean
  /**
   * The ACL of a token without an `acl` claim, in the claim's shape, checked and compiled at
   * registration. `undefined` or `null`: such a token is a Vonage "root" token, allowed
   * everywhere (`null` also turns off a profile's default). @default undefined (vonage-video:
   * `{ paths: { '/session/**': {} } }`)
   */
  defaultAcl?: VonageClaims['acl'] | null
  /** Map the request path to the Vonage path space: a prefix to strip, or a function returning the path (null: no ACL rule grants). @default undefined */
  aclPath?: string | ((request: Request, path: string) => string | null)
  /** Decides ACL rules that carry `filters`; without it such a rule never grants. @default undefined */
  aclFilter?: AclFilter
  /** Where to look for the token; more than one token found is 400 `VJG_TOKEN_AMBIGUOUS`. @default [{ header: 'authorization', scheme: 'Bearer' }] */
  tokenSources?: TokenSource[]
  /** Reads the token yourself (replaces `tokenSources`); return undefined when there is none. @default undefined */
  getToken?: (request: Request) => string | null | undefined | Promise<string | null | undefined>
  /** Longest token accepted, in characters. @default 8192 */
  maxTokenLength?: number
  /** The verified-token cache (LRU, never past a token's effective expiry); `false` turns it off. @default { max: 10000 } */
  cache?: false | { max?: number }
  /** Body of rejections: Fastify's `{ statusCode, code, error, message }` or RFC 7807 problem JSON. @default 'fastify' */
  errorFormat?: 'fastify' | 'problem'
  /** The realm of the `WWW-Authenticate` challenge. @default 'vonage-jwt-guard' */
  realm?: string
  /** The clock, in milliseconds; inject it in tests. @default Date.now */
  now?: () => number
  /**
   * A remote JWKS (https; http only on a loopback host): keys chosen by `kid` (and `alg`), cached,
   * refetched on an unknown `kid` at most once per `jwks.cooldown`. Instead of `publicKey(s)`. @default undefined
   */
  jwksUrl?: string | URL
  /** Tuning of `jwksUrl`, in ms. @default { cooldown: 30000, timeout: 1000, cacheMaxAge: 600000 } */
  jwks?: { cooldown?: number, timeout?: number, cacheMaxAge?: number }
  /**
   * Replay protection: each `jti` accepted once until the token's effective expiry. `true` uses a
   * bounded in-memory store; `{ store }` a shared one (`createRedisStore`). Off by default: Client
   * SDKs reuse one token for many requests. @default false
   */
  replay?: boolean | { store: GuardStore }
  /** Your revocation check: true means 401 `VJG_TOKEN_REVOKED`; a throw or a timeout is 503 (see `failOpen`). @default undefined */
  isRevoked?: RevocationHook<Request>
  /** A store with revoked jtis and subjects (`createMemoryStore`, `createRedisStore`). @default undefined */
  revocation?: GuardStore
  /** When a store or `isRevoked` fails or times out, skip that check instead of answering 503. Never skips a key or signature check. @default false */
  failOpen?: boolean
  /** Longest wait, in ms, for a replay or revocation store or `isRevoked`; past it the check has failed. @default 1000 */
  stateTimeout?: number
}

export interface NormalizedOptions {
  readonly profile: ProfileName
  readonly algorithms: ReadonlySet<string>
  readonly keys: KeySource
  readonly applicationIds: ReadonlySet<string> | null
  readonly clockTolerance: number
  readonly defaultLifetime: number
  readonly maxLifetime: number
  readonly lifetimePolicy: 'cap' | 'reject'
  /** Seconds; 0: no minimum. */
  readonly minLifetime: number
  readonly requiredClaims: readonly string[]
  readonly allowNumericStringDates: boolean
  readonly requireAcl: boolean
  /** The ACL a token without an acl claim gets; null: it is a root token (refused under requireAcl). */
  readonly defaultAcl: CompiledAcl | null
  readonly aclPath: AclPathOption | undefined
  readonly aclFilter: AclFilter | undefined
  readonly tokenSources: readonly ResolvedTokenSource[]
  readonly getToken: ((request: any) => string | null | undefined | Promise<string | null | undefined>) | undefined
  readonly maxTokenLength: number
  readonly cacheMax: number
  readonly errorFormat: 'fastify' | 'problem'
  readonly realm: string
  readonly now: () => number
  /** Profile-specific claim rules, run after the common ones. */
  readonly claimChecks: readonly ClaimCheck[]
  /** Seconds after `iat` past which a token is stale; null: no such rule. */
  readonly maxAge: number | null
  /** The profile signs the request body: adapters compare it with `payload_hash` (webhook.ts). */
  readonly payloadHash: boolean
  /** Replay protection and revocation (state.ts); all off by default. */
  readonly state: StateOptions
}

/** How the verifier finds the keys for one token. */
export type KeySource =
  | { readonly kind: 'static', readonly keys: readonly PreparedKey[] }
  | {
    readonly kind: 'byClaim'
    readonly claim: string
    readonly keys: ReadonlyMap<string, readonly PreparedKey[]>
    /** The claim may also be a JSON integer, looked up as its decimal string (OpenTok's `iss`). */
    readonly integerIds?: boolean
  }
  | { readonly kind: 'jwks', readonly jwks: JwksSettings }

/** Every algorithm the hot path implements. */
export const RSA_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])

const KNOWN_OPTIONS = new Set([
  'publicKey', 'publicKeys', 'profile', 'algorithms', 'applicationId', 'clockTolerance',
  'defaultLifetime', 'maxLifetime', 'lifetimePolicy', 'minLifetime', 'requiredClaims', 'allowNumericStringDates',
  'requireAcl', 'defaultAcl', 'aclPath', 'aclFilter', 'tokenSources', 'getToken', 'maxTokenLength', 'cache',
  'errorFormat', 'realm', 'now', 'secrets', 'maxAge',
  'jwksUrl', 'jwks', 'replay', 'isRevoked', 'revocation', 'failOpen', 'stateTimeout'
])

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function integer (value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidOption(name, `must be an integer from ${min} to ${max} (got ${String(value)})`)
  }
  return value
}

function boolean (value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') invalidOption(name, `must be true or false (got ${typeof value})`)
  return value
}

function oneOf<T extends string> (value: unknown, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) invalidOption(name, `must be one of ${allowed.map(a => `'${a}'`).join(', ')} (got ${String(value)})`)
  return value as T
}

function fn<T> (value: unknown, name: string): T {
  if (typeof value !== 'function') invalidOption(name, 'must be a function')
  return value as T
}

function nonEmptyStrings (value: unknown, name: string): string[] {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0 || !list.every(v => typeof v === 'string' && v.length > 0)) {
    invalidOption(name, 'must be a non-empty string or a non-empty array of non-empty strings')
  }
  return list as string[]
}

const TOKEN_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function tokenSource (value: unknown, name: string): ResolvedTokenSource {
  if (!isPlainObject(value)) invalidOption(name, 'must be { header, scheme? }, { cookie } or { query }')
  const keys = Object.keys(value)
  if (typeof value.header === 'string' && keys.every(k => k === 'header' || k === 'scheme')) {
    if (!TOKEN_NAME.test(value.header)) invalidOption(`${name}.header`, 'must be an HTTP header name')
    const scheme = value.scheme === undefined ? (value.header.toLowerCase() === 'authorization' ? 'Bearer' : null) : value.scheme
    if (scheme !== null && (typeof scheme !== 'string' || !TOKEN_NAME.test(scheme))) invalidOption(`${name}.scheme`, 'must be an auth scheme name or null')
    return Object.freeze({ header: value.header.toLowerCase(), scheme })
  }
  if (typeof value.cookie === 'string' && keys.length === 1) {
    if (!TOKEN_NAME.test(value.cookie)) invalidOption(`${name}.cookie`, 'must be a cookie name')
    return Object.freeze({ cookie: value.cookie })
  }
  if (typeof value.query === 'string' && keys.length === 1 && value.query.length > 0) {
    return Object.freeze({ query: value.query })
  }
  invalidOption(name, 'must be { header, scheme? }, { cookie } or { query }')
}

export type AclPathOption = string | ((request: any, path: string) => string | null)

/** `aclPath`: a prefix like "/api" (leading slash, no trailing slash) or a function. */
export function checkAclPath (value: unknown, name: string): AclPathOption | undefined {
  if (value === undefined || typeof value === 'function') return value as AclPathOption | undefined
  if (typeof value !== 'string' || !/^(\/[A-Za-z0-9._~!$&'()*+,=:@-]+)+$/.test(value)) {
    invalidOption(name, 'must be a path prefix like "/api" (leading slash, no trailing slash) or a function')
  }
  return value
}

/**
 * `defaultAcl`: compiled once, from a snapshot (later changes to the object given do nothing),
 * with the very checks an `acl` claim gets; a bad one names the option. `requireAcl` refuses
 * every token without its own acl, so a defaultAcl the user gave beside it could never apply.
 */
function defaultAclOption (value: unknown, given: boolean, requireAcl: boolean): CompiledAcl | null {
  if (value === undefined || value === null) return null
  if (requireAcl) {
    if (given) invalidOption('defaultAcl', 'cannot be combined with requireAcl: true, which refuses every token without its own acl: give one of them')
    return null
  }
  let snapshot: unknown
  try {
    snapshot = structuredClone(value)
  } catch {
    invalidOption('defaultAcl', 'must be plain JSON data: { paths: { "<pattern>": { methods?, filters? } } }')
  }
  try {
    return compileAcl(snapshot)
  } catch (error) {
    if (!(error instanceof GuardError)) throw error
    invalidOption('defaultAcl', `is not a valid acl: ${error.message}`)
  }
}

/** HS profiles: `secrets` chosen by the profile's claim; never a public key, never an RSA algorithm. */
function secretSource (options: Record<string, unknown>, algorithms: ReadonlySet<string>, profile: ProfileName, claim: string): KeySource {
  for (const name of ['publicKey', 'publicKeys', 'jwksUrl']) {
    if (options[name] !== undefined) invalidOption(name, `cannot be used with profile '${profile}', which verifies HS256 with shared secrets: give secrets: { [${claim}]: secret }`)
  }
  for (const alg of algorithms) {
    if (!/^HS(256|384|512)$/.test(alg)) invalidOption('algorithms', `holds "${alg}", which a shared secret cannot verify (profile '${profile}')`)
  }
  const secrets = options.secrets
  if (secrets === undefined) invalidOption('secrets', `is required with profile '${profile}': { [${claim}]: secret }`)
  if (!isPlainObject(secrets) || Object.keys(secrets).length === 0) invalidOption('secrets', `must be an object of { [${claim}]: secret }`)
  const keys = new Map<string, readonly PreparedKey[]>()
  for (const [id, secret] of Object.entries(secrets)) keys.set(id, Object.freeze([prepareSecret(secret, `secrets.${id}`)]))
  return Object.freeze({ kind: 'byClaim', claim, keys, integerIds: claim === 'iss' })
}

function keySource (options: Record<string, unknown>, algorithms: ReadonlySet<string>): KeySource {
  if (options.secrets !== undefined) {
    invalidOption('secrets', `is for the HS256 profiles ('opentok', 'vonage-webhook'); profile '${String(options.profile ?? 'vonage')}' verifies RS256 with a public key`)
  }
  const given = ['publicKey', 'publicKeys', 'jwksUrl'].filter(k => options[k] !== undefined)
  if (given.length === 0) invalidOption('publicKey', 'is required (or publicKeys, or jwksUrl)')
  if (given.length > 1) invalidOption(given[1]!, `cannot be combined with ${given[0]}: give one source of keys`)
  for (const alg of algorithms) {
    if (!RSA_ALGORITHMS.has(alg)) invalidOption('algorithms', `holds "${alg}", which a public key cannot verify`)
  }
  if (options.jwks !== undefined && options.jwksUrl === undefined) invalidOption('jwks', 'tunes jwksUrl: give jwksUrl too')
  if (options.jwksUrl !== undefined) return Object.freeze({ kind: 'jwks', jwks: jwksSettings(options.jwksUrl, options.jwks) })
  if (options.publicKey !== undefined) {
    return Object.freeze({ kind: 'static', keys: preparePublicKeys(options.publicKey, 'publicKey') })
  }
  const byApp = options.publicKeys
  if (!isPlainObject(byApp) || Object.keys(byApp).length === 0) {
    invalidOption('publicKeys', 'must be an object of { [applicationId]: key }')
  }
  const keys = new Map<string, readonly PreparedKey[]>()
  for (const [id, key] of Object.entries(byApp)) keys.set(id, preparePublicKeys(key, `publicKeys.${id}`))
  return Object.freeze({ kind: 'byClaim', claim: 'application_id', keys })
}

/** Validate `options` once and return the frozen, fully defaulted form the verifier runs on. */
export function normalizeOptions (input: GuardOptions<any> | undefined): NormalizedOptions {
  if (input === undefined || !isPlainObject(input)) invalidOption('options', 'must be an object')
  for (const name of Object.keys(input)) {
    if (!KNOWN_OPTIONS.has(name)) invalidOption(name, 'is not an option of vonage-jwt-guard (check the spelling)')
  }
  const profile = oneOf(input.profile ?? 'vonage', 'profile', Object.keys(PROFILES) as ProfileName[])
  const preset: Profile = PROFILES[profile]
  const options: Record<string, unknown> = { ...preset.defaults }
  for (const [name, value] of Object.entries(input)) if (value !== undefined) options[name] = value

  const algorithms = new Set(nonEmptyStrings(options.algorithms, 'algorithms'))
  for (const alg of algorithms) {
    if (alg.toLowerCase() === 'none') invalidOption('algorithms', 'must not hold "none"')
  }
  const clockTolerance = integer(options.clockTolerance, 'clockTolerance', 0, 300)
  const defaultLifetime = integer(options.defaultLifetime, 'defaultLifetime', 1, preset.lifetimeCeiling)
  const maxLifetime = integer(options.maxLifetime, 'maxLifetime', 1, preset.lifetimeCeiling)
  if (defaultLifetime > maxLifetime) invalidOption('defaultLifetime', `must not exceed maxLifetime (${maxLifetime})`)
  const minLifetime = integer(options.minLifetime, 'minLifetime', 0, preset.lifetimeCeiling)
  // Above it, no token without exp could pass (and, as defaultLifetime <= maxLifetime, above
  // maxLifetime no token at all): a configuration that refuses what it means to accept.
  if (minLifetime > defaultLifetime) invalidOption('minLifetime', `must not exceed defaultLifetime (${defaultLifetime}), the lifetime of a token without exp (nor, so, maxLifetime)`)

  const requiredClaims = options.requiredClaims
  if (!Array.isArray(requiredClaims) || !requiredClaims.every(c => typeof c === 'string' && c.length > 0)) {
    invalidOption('requiredClaims', 'must be an array of claim names')
  }
  const tokenSources = options.tokenSources
  if (!Array.isArray(tokenSources) || tokenSources.length === 0) invalidOption('tokenSources', 'must be a non-empty array')

  const cache = options.cache
  let cacheMax = 0
  if (cache !== false) {
    if (!isPlainObject(cache)) invalidOption('cache', 'must be false or { max }')
    cacheMax = integer(cache.max ?? 10_000, 'cache.max', 1, 10_000_000)
  }
  const aclPath = checkAclPath(options.aclPath, 'aclPath')
  const requireAcl = boolean(options.requireAcl, 'requireAcl')
  const defaultAcl = defaultAclOption(options.defaultAcl, input.defaultAcl !== undefined, requireAcl)
  const realm = options.realm
  if (typeof realm !== 'string' || realm.length === 0 || !/^[\x20-\x7e]+$/.test(realm) || /["\\]/.test(realm)) {
    invalidOption('realm', 'must be a non-empty printable ASCII string without quotes or backslashes')
  }

  return Object.freeze({
    profile,
    algorithms,
    keys: preset.secretClaim === undefined ? keySource(options, algorithms) : secretSource(options, algorithms, profile, preset.secretClaim),
    applicationIds: options.applicationId === undefined ? null : new Set(nonEmptyStrings(options.applicationId, 'applicationId')),
    clockTolerance,
    defaultLifetime,
    maxLifetime,
    lifetimePolicy: oneOf(options.lifetimePolicy, 'lifetimePolicy', ['cap', 'reject']),
    minLifetime,
    requiredClaims: Object.freeze([...requiredClaims]),
    allowNumericStringDates: boolean(options.allowNumericStringDates, 'allowNumericStringDates'),
    requireAcl,
    defaultAcl,
    aclPath,
    aclFilter: options.aclFilter === undefined ? undefined : fn<AclFilter>(options.aclFilter, 'aclFilter'),
    tokenSources: Object.freeze(tokenSources.map((s, i) => tokenSource(s, `tokenSources[${i}]`))),
    getToken: options.getToken === undefined ? undefined : fn<NormalizedOptions['getToken']>(options.getToken, 'getToken'),
    maxTokenLength: integer(options.maxTokenLength, 'maxTokenLength', 64, 1_048_576),
    cacheMax,
    errorFormat: oneOf(options.errorFormat, 'errorFormat', ['fastify', 'problem']),
    realm,
    now: fn<() => number>(options.now, 'now'),
    claimChecks: preset.claimChecks,
    maxAge: options.maxAge === undefined ? null : integer(options.maxAge, 'maxAge', 1, preset.lifetimeCeiling),
    payloadHash: preset.payloadHash === true,
    state: stateOptions(options, maxLifetime)
  })
}

