/**
 * The request pipeline both adapters share, in the order of SPEC section 9:
 * canonical path (400) -> one token (401/400) -> verify (401) -> replay and revocation
 * (401/503, on cache hits too) -> ACL (403).
 * Adapters only translate a request in and a result or a GuardError out.
 */
import type { IncomingMessage } from 'node:http'
import { canonicalPath } from './canonical-path.js'
import { GuardError, InvalidOptionError, invalidOption, misconfigured } from './errors.js'
import { checkAclPath, type AclPathOption, type GuardOptions, type NormalizedOptions, type ResolvedTokenSource, type VonageClaims } from './options.js'
import type { JsonObject } from './token.js'
import { createStateStage } from './state.js'
import { cacheLookup, createVerifier, type Verifier, type VerifiedToken } from './verify.js'
import { checkPayloadHash, requestDigest } from './webhook.js'

/** What a guarded request carries once it passed: `request.auth` / `req.auth`. */
export interface AuthResult<Claims = VonageClaims> {
  readonly header: Readonly<JsonObject>
  readonly claims: Readonly<Claims>
  /** The effective expiry, NumericDate seconds. */
  readonly expiresAt: number
  /** The ACL pattern that granted the request; null for a root token or when the ACL was not checked. */
  readonly grantedBy: string | null
}

/** Per-route settings (`config.jwtGuard` in Fastify, the middleware's own options in Express). */
export interface RouteGuard {
  /** No token is fine (`auth` stays null); a bad token is still refused. */
  readonly optional: boolean
  /** `false`: authenticate only, skip the ACL. */
  readonly acl: boolean
  readonly aclPath: AclPathOption | undefined
  /** Where `aclPath` was given (`aclPath`, `config.jwtGuard of GET /x.aclPath`), for the error a bad return makes. */
  readonly aclPathOption: string
}

export type RouteGuardOption<Request = unknown> = false | {
  optional?: boolean
  acl?: boolean
  aclPath?: string | ((request: Request, path: string) => string | null)
}

/** One request as the pipeline sees it. */
export interface GuardRequest<Request = unknown> {
  /** The raw request target: Fastify `request.raw.url`, Express `req.originalUrl`. */
  readonly target: string
  readonly method: string
  readonly raw: IncomingMessage
  /** The framework's request, handed to user hooks (`getToken`, `aclPath`, `aclFilter`). */
  readonly request: Request
  /** The canonical path of `target`, kept by the first stage that computed it: once per request. */
  path?: string
}

export interface Guard {
  readonly verifier: Verifier
  readonly options: NormalizedOptions
  /** The route settings the options give, unless a route says otherwise. */
  readonly defaultRoute: RouteGuard
  /** Validate a per-route option into its resolved form (throws a TypeError naming `where`). */
  resolveRoute (option: unknown, where: string): RouteGuard | false
  /** Run the pipeline: the auth result, null (optional and no token), or a thrown GuardError. */
  authenticate (input: GuardRequest, route?: RouteGuard): Promise<AuthResult | null>
  /**
   * The same pipeline when it can finish without waiting (a cached token, no getToken, no replay
   * or revocation, no remote key set): its result or thrown GuardError, or undefined when it
   * cannot, and then `authenticate` must run. Saves a server the promise round trips of a hit.
   */
  authenticateSync (input: GuardRequest, route?: RouteGuard): AuthResult | null | undefined
  /**
   * Signed webhooks (a profile with `payloadHash`): once the body is read, compare the token's
   * `payload_hash` with `bodyDigest` (the hex SHA-256 of the raw body; GET and HEAD: of the raw
   * query). Throws a GuardError; does nothing for other profiles or when `auth` is null.
   */
  checkPayload (auth: AuthResult | null, input: GuardRequest, bodyDigest: string | undefined): void
}

function countHeader (raw: IncomingMessage, name: string): { count: number, value: string | undefined } {
  const list = raw.rawHeaders
  let count = 0
  let value: string | undefined
  for (let i = 0; i < list.length; i += 2) {
    const field = list[i]!
    if (field.length === name.length && field.toLowerCase() === name) {
      count++
      value = list[i + 1]
    }
  }
  return { count, value }
}

/** RFC 9110 `tchar`: what an auth-scheme is made of. */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") TCHAR[c.charCodeAt(0)] = 1

/**
 * The credentials of `<scheme> <credentials>` (spaces around them allowed), given the index of
 * the first space, or null when the value is not of that form. A hand-written split rather than
 * a regex because it runs on every request and a regex scans the whole token: a credential with
 * other whitespace inside (a tab) is left to the token parser, which refuses it as malformed.
 */
