/**
 * The types the modules share: claims, tokens, keys, the options and their hooks, results and
 * the decisions the guard publishes. Types only, and a leaf: it imports nothing but other leaves
 * (the error table, the store contract), so every module may import it and no import cycle runs
 * through it. `options.ts` validates what `GuardOptions` describes.
 */
import type { KeyObject } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { ErrorCode, GuardError } from './errors.js'
import type { GuardStore } from './stores/store.js'

/** A JSON object as `JSON.parse` makes it: a token header or payload. */
export type JsonObject = Record<string, unknown>

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

/** A token whose signature and claims passed. `expiresAt` is the effective expiry (NumericDate seconds). */
export interface VerifiedToken<Claims = VonageClaims> {
  readonly header: Readonly<JsonObject>
  readonly claims: Readonly<Claims>
  readonly expiresAt: number
}

/** What a guarded request carries once it passed: `request.auth` / `req.auth`. */
export interface AuthResult<Claims = VonageClaims> {
  readonly header: Readonly<JsonObject>
  readonly claims: Readonly<Claims>
  /** The effective expiry, NumericDate seconds. */
  readonly expiresAt: number
  /** The ACL pattern that granted the request; null for a root token or when the ACL was not checked. */
  readonly grantedBy: string | null
}

/** A logger that hangs off the request (Fastify's `request.log`, pino-http's `req.log`); any level may be missing. */
export interface RequestLog {
  info?: (object: Record<string, unknown>, message: string) => void
  warn?: (object: Record<string, unknown>, message: string) => void
  error?: (object: Record<string, unknown>, message: string) => void
}

/** One request as the pipeline sees it: what an adapter hands `authenticate`. */
export interface GuardRequest<Request = unknown> {
  /** The raw request target: Fastify `request.raw.url`, Express `req.originalUrl`. */
  readonly target: string
  readonly method: string
  readonly raw: IncomingMessage
  /** The framework's request, handed to user hooks (`getToken`, `aclPath`, `isRevoked`, `aclFilter`). */
  readonly request: Request
  /** Where refusals (info, a configuration mistake at error) and checks skipped under `failOpen` (warn) are logged. */
  readonly log?: RequestLog | undefined
}

/** A JSON Web Key (RFC 7517) with at least `kty`. */
export interface JsonWebKeyInput {
  kty: string
  kid?: string
  alg?: string
  use?: string
  [parameter: string]: unknown
}

/** Anything a user may hand us as a public key. */
export type PublicKeyInput = string | Buffer | KeyObject | JsonWebKeyInput

/** An HMAC secret: a UTF-8 string, bytes, or a secret `KeyObject`; at least 16 bytes. */
export type SecretInput = string | Buffer | KeyObject

/** Where a token may come from. The default is `[{ header: 'authorization', scheme: 'Bearer' }]`. */
export type TokenSource =
  | { header: string, scheme?: string | null }
  | { cookie: string }
  | { query: string }

/** The named presets of the `profile` option. */
export type ProfileName = 'vonage' | 'vonage-video' | 'opentok' | 'vonage-webhook'

export interface AclContext {
  method: string
  path: string
  claims?: Record<string, unknown>
  request?: unknown
}

/** Decides a rule that carries `filters`; only a return of exactly `true` grants. */
export type AclFilter = (filters: Readonly<Record<string, unknown>>, context: AclContext) => boolean

/** `aclPath`: a prefix to strip, or a function of the request and the decoded canonical path (null: no ACL rule grants). */
export type AclPathOption<Request = unknown> = string | ((request: Request, path: string) => string | null)

/** `getToken(request)`: the token, or undefined / null / '' when the request has none; sync or async. */
export type TokenGetter<Request = unknown> = (request: Request) => string | null | undefined | Promise<string | null | undefined>

