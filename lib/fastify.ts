/**
 * The Fastify plugin: a thin adapter over the shared pipeline in guard.ts.
 * One `onRequest` hook for every route of the context (unknown routes included, so routes cannot
 * be probed without a token), per-route `config.jwtGuard` validated in `onRoute`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { pipeline } from 'node:stream'
import fp from 'fastify-plugin'
import { GuardError, problemBody } from './errors.js'
import { createGuard, type AuthResult, type RouteGuard, type RouteGuardOption } from './guard.js'
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
  const routes = new WeakMap<object, RouteGuard | false>()

  function routeFor (option: RouteGuardOption<FastifyRequest> | undefined, where: string): RouteGuard | false {
    if (option === undefined) return guard.defaultRoute
    if (option === false) return false
    let route = routes.get(option)
    if (route === undefined) {
      route = guard.resolveRoute(option, where)
      routes.set(option, route)
    }
    return route
  }

  function guardRequest (request: FastifyRequest) {
    return { target: request.raw.url ?? '', method: request.raw.method ?? 'GET', raw: request.raw, request }
  }

  /** Logs a rejection, then throws it (Fastify's error handler answers) or answers in problem format. */
  async function reject (request: FastifyRequest, reply: FastifyReply, error: unknown): Promise<true> {
    const coded = error as GuardError
    request.log.info({ code: coded.code, statusCode: coded.statusCode }, `vonage-jwt-guard: ${coded.message}`)
    if (options.errorFormat !== 'problem') throw coded
    await reply
      .code(coded.statusCode)
      .headers(coded.headers)
      .type('application/problem+json')
      .send(problemBody(coded, String(request.id)))
    return true
  }

  /** Runs the guard; resolves true when it has answered the request itself (problem format). */
  async function protect (request: FastifyRequest, reply: FastifyReply, route: RouteGuard): Promise<boolean> {
    try {
      request.auth = await guard.authenticate(guardRequest(request), route)
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
  fastify.addHook('onRoute', (routeOptions) => {
    const where = `config.jwtGuard of ${routeOptions.method} ${routeOptions.url}`
    routeFor(routeOptions.config?.jwtGuard, where)
  })

  // A callback hook: a cached token is decided without a promise (authenticateSync), anything
  // else goes through protect(). After an answer in problem format, done() is not called.
  fastify.addHook('onRequest', (request, reply, done) => {
    const route = routeFor(request.routeOptions.config?.jwtGuard, 'config.jwtGuard')
    if (route === false) return done()
    let auth: AuthResult | null | undefined
    try {
      auth = guard.authenticateSync(guardRequest(request), route)
    } catch (error) {
      reject(request, reply, error).catch(done)
      return
    }
    if (auth !== undefined) {
      request.auth = auth
      return done()
    }
    protect(request, reply, route).then((answered) => { if (!answered) done() }, done)
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
