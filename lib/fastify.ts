/**
 * The Fastify plugin: a thin adapter over the shared pipeline in guard.ts.
 * One `onRequest` hook for every route of the context (unknown routes included, so routes cannot
 * be probed without a token), per-route `config.jwtGuard` validated in `onRoute`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { pipeline } from 'node:stream'
import fp from 'fastify-plugin'
import { InvalidOptionError, misconfigured, problemBody, type GuardError } from './errors.js'
import { createGuard, type RouteGuard, type RouteGuardOption } from './guard.js'
import { addReadinessCheck } from './readiness.js'
import type { AuthResult, GuardOptions, GuardRequest, VerifiedToken } from './types.js'
import { BodyHasher } from './webhook.js'

export type FastifyGuardOptions = GuardOptions<FastifyRequest>

/** `fastify.jwtGuard`: the verifier, for use outside the automatic hook. */
export interface JwtGuardDecorator {
  /** Verify a token with this instance's options (no ACL). */
  verify (token: string): Promise<VerifiedToken>
  /** The whole guard as a route-level hook, for routes declared with `config.jwtGuard: false`. */
  authenticate (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined>
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token and the ACL decision; null when the route is unguarded or optional without a token. */
    auth: AuthResult | null
  }
  interface FastifyContextConfig {
    /** `false`: not guarded; `{ optional }`, `{ acl: false }`, `{ aclPath }`: see the README. */
    jwtGuard?: RouteGuardOption<FastifyRequest>
  }
  interface FastifyInstance {
    jwtGuard: JwtGuardDecorator
  }
}

/** Fastify's own register options (`register(plugin, { prefix, logLevel })`), which are not the guard's. */
const REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

/** The guard's options among a plugin's register options. */
export function withoutRegisterOptions<T extends object> (input: T): T {
  return Object.fromEntries(Object.entries(input).filter(([key]) => !REGISTER_OPTIONS.has(key))) as T
}