/** `isRevoked(claims, request)`: true revokes; sync or async; a throw or a non-boolean is a failed check. */
export type RevocationHook<Request = unknown> = (claims: Readonly<VonageClaims>, request: Request) => boolean | Promise<boolean>

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
  /**
   * The verified `application_id` and `sub` will travel upstream as the `X-Vonage-Application-Id`
   * and `X-Vonage-Sub` headers: a token whose claim a header cannot carry unchanged (not a
   * string, or not printable ASCII) is refused with 401 `VJG_CLAIM_INVALID` while it is
   * verified. `forwardAuth` always sets it; the CLI's `proxy` too. @default false
   */
  identityHeaders?: boolean
  /**
   * Verified claims that travel upstream as headers of your choosing, by claim path:
   * `{ sub: 'X-User-Id', 'video.role': 'X-Role' }`. Only a number or a string of printable ASCII
   * is copied; a token whose named claim is anything else is refused with 401
   * `VJG_CLAIM_INVALID` while it is verified. A name the guard sets or strips itself, a hop-by-hop
   * or framing header, or the `acl` claim is refused at registration. `forwardAuth` and the CLI's
   * `proxy` set them (and refuse or strip a client's copy in any spelling); elsewhere they are
   * only checked. @default undefined
   */
  claimHeaders?: Record<string, string>
  /**
   * The header that carries the ACL pattern that granted the request upstream (empty for a root
   * token), percent-encoded where it is not printable ASCII, a space or `%`; same rules as
   * `claimHeaders`. @default undefined
   */
  grantedByHeader?: string
  /**
   * The request goes on to another server once granted (a backend behind `forwardAuth` or the
   * CLI's `proxy`): refuse, before any token work, what that server could read as another
   * request than the one judged. A method override (`X-HTTP-Method-Override`, `X-HTTP-Method`,
   * `X-Method-Override` in any spelling, a `_method` query parameter in any case) is 400
   * `VJG_METHOD_OVERRIDE`; a request that reached the server's header count limit (Node keeps
   * about 1,000 and Node 20 drops the rest unseen) is 431 `VJG_HEADERS_TOO_MANY`. `forwardAuth`
   * always sets it; the CLI's `proxy` too. @default false
   */
  forUpstream?: boolean
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
  aclPath?: AclPathOption<Request>
  /** Decides ACL rules that carry `filters`; without it such a rule never grants. @default undefined */
  aclFilter?: AclFilter
  /** Where to look for the token; more than one token found is 400 `VJG_TOKEN_AMBIGUOUS`. @default [{ header: 'authorization', scheme: 'Bearer' }] */
  tokenSources?: TokenSource[]
  /** Reads the token yourself (replaces `tokenSources`); return undefined when there is none. @default undefined */
  getToken?: TokenGetter<Request>
  /** Longest token accepted, in characters. @default 8192 */
  maxTokenLength?: number
  /** The verified-token cache (W-TinyLFU, never past a token's effective expiry); `false` turns it off. @default { max: 10000 } */
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

/** A replay or revocation check, as a failed-open decision names it: the replay store, the revocation store, the `isRevoked` hook. */
export type StateCheck = 'replay' | 'revocation' | 'isRevoked'

/** How the verified-token cache took part in a decision: `not-reached` when no token was verified (refused earlier, or no token). */
export type CacheOutcome = 'hit' | 'miss' | 'off' | 'not-reached'

/**
 * One decision of the guard, published on the `node:diagnostics_channel` channel
 * `vonage-jwt-guard:decision` (see the README). Built only while the channel has subscribers.
 * Never the token, never a claim beyond `application_id` and `sub`, never key material.
 */
export interface GuardDecision {
  /**
   * `request`: the decision of the request pipeline, one per guarded request. `body`: a signed
   * webhook's body did not match its `payload_hash`, found once the body was read, after that
   * request was granted (so one request gives a `request` grant, then this refusal).
   */
  readonly phase: 'request' | 'body'
  readonly granted: boolean
  /** The refusal's code; null when granted. */
  readonly code: ErrorCode | null
  /** The refusal's HTTP status; null when granted. */
  readonly statusCode: number | null
  /** The request method as received. */
  readonly method: string
  /** The canonical path; null when the path itself was refused (400 `VJG_PATH_INVALID`). */
  readonly path: string | null
  /** The verified token's `application_id`; null when no token was verified. */
  readonly applicationId: string | null
  /** The verified token's `sub`; null when it has none or no token was verified. */
  readonly sub: string | null
  /** The pattern that granted; null for a root token, an unchecked ACL or a refusal. */
  readonly grantedBy: string | null
  /** Milliseconds from the start of the pipeline (or of the body check) to the decision. */
  readonly duration: number
  readonly cache: CacheOutcome
  /**
   * The replay and revocation checks whose store or `isRevoked` hook failed or did not answer
   * within `stateTimeout`: the reason for a 503 `VJG_UNAVAILABLE`, or under `failOpen` the checks
   * skipped (then also in `failedOpen`). Empty when every check was made.
   */
  readonly failedChecks: readonly StateCheck[]
  /** The checks that failed and were skipped under `failOpen`; empty when none was. */
  readonly failedOpen: readonly StateCheck[]
  /** The refusal (coded, realm set; its `cause` may be a hook's or a store's error); null when granted. */
  readonly error: GuardError | null
}
