/**
 * The request pipeline both adapters call: `authenticate` runs the stages of docs/options.md "Order of checks", each once,
 * in order: (with `forUpstream`, method overrides 400 and the header limit 431) -> canonical path (400) -> one token (401/400) -> verify (401) -> replay and revocation
 * (401/503, on cache hits too) -> ACL (403). It answers at once when no stage has to wait, and
 * with a promise only when one does (a remote key set, RSA on the thread pool, a store, a user
 * hook): a cached token is decided without a promise because it goes through these same stages.
 * Each decision is reported here, once: a refusal (and a check skipped under `failOpen`) is
 * logged through the request's logger, and every decision is published on the
 * `node:diagnostics_channel` channel `vonage-jwt-guard:decision` while someone listens.
 * Adapters only translate a request in and an answer out.
 */
import { channel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { shownPath } from './acl.js'
import { isThenable, type Awaitable } from './awaitable.js'
import { canonicalPath } from './canonical-path.js'
import { checkForUpstream } from './edge.js'
import { GuardError, InvalidOptionError, invalidOption, misconfigured, misconfiguration } from './errors.js'
import { isPlainObject } from './is-plain-object.js'
import { checkAclPath, normalizeOptions, type NormalizedOptions } from './options.js'
import { guardReadiness, type ReadinessCheck } from './readiness.js'
import { createStateStage, type StateFailure } from './state.js'
import { tokenOf } from './token-source.js'
import type { AclPathOption, AuthResult, GuardDecision, GuardOptions, GuardRequest, RequestLog, StateCheck, VerifiedToken } from './types.js'
import { createTokenVerifier, type Verification, type Verifier, type VerifyTrace } from './verify.js'
import { checkPayloadHash, requestDigest } from './webhook.js'

export type { AuthResult, GuardRequest } from './types.js'

/** The `node:diagnostics_channel` channel every decision is published on (see `GuardDecision`). */
export const DECISION_CHANNEL = 'vonage-jwt-guard:decision'
const decisions = channel(DECISION_CHANNEL)

/** Per-route settings (`config.jwtGuard` in Fastify, the middleware's own options in Express). */
export interface RouteGuard<Request = unknown> {
  /** No token is fine (`auth` stays null); a bad token is still refused. */
  readonly optional: boolean
  /** `false`: authenticate only, skip the ACL. */
  readonly acl: boolean
  readonly aclPath: AclPathOption<Request> | undefined
  /** Where `aclPath` was given (`aclPath`, `config.jwtGuard of GET /x.aclPath`), for the error a bad return makes. */
  readonly aclPathOption: string
}

export type RouteGuardOption<Request = unknown> = false | {
  optional?: boolean
  acl?: boolean
  aclPath?: AclPathOption<Request>
}

interface Guard<Request = unknown> {
  readonly verifier: Verifier<Request>
  readonly options: NormalizedOptions<Request>
  /** The route settings the options give, unless a route says otherwise. */
  readonly defaultRoute: RouteGuard<Request>
  /** Validate a per-route option into its resolved form (throws a TypeError naming `where`). */
  resolveRoute (option: unknown, where: string): RouteGuard<Request> | false
  /**
   * Run the pipeline: the auth result, null (optional and no token), or a thrown coded
   * GuardError; a promise of the same only when a stage has to wait.
   */
  authenticate (input: GuardRequest<Request>, route?: RouteGuard<Request>): Awaitable<AuthResult | null>
  /**
   * Signed webhooks (a profile with `payloadHash`): once the body is read, compare the token's
   * `payload_hash` with `bodyDigest` (the hex SHA-256 of the raw body; GET and HEAD: of the raw
   * query). Throws a reported GuardError; does nothing for other profiles or when `auth` is null.
   */
  checkPayload (auth: AuthResult | null, input: GuardRequest<Request>, bodyDigest: string | undefined): void
  /**
   * A refusal made outside the pipeline (a route config found bad at request time, a webhook body
   * that cannot be checked): reported as the pipeline reports its own, and returned coded, with
   * the realm. `auth` is the request's grant, for a refusal of its body.
   */
  refuse (input: GuardRequest<Request>, error: unknown, auth?: AuthResult | null): GuardError
  /** Readiness (readiness.ts): the keys loaded, each store that can be pinged answering. */
  readonly readiness: ReadinessCheck
}

/** What one request's decision event is built from, kept only while the channel has subscribers. */
interface Trace extends VerifyTrace {
  readonly started: number
  path: string | null
  verified: VerifiedToken | AuthResult | null
  failedChecks: readonly StateCheck[]
}

const NONE_FAILED: readonly StateCheck[] = Object.freeze([])

function startTrace (): Trace {
  return { started: performance.now(), path: null, verified: null, cache: 'not-reached', failedChecks: NONE_FAILED }
}

function returned (value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string that does not start with "/"'
  if (isThenable(value)) return 'a promise (aclPath must answer synchronously)'
  return value === undefined ? 'undefined' : `a value of type ${typeof value}`
}

/**
 * The path the ACL sees: the canonical path mapped by the route's or the options' `aclPath`. A
 * prefix is stripped from the decoded path; a function maps the decoded path, and its answer is
 * matched as it is: nothing parses it again, so a decoded `?` or `#`, a space or a non-ASCII
 * letter stays part of the path.
 */
function aclPathFor<Request> (route: RouteGuard<Request>, input: GuardRequest<Request>, path: string): string | null {
  const mapping = route.aclPath
  if (mapping === undefined) return path
  if (typeof mapping === 'string') {
    if (path === mapping) return '/'
    return path.startsWith(mapping) && path[mapping.length] === '/' ? path.slice(mapping.length) : null
  }
  const mapped: unknown = mapping(input.request, path)
  if (mapped === null) return null
  // A developer's mistake met at request time: a TypeError naming the option, which the guard
  // answers fail-closed (503) and logs at error.
  if (typeof mapped !== 'string' || mapped.charCodeAt(0) !== 0x2f) {
    throw new InvalidOptionError(route.aclPathOption, `returned ${returned(mapped)}: return the path to match, starting with "/", or null when no ACL rule may grant the request`)
  }
  return mapped
}

/**
 * A 403 that `aclPath` caused names what it did: the request's path, and the path matched against
 * the acl (or that none could be: outside the prefix, or null from a function). Otherwise a
 * developer reading `GET /v1/users/alice` refused sees nothing of the `/api` it was missing.
 */
function aclPathDenied<Request> (error: unknown, route: RouteGuard<Request>, method: string, path: string, matched: string | null): unknown {
  if (!(error instanceof GuardError) || error.code !== 'VJG_ACL_DENIED') return error
  // Not route.aclPathOption: how a route is named differs between the adapters, and the client sees this.
  const mapping = typeof route.aclPath === 'string' ? `aclPath "${route.aclPath}"` : 'the aclPath function'
  // The refusal's facts stay (verify and the logs read them); only its words say more.
  const facts = { check: error.check, claim: error.claim, expected: error.expected, actual: error.actual }
  if (matched === null) {
    const why = typeof route.aclPath === 'string'
      ? `is outside ${mapping}: only ${route.aclPath} and the paths under it are matched against the token acl`
      : `is not granted: ${mapping} answered null (no acl rule may grant it)`
    return new GuardError('VJG_ACL_DENIED', `${method.toUpperCase()} ${shownPath(path)} ${why}`, facts)
  }
  const how = typeof route.aclPath === 'string' ? `with ${mapping} stripped` : `as ${mapping} mapped it`
  return new GuardError('VJG_ACL_DENIED', `${error.message} (the request's path ${shownPath(path)}, ${how})`, facts)
}

function logAt (log: RequestLog | undefined, level: keyof RequestLog, object: Record<string, unknown>, message: string): void {
  if (typeof log?.[level] === 'function') log[level](object, `vonage-jwt-guard: ${message}`)
}

export function createGuard<Request = unknown> (input: GuardOptions<Request>): Guard<Request> {
  const options = normalizeOptions(input)
  // RSA on the thread pool: measured faster for a server under concurrent requests (bench/).
  const { verifier, verifyToken, authorizeVerified, keysLoaded } = createTokenVerifier(options, { signaturesOnPool: true })
  const state = createStateStage(options.state, options)
  const defaultRoute: RouteGuard<Request> = Object.freeze({ optional: false, acl: true, aclPath: options.aclPath, aclPathOption: 'aclPath' })

  function resolveRoute (option: unknown, where: string): RouteGuard<Request> | false {
    if (option === undefined) return defaultRoute
    if (option === false) return false
    if (!isPlainObject(option)) invalidOption(where, 'must be false or { optional?, acl?, aclPath? }')
    for (const key of Object.keys(option)) {
      if (key !== 'optional' && key !== 'acl' && key !== 'aclPath') invalidOption(`${where}.${key}`, 'is not a route option')
    }
    const { optional = false, acl = true } = option
    if (typeof optional !== 'boolean') invalidOption(`${where}.optional`, 'must be true or false')
    if (typeof acl !== 'boolean') invalidOption(`${where}.acl`, 'must be true or false')
    const own = checkAclPath<Request>(option.aclPath, `${where}.aclPath`)
    const aclPath = own ?? options.aclPath
    return Object.freeze({ optional, acl, aclPath, aclPathOption: own === undefined ? 'aclPath' : `${where}.aclPath` })
  }

  function authenticate (input: GuardRequest<Request>, route: RouteGuard<Request> = defaultRoute): Awaitable<AuthResult | null> {
    const trace = decisions.hasSubscribers ? startTrace() : undefined
    let result: Awaitable<AuthResult | null>
    try {
      result = run(input, route, trace)
    } catch (error) {
      throw refused(input, error, trace)
    }
    if (!(result instanceof Promise)) return granted(input, result, trace)
    return result.then(auth => granted(input, auth, trace), (error: unknown) => { throw refused(input, error, trace) })
  }

  // The stages, each once, in the order docs/options.md "Order of checks" gives, each handing on to the next: at once, or once
  // its promise settled when it answered with one (then, and only then, a closure is made).

  /** 1. The canonical path (400), before any token work; 2. the one token (401 missing, 400 ambiguous). */
  function run (input: GuardRequest<Request>, route: RouteGuard<Request>, trace: Trace | undefined): Awaitable<AuthResult | null> {
    if (options.forUpstream) checkForUpstream(input.raw, input.target)
    const path = canonicalPath(input.target)
    if (trace !== undefined) trace.path = path
    const token = tokenOf(options, input)
    if (token instanceof Promise) return token.then(found => withToken(input, route, trace, path, found))
    return withToken(input, route, trace, path, token)
  }

  /** 3. Verify (401: format, header, key, signature, claims; the cache answers for a token seen before). */
  function withToken (input: GuardRequest<Request>, route: RouteGuard<Request>, trace: Trace | undefined, path: string, token: string | undefined): Awaitable<AuthResult | null> {
    if (token === undefined) {
      if (route.optional) return null
      throw new GuardError('VJG_TOKEN_MISSING')
    }
    const verification = verifyToken(token, trace)
    if (verification instanceof Promise) return verification.then(found => withVerified(input, route, trace, path, found))
    return withVerified(input, route, trace, path, verification)
  }

  /** 4. Replay and revocation (401 replayed or revoked, 503), on cache hits too; 5. the ACL (403). */
  function withVerified (input: GuardRequest<Request>, route: RouteGuard<Request>, trace: Trace | undefined, path: string, verification: Verification): Awaitable<AuthResult> {
    if (trace !== undefined) trace.verified = verification.verified
    const failed = state === null ? null : state(verification.verified, input.request)
    if (failed instanceof Promise) {
      return failed.then((settled) => {
        unmade(input, trace, settled)
        return authorized(input, route, path, verification)
      })
    }
    unmade(input, trace, failed)
    return authorized(input, route, path, verification)
  }

  /**
   * Checks that could not be made are named in the decision, then refused with 503, or under
   * `failOpen` skipped and logged at warn.
   */
  function unmade (input: GuardRequest<Request>, trace: Trace | undefined, failed: StateFailure | null): void {
    if (failed === null) return
    if (trace !== undefined) trace.failedChecks = failed.checks
    if (!options.state.failOpen) throw new GuardError('VJG_UNAVAILABLE', 'The replay or revocation check could not be made', { cause: failed.cause })
    logAt(input.log, 'warn', { failedOpen: failed.checks, err: failed.cause }, `the ${failed.checks.join(' and ')} check failed and was skipped (failOpen)`)
  }

  /** The ACL stage and the result, for a verified token. */
  function authorized (input: GuardRequest<Request>, route: RouteGuard<Request>, path: string, verification: Verification): AuthResult {
    let grantedBy: string | null = null
    if (route.acl) {
      const matched = aclPathFor(route, input, path)
      try {
        grantedBy = authorizeVerified(verification, input.method, matched, input.request).grantedBy
      } catch (error) {
        throw matched === path ? error : aclPathDenied(error, route, input.method, path, matched)
      }
    }
    const { verified } = verification
    return { header: verified.header, claims: verified.claims, expiresAt: verified.expiresAt, grantedBy }
  }

  /**
   * Any refusal as the coded GuardError the adapters answer with. A throwing user hook (getToken,
   * aclPath, aclFilter) fails closed as 503, never a 500. So does a developer's mistake only a
   * request can reveal (an aclPath answer that is no path, a route config Fastify showed too
   * late): the client learns nothing of the configuration, the `cause` (a TypeError naming the
   * option) is logged at error.
   */
  function coded (error: unknown): GuardError {
    let refusal: GuardError
    if (error instanceof GuardError) refusal = error
    else if (error instanceof InvalidOptionError) refusal = misconfigured(error)
    else refusal = new GuardError('VJG_UNAVAILABLE', 'A hook of the guard failed', { cause: error })
    return refusal.withRealm(options.realm)
  }

  function granted (input: GuardRequest<Request>, auth: AuthResult | null, trace: Trace | undefined): AuthResult | null {
    if (trace !== undefined) publish(input, 'request', trace, auth, null)
    return auth
  }

  /** One refusal, reported once: logged at info (a configuration mistake at error, naming it), and published. */
  function refused (input: GuardRequest<Request>, error: unknown, trace: Trace | undefined, phase: GuardDecision['phase'] = 'request'): GuardError {
    const refusal = coded(error)
    const mistake = misconfiguration(refusal)
    const fields = { code: refusal.code, statusCode: refusal.statusCode }
    if (mistake !== undefined) logAt(input.log, 'error', { err: mistake, ...fields }, mistake.message)
    else logAt(input.log, 'info', fields, refusal.message)
    if (trace !== undefined) publish(input, phase, trace, null, refusal)
    return refusal
  }

  function publish (input: GuardRequest<Request>, phase: GuardDecision['phase'], trace: Trace, auth: AuthResult | null, error: GuardError | null): void {
    const claims = trace.verified?.claims
    const decision: GuardDecision = {
      phase,
      granted: error === null,
      code: error?.code ?? null,
      statusCode: error?.statusCode ?? null,
      method: input.method,
      path: trace.path,
      applicationId: typeof claims?.application_id === 'string' ? claims.application_id : null,
      sub: typeof claims?.sub === 'string' ? claims.sub : null,
      grantedBy: auth?.grantedBy ?? null,
      duration: performance.now() - trace.started,
      cache: trace.cache,
      failedChecks: trace.failedChecks,
      // A check that could not be made let the request through only under failOpen.
      failedOpen: options.state.failOpen ? trace.failedChecks : NONE_FAILED,
      error
    }
    decisions.publish(decision)
  }

  function refuse (input: GuardRequest<Request>, error: unknown, auth: AuthResult | null = null): GuardError {
    let trace: Trace | undefined
    if (decisions.hasSubscribers) {
      trace = startTrace()
      trace.verified = auth
      if (auth !== null) {
        // A body refusal: the request passed the pipeline, whose path is canonical.
        trace.path = canonicalPath(input.target)
      }
    }
    return refused(input, error, trace, auth === null ? 'request' : 'body')
  }

  function checkPayload (auth: AuthResult | null, input: GuardRequest<Request>, bodyDigest: string | undefined): void {
    if (!options.payloadHash || auth === null) return
    const digest = requestDigest(input.method, input.target, input.raw, bodyDigest)
    try {
      if (digest === undefined) throw new GuardError('VJG_SIGNATURE_INVALID', 'The request body was not read to its end: its "payload_hash" cannot be checked', { check: 'body', claim: 'payload_hash' })
      checkPayloadHash(auth.claims.payload_hash, digest)
    } catch (error) {
      throw refuse(input, error, auth)
    }
  }

  const readiness = guardReadiness(keysLoaded, [options.state.replayStore, options.state.revocationStore], options.state.timeout)
  return Object.freeze({ verifier, options, defaultRoute, resolveRoute, authenticate, checkPayload, refuse, readiness })
}
