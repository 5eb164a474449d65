/**
 * The Fastify plugin: a thin adapter over the shared pipeline in guard.ts.
 * One `onRequest` hook for every route of the context (unknown routes included, so routes cannot
 * be probed without a token), per-route `config.jwtGuard` validated in `onRoute`.
 */
import type { FastifyContextConfig, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
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

/** The symbol Fastify keeps a request's route context under, or null when none holds its `routeOptions.config`. */
function contextKeyOf (request: FastifyRequest): symbol | null {
  const config = request.routeOptions.config
  for (const key of Object.getOwnPropertySymbols(request)) {
    const value = (request as unknown as Record<symbol, unknown>)[key]
    if (key.description === 'fastify.context' && typeof value === 'object' && value !== null && (value as { config?: unknown }).config === config) return key
  }
  return null
}

/** Fastify's own register options (`register(plugin, { prefix, logLevel })`), which are not the guard's. */
const REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

function ignore (): void {}

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

  /**
   * The route's `config`, as `request.routeOptions.config` reads it. `routeOptions` is a getter
   * that builds a twelve-property object (and asks the router for its constraint strategies) on
   * every read: about 0.1 us a request in a hook that reads it (bench/, issue 27). Fastify keeps
   * the route's context, whose `config` that is, under a symbol of its own on the request: found
   * on the first request, by its description and by holding that very `config`; when it is not
   * there (another Fastify), `routeOptions` is read as before.
   */
  let contextKey: symbol | null | undefined
  function routeConfig (request: FastifyRequest): FastifyContextConfig {
    contextKey ??= contextKeyOf(request)
    if (contextKey === null) return request.routeOptions.config
    return (request as unknown as Record<symbol, { config: FastifyContextConfig } | undefined>)[contextKey]?.config ?? request.routeOptions.config
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
   * `done(error)`, or the answer sent here, handed to `sent` (in a hook, the chain then ends
   * without `done`; the `authenticate` decorator resolves with the reply): the problem body, or,
   * when Fastify's default handler would answer, its answer. That handler would log the refusal a
   * second time, at info with its stack: a user's handler still receives it (one line per refusal).
   */
  function answer (request: FastifyRequest, reply: FastifyReply, error: GuardError, done: HookHandlerDoneFunction, sent: (reply: FastifyReply) => void = ignore): void {
    if (options.errorFormat === 'problem') sent(sendProblem(request, reply, error))
    else if (handledByDefault(request)) sent(sendDefault(reply, error))
    else done(error)
  }

  /** Whether Fastify's own default error handler would answer this request's errors. */
  function handledByDefault (request: FastifyRequest): boolean {
    const handler = request.server.errorHandler as { name?: string } | undefined
    return handler?.name === 'defaultErrorHandler' && !routeErrorHandlers.has(`${String(request.routeOptions.method)} ${request.routeOptions.url ?? ''}`)
  }

  /** What Fastify's default handler answers for a refusal: its status, the challenge, `{ statusCode, code, error, message }`. */
  function sendDefault (reply: FastifyReply, error: GuardError): FastifyReply {
    return reply
      .code(error.statusCode)
      .headers(error.headers)
      .send({ statusCode: error.statusCode, code: error.code, error: error.error, message: error.message })
  }

  // Signed webhooks: the body is hashed as it streams to the app's own parser, and compared with
  // payload_hash in preValidation, once it has been read and before any handler runs.
  const hashers = new WeakMap<FastifyRequest, BodyHasher>()
  const bodyRead = new WeakSet<FastifyRequest>()

  /** The payload_hash check (a no-op unless the profile signs the body): `done()`, or the refusal answered. */
  function checkPayload (request: FastifyRequest, reply: FastifyReply, input: GuardRequest<FastifyRequest>, done: HookHandlerDoneFunction, sent?: (reply: FastifyReply) => void): void {
    try {
      guard.checkPayload(request.auth, input, hashers.get(request)?.digest)
    } catch (error) {
      answer(request, reply, error as GuardError, done, sent)
      return
    }
    done()
  }

  /**
   * `request.auth`, then `done()`. Where the body was read already (the `authenticate` decorator
   * as a preValidation or preHandler hook), the payload check cannot wait for preValidation: it
   * is made here, after the token, as preValidation makes it.
   */
  function pass (request: FastifyRequest, reply: FastifyReply, input: GuardRequest<FastifyRequest>, auth: AuthResult | null, done: HookHandlerDoneFunction, sent?: (reply: FastifyReply) => void): void {
    request.auth = auth
    if (options.payloadHash && bodyRead.has(request)) checkPayload(request, reply, input, done, sent)
    else done()
  }

  /**
   * Runs the pipeline for one request: `request.auth` and `done()`, or the refusal answered. The
   * one path of the hook and of the `authenticate` decorator; a cached token is decided without a
   * promise or a closure.
   */
  function protect (request: FastifyRequest, reply: FastifyReply, route: RouteGuard<FastifyRequest>, done: HookHandlerDoneFunction, sent?: (reply: FastifyReply) => void): void {
    const input = guardRequest(request)
    let auth: ReturnType<typeof guard.authenticate>
    try {
      auth = guard.authenticate(input, route)
    } catch (error) {
      answer(request, reply, error as GuardError, done, sent)
      return
    }
    if (auth instanceof Promise) {
      auth.then((result) => { pass(request, reply, input, result, done, sent) }, (error: unknown) => { answer(request, reply, error as GuardError, done, sent) })
      return
    }
    pass(request, reply, input, auth, done, sent)
  }

  fastify.decorateRequest('auth', null)
  fastify.decorate('jwtGuard', Object.freeze({
    verify: (token: string) => guard.verifier.verify(token),
    // A route-level hook of the user's, as Fastify's own route hooks usually are: a promise that
    // settles with the hook's answer (the problem body's reply), through the hook's own path.
    authenticate: (request: FastifyRequest, reply: FastifyReply) => new Promise<FastifyReply | undefined>((resolve, reject) => {
      protect(request, reply, guard.defaultRoute, (error?: Error) => {
        if (error === undefined) resolve(undefined)
        else reject(error)
      }, resolve)
    })
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
      route = routeFor(routeConfig(request).jwtGuard, () => `config.jwtGuard of ${String(request.routeOptions.method)} ${request.routeOptions.url ?? ''}`)
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
      checkPayload(request, reply, guardRequest(request), done)
    })
  }
}

/** The Fastify plugin (also the package's default export). */
export const vonageJwtGuard = fp(plugin, { name: 'vonage-jwt-guard', fastify: '5.x' })