function credentials (value: string, space: number): string | null {
  for (let i = 0; i < space; i++) {
    const code = value.charCodeAt(i)
    if (code >= 128 || TCHAR[code] !== 1) return null
  }
  let start = space + 1
  while (value.charCodeAt(start) === 0x20) start++
  const end = value.indexOf(' ', start)
  if (end === -1) return value.slice(start)
  for (let i = end + 1; i < value.length; i++) if (value.charCodeAt(i) !== 0x20) return null
  return value.slice(start, end)
}

/** A token from one source, undefined when the source is empty, or a thrown GuardError. */
function fromSource (source: ResolvedTokenSource, input: GuardRequest): string[] {
  if ('header' in source) {
    const { count, value } = countHeader(input.raw, source.header)
    if (count === 0 || value === undefined) return []
    if (count > 1) throw new GuardError('VJG_TOKEN_AMBIGUOUS', `The request has ${count} "${source.header}" headers: send one`)
    if (source.scheme === null) {
      const token = value.trim()
      return token.length === 0 ? [] : [token]
    }
    const space = value.indexOf(' ')
    const token = space > 0 ? credentials(value, space) : null
    if (token === null) {
      // "Bearer " with no token reaches a real server as "Bearer": Node's parser trims the space.
      if (value.trim().toLowerCase() === source.scheme.toLowerCase()) {
        throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header has an empty ${source.scheme} token`)
      }
      if (value.toLowerCase().startsWith(source.scheme.toLowerCase()) && value.length > source.scheme.length &&
        value[source.scheme.length] === ' ') {
        throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header is not "${source.scheme} <token>"`)
      }
      return []
    }
    // Another scheme (Basic, say) is not our token: the request has no bearer token.
    if (space !== source.scheme.length || value.slice(0, space).toLowerCase() !== source.scheme.toLowerCase()) return []
    if (token.length === 0) throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header has an empty ${source.scheme} token`)
    return [token]
  }
  if ('cookie' in source) {
    const { value } = countHeader(input.raw, 'cookie')
    const all = input.raw.headers.cookie
    if (value === undefined || all === undefined) return []
    const found: string[] = []
    for (const pair of all.split(/; */)) {
      const eq = pair.indexOf('=')
      if (eq > 0 && pair.slice(0, eq).trim() === source.cookie) found.push(pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'))
    }
    return found.filter(t => t.length > 0)
  }
  const q = input.target.indexOf('?')
  if (q === -1) return []
  const found = new URLSearchParams(input.target.slice(q + 1)).getAll(source.query)
  return found.filter(t => t.length > 0)
}

async function extractToken (options: NormalizedOptions, input: GuardRequest): Promise<string | undefined> {
  if (options.getToken !== undefined) {
    const token = await options.getToken(input.request)
    if (token === undefined || token === null || token === '') return undefined
    if (typeof token !== 'string') throw new GuardError('VJG_TOKEN_MALFORMED', 'getToken returned something other than a string')
    return token
  }
  return tokenFromSources(options, input)
}

/** The one token of the configured sources (no getToken), or undefined. */
function tokenFromSources (options: NormalizedOptions, input: GuardRequest): string | undefined {
  let token: string | undefined
  let count = 0
  for (const source of options.tokenSources) {
    const found = fromSource(source, input)
    count += found.length
    token ??= found[0]
  }
  if (count > 1) throw new GuardError('VJG_TOKEN_AMBIGUOUS', 'The request carries more than one token: send exactly one')
  return token
}

function returned (value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string that does not start with "/"'
  if (typeof (value as PromiseLike<unknown> | null)?.then === 'function') return 'a promise (aclPath must answer synchronously)'
  return value === undefined ? 'undefined' : `a value of type ${typeof value}`
}

/**
 * The path the ACL sees: the canonical path (computed once, from the raw target, by the caller),
 * mapped by the route's or the options' `aclPath`. A prefix is stripped from the decoded path;
 * a function maps the decoded path, and its answer is matched as it is: nothing parses it again,
 * so a decoded `?` or `#`, a space or a non-ASCII letter stays part of the path.
 */
function aclPathFor (route: RouteGuard, input: GuardRequest, path: string): string | null {
  const mapping = route.aclPath
  if (mapping === undefined) return path
  if (typeof mapping === 'string') {
    if (path === mapping) return '/'
    return path.startsWith(mapping) && path[mapping.length] === '/' ? path.slice(mapping.length) : null
  }
  const mapped: unknown = mapping(input.request, path)
  if (mapped === null) return null
  // A developer's mistake met at request time: a TypeError naming the option, which the guard
  // answers fail-closed (503) and the adapters log at error.
  if (typeof mapped !== 'string' || mapped.charCodeAt(0) !== 0x2f) {
    throw new InvalidOptionError(route.aclPathOption, `returned ${returned(mapped)}: return the path to match, starting with "/", or null when no ACL rule may grant the request`)
  }
  return mapped
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype
}

export function createGuard (input: GuardOptions<any>): Guard {
  // RSA on the thread pool: measured faster for a server under concurrent requests (bench/).
  const verifier = createVerifier(input, { signaturesOnPool: true })
  const options = verifier.options
  const state = createStateStage(options.state, options)
  const defaultRoute: RouteGuard = Object.freeze({ optional: false, acl: true, aclPath: options.aclPath, aclPathOption: 'aclPath' })

  function resolveRoute (option: unknown, where: string): RouteGuard | false {
    if (option === undefined) return defaultRoute
    if (option === false) return false
    if (!isPlainObject(option)) invalidOption(where, 'must be false or { optional?, acl?, aclPath? }')
    for (const key of Object.keys(option)) {
      if (key !== 'optional' && key !== 'acl' && key !== 'aclPath') invalidOption(`${where}.${key}`, 'is not a route option')
    }
    const { optional = false, acl = true } = option
    if (typeof optional !== 'boolean') invalidOption(`${where}.optional`, 'must be true or false')
    if (typeof acl !== 'boolean') invalidOption(`${where}.acl`, 'must be true or false')
    const own = checkAclPath(option.aclPath, `${where}.aclPath`)
    const aclPath = own ?? options.aclPath
    return Object.freeze({ optional, acl, aclPath, aclPathOption: own === undefined ? 'aclPath' : `${where}.aclPath` })
  }

  async function run (input: GuardRequest, route: RouteGuard): Promise<AuthResult | null> {
    const path = input.path ?? canonicalPath(input.target)
    // Without getToken nothing here waits: no promise for the common case.
    const token = options.getToken === undefined ? tokenFromSources(options, input) : await extractToken(options, input)
    if (token === undefined) {
      if (route.optional) return null
      throw new GuardError('VJG_TOKEN_MISSING')
    }
    const verified = await verifier.verify(token)
    if (state !== null) await state(verified, input.request)
    return authorized(input, route, path, verified)
  }

  /** The ACL stage and the result, for a verified token. */
  function authorized (input: GuardRequest, route: RouteGuard, path: string, verified: VerifiedToken): AuthResult {
    let grantedBy: string | null = null
    if (route.acl) {
      grantedBy = verifier.authorize(verified, input.method, aclPathFor(route, input, path), { request: input.request }).grantedBy
    }
    return { header: verified.header, claims: verified.claims, expiresAt: verified.expiresAt, grantedBy }
  }

  const cached = cacheLookup(verifier)
  /** With any of these, some stage has to wait: authenticateSync leaves every request to authenticate. */
  const alwaysAsync = options.getToken !== undefined || state !== null

  function authenticateSync (input: GuardRequest, route: RouteGuard = defaultRoute): AuthResult | null | undefined {
    if (alwaysAsync) return undefined
    try {
      // Pure steps only until the cache answers, so that `authenticate` may go on from here.
      const path = canonicalPath(input.target)
      input.path = path
      const token = tokenFromSources(options, input)
      if (token === undefined) {
        if (route.optional) return null
        throw new GuardError('VJG_TOKEN_MISSING')
      }
      const verified = cached(token)
      return verified === undefined ? undefined : authorized(input, route, path, verified)
    } catch (error) {
      throw failure(error)
    }
  }

  /**
   * A throwing user hook (getToken, aclPath, aclFilter) fails closed as 503, never a 500. So
   * does a developer's mistake only a request can reveal (an aclPath answer that is no path, a
   * route config Fastify showed too late): the client learns nothing of the configuration, the
   * `cause` (a TypeError naming the option) goes to the server log at error (misconfigured()).
   */
  function failure (error: unknown): GuardError {
    let coded: GuardError
    if (error instanceof GuardError) coded = error
    else if (error instanceof InvalidOptionError) coded = misconfigured(error)
    else coded = new GuardError('VJG_UNAVAILABLE', 'A hook of the guard failed', { cause: error })
    return coded.withRealm(options.realm)
  }

  async function authenticate (input: GuardRequest, route: RouteGuard = defaultRoute): Promise<AuthResult | null> {
    try {
      return await run(input, route)
    } catch (error) {
      throw failure(error)
    }
  }

  function checkPayload (auth: AuthResult | null, input: GuardRequest, bodyDigest: string | undefined): void {
    if (!options.payloadHash || auth === null) return
    const digest = requestDigest(input.method, input.target, input.raw, bodyDigest)
    try {
      if (digest === undefined) throw new GuardError('VJG_SIGNATURE_INVALID', 'The request body was not read to its end: its "payload_hash" cannot be checked')
      checkPayloadHash(auth.claims.payload_hash, digest)
    } catch (error) {
      throw (error as GuardError).withRealm(options.realm)
    }
  }

  return Object.freeze({ verifier, options, defaultRoute, resolveRoute, authenticate, authenticateSync, checkPayload })
}