// async, with nothing to wait for: a bad option then rejects register() and ready() (avvio awaits the promise).
// eslint-disable-next-line @typescript-eslint/require-await
const plugin: FastifyPluginAsync<FastifyGuardOptions> = async (fastify: FastifyInstance, input) => {
  // Validation happens here, at register(); Fastify's own register options are not ours.
  const guard = createGuard<FastifyRequest>(withoutRegisterOptions(input))
  const options = guard.options
  addReadinessCheck(fastify.server, guard.readiness)
  /** Resolved route settings by their config object; a bad one keeps its TypeError, thrown again. */
  const routes = new WeakMap<object, RouteGuard<FastifyRequest> | false | InvalidOptionError>()

  /** The settings of a route's `config.jwtGuard`, validated once; throws a TypeError naming `where()`. */
  function routeFor (option: RouteGuardOption<FastifyRequest> | undefined, where: () => string): RouteGuard<FastifyRequest> | false {
    if (option === undefined) return guard.defaultRoute
    if (option === false) return false
    // A primitive (a typo such as `jwtGuard: 'off'`) cannot key the map: it is refused every time.
    if (typeof option !== 'object') return guard.resolveRoute(option, where())
    let route = routes.get(option)
    if (route === undefined) {
      try {
        route = guard.resolveRoute(option, where())
      } catch (error) {
        if (error instanceof InvalidOptionError) routes.set(option, error)
        throw error
      }
      routes.set(option, route)
    }
    if (route instanceof InvalidOptionError) throw route
    return route
  }

  function guardRequest (request: FastifyRequest): GuardRequest<FastifyRequest> {
    return { target: request.raw.url ?? '', method: request.raw.method ?? 'GET', raw: request.raw, request, log: request.log }
  }

  /** `errorFormat: 'problem'`: the refusal answered here, as RFC 7807 JSON. */
  function sendProblem (request: FastifyRequest, reply: FastifyReply, error: GuardError): FastifyReply {
    return reply
      .code(error.statusCode)
      .headers(error.headers)
      .type('application/problem+json')
      .send(problemBody(error, request.id))
  }

  /** Routes declared with their own `errorHandler`: their refusals go to it. */
  const routeErrorHandlers = new Set<string>()

  /**
   * Answers a refusal (the guard has logged and published it): Fastify's error handler through
   * `done(error)`, or the problem body here (then the hook chain ends without `done`). Fastify's
   * default handler would log it a second time, at info with its stack: when no handler of the
   * user's would see it, the same answer is sent here instead (one line per refusal).
   */
  function answer (request: FastifyRequest, reply: FastifyReply, error: GuardError, done: HookHandlerDoneFunction): void {
    if (options.errorFormat === 'problem') sendProblem(request, reply, error)
    else if (handledByDefault(request)) sendDefault(reply, error)
    else done(error)
  }

  /** Whether Fastify's own default error handler would answer this request's errors. */
  function handledByDefault (request: FastifyRequest): boolean {
    const handler = request.server.errorHandler as { name?: string } | undefined
    return handler?.name === 'defaultErrorHandler' && !routeErrorHandlers.has(`${String(request.routeOptions.method)} ${request.routeOptions.url ?? ''}`)
  }

  /** What Fastify's default handler answers for a refusal: its status, the challenge, `{ statusCode, code, error, message }`. */
  function sendDefault (reply: FastifyReply, error: GuardError): void {
    void reply
      .code(error.statusCode)
      .headers(error.headers)
      .send({ statusCode: error.statusCode, code: error.code, error: error.error, message: error.message })
  }

  /** Runs the pipeline for one request: `request.auth` and `done()`, or the refusal answered. */
  function protect (request: FastifyRequest, reply: FastifyReply, route: RouteGuard<FastifyRequest>, done: HookHandlerDoneFunction): void {
    let auth: ReturnType<typeof guard.authenticate>
    try {
      auth = guard.authenticate(guardRequest(request), route)
    } catch (error) {
      answer(request, reply, error as GuardError, done)
      return
    }
    if (auth instanceof Promise) {
      auth.then((result) => {
        request.auth = result
        done()
      }, (error: unknown) => { answer(request, reply, error as GuardError, done) })
      return
    }
    request.auth = auth
    done()
  }

  // Signed webhooks: the body is hashed as it streams to the app's own parser, and compared with
  // payload_hash in preValidation, once it has been read and before any handler runs.
  const hashers = new WeakMap<FastifyRequest, BodyHasher>()
  const bodyRead = new WeakSet<FastifyRequest>()

  /** The payload_hash check: `done()`, or the refusal answered. */
  function checkPayload (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    try {
      guard.checkPayload(request.auth, guardRequest(request), hashers.get(request)?.digest)
    } catch (error) {
      answer(request, reply, error as GuardError, done)
      return
    }
    done()
  }

  fastify.decorateRequest('auth', null)
  fastify.decorate('jwtGuard', Object.freeze({
    verify: (token: string) => guard.verifier.verify(token),
    // A route-level hook of the user's (async, as Fastify's own route hooks usually are).
    authenticate: async (request: FastifyRequest, reply: FastifyReply) => {
      const input = guardRequest(request)
      try {
        request.auth = await guard.authenticate(input, guard.defaultRoute)
        // Used as a hook after the body was read: the payload check cannot wait for preValidation.
        if (bodyRead.has(request)) guard.checkPayload(request.auth, input, hashers.get(request)?.digest)
      } catch (error) {
        if (options.errorFormat === 'problem') return sendProblem(request, reply, error as GuardError)
        if (!handledByDefault(request)) throw error
        sendDefault(reply, error as GuardError)
        return reply
      }
    }
  }))

  // Per-route settings are validated when the route is declared, so a typo fails at startup.
  // onRoute sees only the routes declared once the plugin has run (after `await register()`);
  // Fastify shows a plugin no earlier route's config (printRoutes leaves it out, findRoute hides
  // it), so those are validated on their first request, in the hook below.
  fastify.addHook('onRoute', (routeOptions) => {
    if (routeOptions.errorHandler !== undefined) {
      for (const method of [routeOptions.method].flat()) routeErrorHandlers.add(`${String(method)} ${routeOptions.url}`)
    }
    routeFor(routeOptions.config?.jwtGuard, () => `config.jwtGuard of ${String(routeOptions.method)} ${routeOptions.url}`)
  })

  // Callback hooks: a request that no stage makes wait (a cached token) is decided without a promise.
  fastify.addHook('onRequest', (request, reply, done) => {
    let route: RouteGuard<FastifyRequest> | false
    try {
      route = routeFor(request.routeOptions.config.jwtGuard, () => `config.jwtGuard of ${String(request.routeOptions.method)} ${request.routeOptions.url ?? ''}`)
    } catch (error) {
      // A route declared before the plugin ran, with a bad config: refused (503) on every
      // request, never let through unguarded, never an anonymous 500; the log names the mistake.
      answer(request, reply, guard.refuse(guardRequest(request), misconfigured(error as InvalidOptionError)), done)
      return
    }
    if (route === false) {
      done()
      return
    }
    protect(request, reply, route, done)
  })

  if (options.payloadHash) {
    fastify.addHook('preParsing', (request, _reply, payload, done) => {
      const hasher = new BodyHasher()
      hashers.set(request, hasher)
      // pipeline, not pipe: an aborted request destroys the hasher, and the parser sees the error.
      pipeline(payload, hasher, () => {})
      done(null, hasher)
    })
    fastify.addHook('preValidation', (request, reply, done) => {
      bodyRead.add(request)
      checkPayload(request, reply, done)
    })
  }
}

/** The Fastify plugin (also the package's default export). */
export const vonageJwtGuard = fp(plugin, { name: 'vonage-jwt-guard', fastify: '5.x' })
