/**
 * The one table of error codes. Every rejection the guard makes is a `GuardError` built from
 * this table: a stable `code`, its HTTP status, a message a person can act on (never the token)
 * and the RFC 6750 `WWW-Authenticate` challenge in `headers`.
 *
 * Two families, never mixed: a developer's mistake is a `TypeError` with code
 * `VJG_INVALID_OPTION`, thrown at registration; a client's bad input is a `GuardError` (4xx, or
 * 503 when a dependency is down) at request time.
 */

/** How the challenge of a code is shaped (RFC 6750 section 3). */
type Challenge = 'none' | 'invalid_request' | 'invalid_token' | 'insufficient_scope'

/**
 * Which check refused, as `GuardError.check` names it: a stage of the pipeline (docs/options.md,
 * "Order of checks") or, within the token stage, the step of verification (`required`: a claim
 * that must be there is not; `claim`: a claim's type or value; `application`: the allow-list).
 */
export type GuardCheck = 'request' | 'path' | 'token' | 'format' | 'header' | 'key' | 'signature' | 'required' | 'claim' |
'application' | 'lifetime' | 'replay' | 'revocation' | 'acl' | 'body' | 'dependency'

interface ErrorSpec {
  readonly statusCode: number
  readonly message: string
  readonly challenge: Challenge
  /** The check a refusal with this code made, unless the refusal names another. */
  readonly check: GuardCheck
}

export const errors = Object.freeze({
  VJG_TOKEN_MISSING: { statusCode: 401, message: 'No token: send "Authorization: Bearer <jwt>"', challenge: 'none', check: 'token' },
  VJG_TOKEN_MALFORMED: { statusCode: 401, message: 'The token is not a compact JWS (three base64url parts of JSON objects)', challenge: 'invalid_token', check: 'format' },
  VJG_TOKEN_AMBIGUOUS: { statusCode: 400, message: 'The request carries more than one token: send exactly one', challenge: 'invalid_request', check: 'token' },
  VJG_ALG_NOT_ALLOWED: { statusCode: 401, message: 'The token header asks for an algorithm or extension that is not accepted', challenge: 'invalid_token', check: 'header' },
  VJG_SIGNATURE_INVALID: { statusCode: 401, message: 'No configured key verifies the token signature', challenge: 'invalid_token', check: 'signature' },
  VJG_KEY_UNKNOWN: { statusCode: 401, message: 'No key is configured for this token', challenge: 'invalid_token', check: 'key' },
  VJG_CLAIM_MISSING: { statusCode: 401, message: 'A required claim is missing', challenge: 'invalid_token', check: 'required' },
  VJG_CLAIM_INVALID: { statusCode: 401, message: 'A claim has the wrong type or shape', challenge: 'invalid_token', check: 'claim' },
  VJG_APPLICATION_MISMATCH: { statusCode: 401, message: 'The token application_id is not accepted here', challenge: 'invalid_token', check: 'application' },
  VJG_TOKEN_EXPIRED: { statusCode: 401, message: 'The token has expired', challenge: 'invalid_token', check: 'lifetime' },
  VJG_TOKEN_NOT_YET_VALID: { statusCode: 401, message: 'The token is not valid yet (iat or nbf is in the future)', challenge: 'invalid_token', check: 'lifetime' },
  VJG_LIFETIME_EXCEEDED: { statusCode: 401, message: 'The token lifetime (exp - iat) exceeds the maximum', challenge: 'invalid_token', check: 'lifetime' },
  VJG_LIFETIME_TOO_SHORT: { statusCode: 401, message: 'The token lifetime (exp - iat) is below the minimum', challenge: 'invalid_token', check: 'lifetime' },
  VJG_TOKEN_REPLAYED: { statusCode: 401, message: 'The token jti was already used', challenge: 'invalid_token', check: 'replay' },
  VJG_TOKEN_REVOKED: { statusCode: 401, message: 'The token has been revoked', challenge: 'invalid_token', check: 'revocation' },
  VJG_ACL_DENIED: { statusCode: 403, message: 'The token ACL does not grant this request', challenge: 'insufficient_scope', check: 'acl' },
  VJG_PATH_INVALID: { statusCode: 400, message: 'The request path cannot be made canonical', challenge: 'invalid_request', check: 'path' },
  VJG_FORWARD_INVALID: { statusCode: 400, message: 'The forward-auth request does not name exactly one original method and target', challenge: 'invalid_request', check: 'request' },
  VJG_IDENTITY_HEADER: { statusCode: 400, message: 'The request carries an identity header that only the guard may set', challenge: 'invalid_request', check: 'request' },
  VJG_METHOD_OVERRIDE: { statusCode: 400, message: 'The request asks a server behind the guard for another method than its own', challenge: 'invalid_request', check: 'request' },
  VJG_URL_REWRITE: { statusCode: 400, message: 'The request asks a server behind the guard for another URL than its own', challenge: 'invalid_request', check: 'request' },
  VJG_HEADERS_TOO_MANY: { statusCode: 431, message: 'The request has more header lines than this server reads', challenge: 'invalid_request', check: 'request' },
  VJG_UNAVAILABLE: { statusCode: 503, message: 'A key set, store or hook the guard depends on cannot be reached', challenge: 'none', check: 'dependency' }
} as const satisfies Record<string, ErrorSpec>)

