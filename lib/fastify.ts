/**
 * The Fastify plugin: a thin adapter over the shared pipeline in guard.ts.
 * One `onRequest` hook for every route of the context (unknown routes included, so routes cannot
 * be probed without a token), per-route `config.jwtGuard` validated in `onRoute`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GuardError, problemBody } from './errors.js'
import { createGuard, type AuthResult, type RouteGuard, type RouteGuardOption } from './guard.js'
import type { GuardOptions } from './options.js'
import type { VerifiedToken } from './verify.js'

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

  /** Runs the guard; resolves true when it has answered the request itself (problem format). */
  async function protect (request: FastifyRequest, reply: FastifyReply, route: RouteGuard): Promise<boolean> {
    try {
      request.auth = await guard.authenticate({
        target: request.raw.url ?? '',
        method: request.raw.method ?? 'GET',
        raw: request.raw,
        request
      }, route)
      return false
    } catch (error) {
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
  }

  fastify.decorateRequest('auth', null)
  fastify.decorate('jwtGuard', Object.freeze({
    verify: (token: string) => guard.verifier.verify(token),
    authenticate: async (request: FastifyRequest, reply: FastifyReply) => {
      if (await protect(request, reply, guard.defaultRoute)) return reply
    }
  }))

  // Per-route settings are validated when the route is declared, so a typo fails at startup.
  fastify.addHook('onRoute', (routeOptions) => {
    const where = `config.jwtGuard of ${routeOptions.method} ${routeOptions.url}`
    routeFor(routeOptions.config?.jwtGuard, where)
  })

  fastify.addHook('onRequest', async (request, reply) => {
    const route = routeFor(request.routeOptions.config?.jwtGuard, 'config.jwtGuard')
    if (route === false) return
    if (await protect(request, reply, route)) return reply
  })
}

/** The Fastify plugin (also the package's default export). */
export const vonageJwtGuard = fp(plugin, { name: 'vonage-jwt-guard', fastify: '5.x' })
