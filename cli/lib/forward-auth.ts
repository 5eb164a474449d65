/**
 * `forward-auth`: the service nginx (`auth_request`), Caddy (`forward_auth`), Traefik
 * (`ForwardAuth`) and Envoy (`ext_authz`, HTTP service) ask about each request. It mounts the
 * library's plugin (`vonage-jwt-guard/forward-auth`) at the root, so a proxy may send its checks
 * to any path; `buildForwardAuth()` makes the app, the command runs it.
 */
import type { Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import type { GuardOptions } from 'vonage-jwt-guard'
import { addGuardFlags, addServerFlags, guardOptions, healthPathFlag, loggerOptions, runServer, type GuardFlags, type ServerFlags } from './shared.js'

export interface ForwardAuthConfig {
  guard: GuardOptions
  /** Envoy's `path_prefix`: checks under it carry the original method and target in their request line. */
  envoyPathPrefix?: string
  /** The health route (204), or false. */
  healthPath: string | false
  logLevel: string
}

interface ForwardAuthFlags extends GuardFlags, ServerFlags {
  envoyPathPrefix?: string
}

/** The forward-auth service, ready to listen. */
export async function buildForwardAuth (config: ForwardAuthConfig): Promise<FastifyInstance> {
  const [{ default: Fastify }, { forwardAuth }] = await Promise.all([import('fastify'), import('vonage-jwt-guard/forward-auth')])
  const app = Fastify({ logger: loggerOptions(config.logLevel) })
  await app.register(forwardAuth, {
    ...config.guard,
    ...(config.envoyPathPrefix === undefined ? {} : { envoyPathPrefix: config.envoyPathPrefix }),
    ...(config.healthPath === false ? {} : { healthPath: config.healthPath })
  })
  return app
}

export function registerForwardAuth (program: Command): void {
  const command = program
    .command('forward-auth')
    .description('answer the auth requests of nginx auth_request, Caddy forward_auth, Traefik ForwardAuth and Envoy ext_authz')
    .option('--envoy-path-prefix <path>', 'the path_prefix of Envoy\'s ext_authz http_service: checks under it name the original request in their request line', healthPathFlag)
  addGuardFlags(command)
  addServerFlags(command)
  command.action(async (flags: ForwardAuthFlags) => {
    const config: ForwardAuthConfig = { guard: guardOptions(flags), healthPath: flags.healthPath, logLevel: flags.logLevel }
    if (flags.envoyPathPrefix !== undefined) config.envoyPathPrefix = flags.envoyPathPrefix
    const app = await buildForwardAuth(config)
    const envoy = config.envoyPathPrefix === undefined ? '' : `, Envoy checks under ${config.envoyPathPrefix}/`
    await runServer(app, flags, (base) =>
      `vonage-jwt-guard forward-auth: listening on ${base}, checks on any path${envoy} (Ctrl-C to stop)`)
  })
}