export type ErrorCode = keyof typeof errors

export const DEFAULT_REALM = 'vonage-jwt-guard'

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable'
}

/** A quoted-string of RFC 7230 may not hold `"`, `\` or control characters: keep it plain ASCII. */
function quoted (value: string): string {
  return value.replace(/"/g, "'").replace(/[^\x20-\x7e]|\\/g, ' ')
}

/** The `WWW-Authenticate` value for one rejection. */
export function challenge (code: ErrorCode, realm: string, description: string): string {
  const kind = errors[code].challenge
  const head = `Bearer realm="${quoted(realm)}"`
  if (kind === 'none') return head
  return `${head}, error="${kind}", error_description="${quoted(description)}"`
}

/**
 * What a refusal compared, as jose's claim errors carry it: read these, never the message, whose
 * words may change.
 */
interface RefusalFacts {
  /** The check that refused; by default the code's own (the `check` column of `errors`). */
  check?: GuardCheck
  /** The claim (or header parameter, with `check: 'header'`) the check read. */
  claim?: string
  /** What the check wanted: a value or a list of them. */
  expected?: unknown
  /** What the token or request had (never the token itself). */
  actual?: unknown
  /** The bound crossed: an instant (NumericDate seconds) for the lifetime, else a number of seconds or items. */
  limit?: number
}

interface GuardErrorOptions extends RefusalFacts {
  /** The realm of the challenge; adapters set their configured realm with `withRealm`. */
  realm?: string
  cause?: unknown
}

/**
 * The brand of a GuardError, in the global symbol registry: two installed copies of the package
 * (a library and an app each with their own) make two GuardError classes, and `instanceof` one
 * is false for the other's errors; both copies read the same brand.
 */
const GUARD_ERROR = Symbol.for('vonage-jwt-guard.GuardError')

/**
 * A coded rejection. Shaped for both frameworks: Fastify's error handler reads `statusCode`,
 * `code` and `headers`; Express' finalhandler reads `status` and `headers`.
 */
export class GuardError extends Error {
  override readonly name = 'GuardError'
  readonly code: ErrorCode
  readonly statusCode: number
  readonly status: number
  /** The short reason, shared by the message and the challenge's `error_description`. */
  readonly description: string
  /** Errors from the guard are meant for the client: their message never holds the token. */
  readonly expose = true
  /** Which check refused (see `GuardCheck`). */
  readonly check: GuardCheck
  /** The claim the check read, when one. */
  readonly claim: string | undefined
  readonly expected: unknown
  readonly actual: unknown
  readonly limit: number | undefined
  realm: string

  constructor (code: ErrorCode, detail?: string, options: GuardErrorOptions = {}) {
    const spec = errors[code]
    const description = detail ?? spec.message
    super(description, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.statusCode = spec.statusCode
    this.status = spec.statusCode
    this.description = description
    this.check = options.check ?? spec.check
    this.claim = options.claim
    this.expected = options.expected
    this.actual = options.actual
    this.limit = options.limit
    this.realm = options.realm ?? DEFAULT_REALM
  }

  /** The brand `isGuardError` reads (on the prototype: nothing per error). */
  get [GUARD_ERROR] (): true {
    return true
  }

  /** The HTTP reason phrase of the status, as Fastify's body names it in `error`. */
  get error (): string {
    return STATUS_TEXT[this.statusCode] ?? 'Error'
  }

  /** Response headers: the RFC 6750 challenge. A getter, so a realm set later is honoured. */
  get headers (): Record<string, string> {
    return { 'www-authenticate': challenge(this.code, this.realm, this.description) }
  }

  /** This error with the adapter's realm; returns itself for chaining. */
  withRealm (realm: string): this {
    this.realm = realm
    return this
  }
}

/** Whether a value is a GuardError, of this copy of the package or of another one installed beside it. */
export function isGuardError (value: unknown): value is GuardError {
  return typeof value === 'object' && value !== null && (value as { [GUARD_ERROR]?: unknown })[GUARD_ERROR] === true
}

/** The developer-mistake family: thrown at registration, never at request time. */
export class InvalidOptionError extends TypeError {
  override readonly name = 'TypeError'
  readonly code = 'VJG_INVALID_OPTION'
  readonly option: string

  constructor (option: string, message: string) {
    super(`vonage-jwt-guard: option "${option}" ${message}`)
    this.option = option
  }
}

export function invalidOption (option: string, message: string): never {
  throw new InvalidOptionError(option, message)
}

/**
 * The answer to a developer's mistake that only a request could reveal: 503, fail closed, the
 * client told nothing of the configuration; the mistake (a TypeError naming the option) is the
 * cause, which the adapters log at `error` (see `misconfiguration`).
 */
export function misconfigured (cause: InvalidOptionError): GuardError {
  return new GuardError('VJG_UNAVAILABLE', 'The guard is misconfigured for this request (see the server log)', { cause })
}

/**
 * The developer's mistake behind a 503, when only a request could reveal it (an `aclPath`
 * function's answer, a route config Fastify showed the plugin too late): the adapters log it at
 * `error`, so it does not hide behind the client's generic 503.
 */
export function misconfiguration (error: GuardError): InvalidOptionError | undefined {
  return error.cause instanceof InvalidOptionError ? error.cause : undefined
}

/** RFC 7807 `type` URIs, following Vonage's API error pages. */
const PROBLEM_TYPE: Record<number, string> = {
  400: 'https://developer.vonage.com/api-errors#bad-request',
  401: 'https://developer.vonage.com/api-errors#unauthorized',
  403: 'https://developer.vonage.com/api-errors#forbidden',
  503: 'https://developer.vonage.com/api-errors#service-unavailable'
}

export interface ProblemBody {
  type: string
  title: string
  detail: string
  instance: string
  code: ErrorCode
}

/** The default error body: Fastify's own shape, with the guard's code. */
export function errorBody (error: GuardError): { statusCode: number, code: ErrorCode, error: string, message: string } {
  return { statusCode: error.statusCode, code: error.code, error: error.error, message: error.message }
}

/** The Vonage-shaped RFC 7807 body for `errorFormat: 'problem'`. */
export function problemBody (error: GuardError, instance: string): ProblemBody {
  return {
    type: PROBLEM_TYPE[error.statusCode] ?? 'about:blank',
    title: error.error,
    detail: error.message,
    instance,
    code: error.code
  }
}
