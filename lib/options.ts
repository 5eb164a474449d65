/**
 * Options: their types (with defaults in TSDoc) and `normalizeOptions()`, which validates them
 * once and returns one frozen, fully defaulted object. A bad option is a `TypeError` with code
 * `VJG_INVALID_OPTION` naming it; nothing on the security path falls back silently.
 */
import { isToken } from './http-token.js'
import { compileAcl, type CompiledAcl } from './acl.js'
import { GuardError, invalidOption } from './errors.js'
import { isPlainObject } from './is-plain-object.js'
import { preparePublicKeys, prepareSecret, type PreparedKey } from './keys.js'
import { PROFILES, type ClaimCheck, type Profile } from './profiles.js'
import { jwksSettings, type JwksSettings } from './jwks.js'
import { identityHeaders } from './identity.js'
import { claimHeaderValues, compileUpstreamHeaders, type UpstreamHeaderTable } from './claim-headers.js'
import { stateOptions, type StateOptions } from './state.js'
import type { AclFilter, AclPathOption, GuardOptions, JsonObject, ProfileName, TokenGetter } from './types.js'

export type { AclPathOption, GuardOptions, TokenSource, VonageClaims } from './types.js'

/** A token source after validation: header names lower-cased, the scheme resolved. */
export type ResolvedTokenSource =
  | { readonly header: string, readonly scheme: string | null }
  | { readonly cookie: string }
  | { readonly query: string }

export interface NormalizedOptions<Request = unknown> {
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
  readonly aclPath: AclPathOption<Request> | undefined
  readonly aclFilter: AclFilter | undefined
  readonly tokenSources: readonly ResolvedTokenSource[]
  readonly getToken: TokenGetter<Request> | undefined
  readonly maxTokenLength: number
  readonly cacheMax: number
  readonly errorFormat: 'fastify' | 'problem'
  readonly realm: string
  readonly now: () => number
  /** Profile-specific claim rules, run after the common ones. */
  readonly claimChecks: readonly ClaimCheck[]
  /** `claimHeaders` and `grantedByHeader`, compiled (claim-headers.ts). */
  readonly upstreamHeaders: UpstreamHeaderTable
  /** Seconds after `iat` past which a token is stale; null: no such rule. */
  readonly maxAge: number | null
  /** The profile signs the request body: adapters compare it with `payload_hash` (webhook.ts). */
  readonly payloadHash: boolean
  /** Refuse method overrides and requests at the header count limit (edge.ts `checkForUpstream`). */
  readonly forUpstream: boolean
  /** Replay protection and revocation (state.ts); all off by default. */
  readonly state: StateOptions<Request>
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
const RSA_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])

/**
 * Every option name, as a record the compiler holds to `GuardOptions`: a name added there and
 * not here, or left here once gone there, does not build. Anything else is refused by name.
 */
const OPTION_NAMES = {
  publicKey: true, publicKeys: true, secrets: true, maxAge: true, profile: true, algorithms: true,
  applicationId: true, clockTolerance: true, defaultLifetime: true, maxLifetime: true, lifetimePolicy: true,
  minLifetime: true, requiredClaims: true, allowNumericStringDates: true, requireAcl: true, defaultAcl: true,
  aclPath: true, aclFilter: true, tokenSources: true, getToken: true, maxTokenLength: true, cache: true,
  errorFormat: true, realm: true, now: true, jwksUrl: true, jwks: true, replay: true, isRevoked: true,
  revocation: true, failOpen: true, stateTimeout: true, identityHeaders: true,
  forUpstream: true, claimHeaders: true, grantedByHeader: true
} as const satisfies Record<keyof GuardOptions, true>

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(Object.keys(OPTION_NAMES))

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

