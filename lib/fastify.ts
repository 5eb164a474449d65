/**
 * The Fastify plugin: a thin adapter over the shared pipeline in guard.ts.
 * One `onRequest` hook for every route of the context (unknown routes included, so routes cannot
 * be probed without a token), per-route `config.jwtGuard` validated in `onRoute`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { pipeline } from 'node:stream'
import fp from 'fastify-plugin'
import { GuardError, InvalidOptionError, misconfigured, misconfiguration, problemBody } from './errors.js'
import { createGuard, type AuthResult, type GuardRequest, type RouteGuard, type RouteGuardOption } from './guard.js'
import type { GuardOptions } from './options.js'
import type { VerifiedToken } from './verify.js'
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

const plugin: FastifyPluginAsync<FastifyGuardOptions> = async (fastify: FastifyInstance, input) => {
  // fastify-plugin hands us the options with no extra keys; validation happens here, at register().
  const guard = createGuard(input)
  const options = guard.options
  /** Resolved route settings by their config object; a bad one keeps its TypeError, thrown again. */
  const routes = new WeakMap<object, RouteGuard | false | InvalidOptionError>()

  /** The settings of a route's `config.jwtGuard`, validated once; throws a TypeError naming `where()`. */
  function routeFor (option: RouteGuardOption<FastifyRequest> | undefined, where: () => string): RouteGuard | false {
    if (option === undefined) return guard.defaultRoute
    if (option === false) return false
    // A primitive (a typo such as `jwtGuard: 'off'`) cannot key the map: it is refused every time.
    if (typeof option !== 'object' || option === null) return guard.resolveRoute(option, where())
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

  function guardRequest (request: FastifyRequest): GuardRequest {
    return { target: request.raw.url ?? '', method: request.raw.method ?? 'GET', raw: request.raw, request }
  }

  /** Logs a rejection, then throws it (Fastify's error handler answers) or answers in problem format. */
  async function reject (request: FastifyRequest, reply: FastifyReply, error: unknown): Promise<true> {
    const coded = error as GuardError
    const mistake = misconfiguration(coded)
    if (mistake !== undefined) request.log.error({ err: mistake, code: coded.code, statusCode: coded.statusCode }, `vonage-jwt-guard: ${mistake.message}`)
    else request.log.info({ code: coded.code, statusCode: coded.statusCode }, `vonage-jwt-guard: ${coded.message}`)
    if (options.errorFormat !== 'problem') throw coded
    await reply
      .code(coded.statusCode)
      .headers(coded.headers)
      .type('application/problem+json')
      .send(problemBody(coded, String(request.id)))
    return true
  }

  /** Runs the guard; resolves true when it has answered the request itself (problem format). */
  async function protect (request: FastifyRequest, reply: FastifyReply, route: RouteGuard, input = guardRequest(request)): Promise<boolean> {
    try {
      request.auth = await guard.authenticate(input, route)
      return false
    } catch (error) {
      return reject(request, reply, error)
    }
  }

  // Signed webhooks: the body is hashed as it streams to the app's own parser, and compared with
  // payload_hash in preValidation, once it has been read and before any handler runs.
  const hashers = new WeakMap<FastifyRequest, BodyHasher>()
  const bodyRead = new WeakSet<FastifyRequest>()

  /** The payload_hash check; resolves true when it has answered the request itself. */
  async function checkPayload (request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    try {
      guard.checkPayload(request.auth, guardRequest(request), hashers.get(request)?.digest)
      return false
    } catch (error) {
      return reject(request, reply, error)
    }
  }

  fastify.decorateRequest('auth', null)
  fastify.decorate('jwtGuard', Object.freeze({
    verify: (token: string) => guard.verifier.verify(token),
    authenticate: async (request: FastifyRequest, reply: FastifyReply) => {
      if (await protect(request, reply, guard.defaultRoute)) return reply
      // Used as a hook after the body was read: the payload check cannot wait for preValidation.
      if (bodyRead.has(request) && await checkPayload(request, reply)) return reply
    }
  }))

  // Per-route settings are validated when the route is declared, so a typo fails at startup.
  // onRoute sees only the routes declared once the plugin has run (after `await register()`);
  // Fastify shows a plugin no earlier route's config (printRoutes leaves it out, findRoute hides
  // it), so those are validated on their first request, in the hook below.
  fastify.addHook('onRoute', (routeOptions) => {
    routeFor(routeOptions.config?.jwtGuard, () => `config.jwtGuard of ${String(routeOptions.method)} ${routeOptions.url}`)
  })

  // A callback hook: a cached token is decided without a promise (authenticateSync), anything
  // else goes through protect(). After an answer in problem format, done() is not called.
  fastify.addHook('onRequest', (request, reply, done) => {
    let route: RouteGuard | false
    try {
      route = routeFor(request.routeOptions.config?.jwtGuard, () => `config.jwtGuard of ${String(request.routeOptions.method)} ${request.routeOptions.url ?? ''}`)
    } catch (error) {
      // A route declared before the plugin ran, with a bad config: refused (503) on every
      // request, never let through unguarded, never an anonymous 500; the log names the mistake.
      reject(request, reply, misconfigured(error as InvalidOptionError).withRealm(options.realm)).catch(done)
      return
    }
    if (route === false) return done()
    const input = guardRequest(request)
    let auth: AuthResult | null | undefined
    try {
      auth = guard.authenticateSync(input, route)
    } catch (error) {
      reject(request, reply, error).catch(done)
      return
    }
    if (auth !== undefined) {
      request.auth = auth
      return done()
    }
    // The same input: the canonical path authenticateSync computed is not computed again.
    protect(request, reply, route, input).then((answered) => { if (!answered) done() }, done)
  })

  if (options.payloadHash) {
    fastify.addHook('preParsing', async (request, _reply, payload) => {
      const hasher = new BodyHasher()
      hashers.set(request, hasher)
      // pipeline, not pipe: an aborted request destroys the hasher, and the parser sees the error.
      pipeline(payload, hasher, () => {})
      return hasher
    })
    fastify.addHook('preValidation', async (request, reply) => {
      bodyRead.add(request)
      if (await checkPayload(request, reply)) return reply
    })
  }
}

/** The Fastify plugin (also the package's default export). */
export const vonageJwtGuard = fp(plugin, { name: 'vonage-jwt-guard', fastify: '5.x' })
