/**
 * `forward-auth`: the service nginx (`auth_request`), Caddy (`forward_auth`), Traefik
 * (`ForwardAuth`) and Envoy (`ext_authz`, HTTP service) ask about each request. It mounts the
 * library's plugin (`vonage-jwt-guard/forward-auth`) at the root, so a proxy may send its checks
 * to any path; `buildForwardAuth()` makes the app, the command runs it.
 */
import type { Command } from 'commander'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { GuardOptions } from 'vonage-jwt-guard'
import { addClaimHeaderFlags } from './claim-headers.js'
import { addGuardFlags, resolveGuard, type GuardFlags } from './guard-options.js'
import { addServerFlags, healthPathFlag, newApp, runServer, type ServerFlags } from './server.js'
import { integerFlag, UsageError } from './shared.js'

interface ForwardAuthConfig {
  guard: GuardOptions
  /** Envoy's `path_prefix`: checks under it carry the original method and target in their request line. */
  envoyPathPrefix?: string
  /** The health route (204), or false. */
  healthPath: string | false
  /** `--decision-cache-max`: grants a proxy may cache, in seconds; undefined: none. */
  decisionCacheMax?: number
  /** Fastify's settings (the logger, the server runner's serverFactory). */
  fastify: FastifyServerOptions
}

interface ForwardAuthFlags extends GuardFlags, ServerFlags {
  envoyPathPrefix?: string
  decisionCacheMax?: number
}

/** The forward-auth service, ready to listen. */
async function buildForwardAuth (config: ForwardAuthConfig): Promise<FastifyInstance> {
  const { forwardAuth } = await import('vonage-jwt-guard/forward-auth')
  const app = await newApp(config.fastify)
  await app.register(forwardAuth, {
    ...config.guard,
    ...(config.envoyPathPrefix === undefined ? {} : { envoyPathPrefix: config.envoyPathPrefix }),
    ...(config.healthPath === false ? {} : { healthPath: config.healthPath }),
    ...(config.decisionCacheMax === undefined ? {} : { decisionCacheMax: config.decisionCacheMax })
  })
  return app
}

export function registerForwardAuth (program: Command): void {
  const command = program
    .command('forward-auth')
    .description('answer the auth requests of nginx auth_request, Caddy forward_auth, Traefik ForwardAuth and Envoy ext_authz')
    .option('--envoy-path-prefix <path>', 'the path_prefix of Envoy\'s ext_authz http_service: checks under it name the original request in their request line', healthPathFlag)
    .option('--decision-cache-max <seconds>', 'let the proxy cache a grant this long at most (X-Accel-Expires, Cache-Control: private, max-age), never past the token\'s exp; not with --replay', integerFlag(1, 3600))
  addGuardFlags(command, { state: true })
  addClaimHeaderFlags(command)
  addServerFlags(command)
  command.action(async (flags: ForwardAuthFlags) => {
    const guard = await resolveGuard(flags, { state: true })
    const replay = guard.options.replay
    if (flags.decisionCacheMax !== undefined && replay !== undefined && replay !== false) {
      await guard.close()
      throw new UsageError(`--decision-cache-max cannot be combined with replay (${guard.sources.get('replay') ?? '--replay'}): every request must reach the guard to be counted`)
    }
    const envoy = flags.envoyPathPrefix === undefined ? '' : `, Envoy checks under ${flags.envoyPathPrefix}/`
    await runServer({
      guard,
      flags,
      build: (options, fastify) => buildForwardAuth({
        guard: options,
        healthPath: flags.healthPath,
        fastify,
        ...(flags.envoyPathPrefix === undefined ? {} : { envoyPathPrefix: flags.envoyPathPrefix }),
        ...(flags.decisionCacheMax === undefined ? {} : { decisionCacheMax: flags.decisionCacheMax })
      }),
      forwardAuth: true,
      banner: (base) => `vonage-jwt-guard forward-auth: listening on ${base}, checks on any path${envoy} (Ctrl-C to stop)`
    })
  })
}