/** A function option; its type is the one `GuardOptions` documents for it, which JavaScript cannot check. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names that type
function fn<T extends (...args: never[]) => unknown> (value: unknown, name: string): T {
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

function claimNames (value: unknown): readonly string[] {
  const names: string[] = []
  if (Array.isArray(value)) {
    for (const name of value as unknown[]) if (typeof name === 'string' && name.length > 0) names.push(name)
  }
  if (!Array.isArray(value) || names.length !== value.length) invalidOption('requiredClaims', 'must be an array of claim names')
  return Object.freeze(names)
}


function tokenSource (value: unknown, name: string): ResolvedTokenSource {
  if (!isPlainObject(value)) invalidOption(name, 'must be { header, scheme? }, { cookie } or { query }')
  const keys = Object.keys(value)
  if (typeof value.header === 'string' && keys.every(k => k === 'header' || k === 'scheme')) {
    if (!isToken(value.header)) invalidOption(`${name}.header`, 'must be an HTTP header name')
    const scheme = value.scheme === undefined ? (value.header.toLowerCase() === 'authorization' ? 'Bearer' : null) : value.scheme
    if (scheme !== null && (typeof scheme !== 'string' || !isToken(scheme))) invalidOption(`${name}.scheme`, 'must be an auth scheme name or null')
    return Object.freeze({ header: value.header.toLowerCase(), scheme })
  }
  if (typeof value.cookie === 'string' && keys.length === 1) {
    if (!isToken(value.cookie)) invalidOption(`${name}.cookie`, 'must be a cookie name')
    return Object.freeze({ cookie: value.cookie })
  }
  if (typeof value.query === 'string' && keys.length === 1 && value.query.length > 0) {
    return Object.freeze({ query: value.query })
  }
  invalidOption(name, 'must be { header, scheme? }, { cookie } or { query }')
}

/** `aclPath`: a prefix like "/api" (leading slash, no trailing slash) or a function. */
export function checkAclPath<Request> (value: unknown, name: string): AclPathOption<Request> | undefined {
  if (value === undefined || typeof value === 'function') return value as AclPathOption<Request> | undefined
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

function keySource (options: Record<string, unknown>, algorithms: ReadonlySet<string>, profile: ProfileName): KeySource {
  if (options.secrets !== undefined) {
    invalidOption('secrets', `is for the HS256 profiles ('opentok', 'vonage-webhook'); profile '${profile}' verifies RS256 with a public key`)
  }
  const given = ['publicKey', 'publicKeys', 'jwksUrl'].filter(k => options[k] !== undefined)
  if (given.length === 0) invalidOption('publicKey', 'is required (or publicKeys, or jwksUrl)')
  const [first = '', second] = given
  if (second !== undefined) invalidOption(second, `cannot be combined with ${first}: give one source of keys`)
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
export function normalizeOptions<Request = unknown> (input: GuardOptions<Request> | undefined): NormalizedOptions<Request> {
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

  const requiredClaims = claimNames(options.requiredClaims)
  const tokenSources = options.tokenSources
  if (!Array.isArray(tokenSources) || tokenSources.length === 0) invalidOption('tokenSources', 'must be a non-empty array')

  const upstreamHeaders = compileUpstreamHeaders(options.claimHeaders, options.grantedByHeader,
    tokenSources.flatMap((source: unknown) => isPlainObject(source) && typeof source.header === 'string' ? [source.header] : []))

  const cache = options.cache
  let cacheMax = 0
  if (cache !== false) {
    if (!isPlainObject(cache)) invalidOption('cache', 'must be false or { max }')
    cacheMax = integer(cache.max ?? 10_000, 'cache.max', 1, 10_000_000)
  }
  const aclPath = checkAclPath<Request>(options.aclPath, 'aclPath')
  const requireAcl = boolean(options.requireAcl, 'requireAcl')
  const defaultAcl = defaultAclOption(options.defaultAcl, input.defaultAcl !== undefined, requireAcl)
  const realm = options.realm
  if (typeof realm !== 'string' || realm.length === 0 || !/^[\x20-\x7e]+$/.test(realm) || /["\\]/.test(realm)) {
    invalidOption('realm', 'must be a non-empty printable ASCII string without quotes or backslashes')
  }

  return Object.freeze({
    profile,
    algorithms,
    keys: preset.secretClaim === undefined ? keySource(options, algorithms, profile) : secretSource(options, algorithms, profile, preset.secretClaim),
    applicationIds: options.applicationId === undefined ? null : new Set(nonEmptyStrings(options.applicationId, 'applicationId')),
    clockTolerance,
    defaultLifetime,
    maxLifetime,
    lifetimePolicy: oneOf(options.lifetimePolicy, 'lifetimePolicy', ['cap', 'reject']),
    minLifetime,
    requiredClaims,
    allowNumericStringDates: boolean(options.allowNumericStringDates, 'allowNumericStringDates'),
    requireAcl,
    defaultAcl,
    aclPath,
    aclFilter: options.aclFilter === undefined ? undefined : fn<AclFilter>(options.aclFilter, 'aclFilter'),
    tokenSources: Object.freeze(tokenSources.map((s, i) => tokenSource(s, `tokenSources[${i}]`))),
    getToken: options.getToken === undefined ? undefined : fn<TokenGetter<Request>>(options.getToken, 'getToken'),
    maxTokenLength: integer(options.maxTokenLength, 'maxTokenLength', 64, 1_048_576),
    cacheMax,
    errorFormat: oneOf(options.errorFormat, 'errorFormat', ['fastify', 'problem']),
    realm,
    now: fn<() => number>(options.now, 'now'),
    claimChecks: Object.freeze([
      ...preset.claimChecks,
      ...(boolean(options.identityHeaders, 'identityHeaders') ? [identityHeaders] : []),
      ...(upstreamHeaders.claims.length > 0 ? [(claims: JsonObject) => { claimHeaderValues(upstreamHeaders, claims) }] : [])
    ]),
    upstreamHeaders,
    maxAge: options.maxAge === undefined ? null : integer(options.maxAge, 'maxAge', 1, preset.lifetimeCeiling),
    payloadHash: preset.payloadHash === true,
    forUpstream: boolean(options.forUpstream, 'forUpstream'),
    state: stateOptions<Request>(options, maxLifetime)
  })
}

