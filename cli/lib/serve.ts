/**
 * `serve`: a guarded mock API. Every path the token's ACL grants answers, for any method, with a
 * JSON echo of the decision. With no `--public-key` it makes (once) and reuses dev keys in
 * `.vonage-jwt-guard/`, mints a sample token with the Client SDK ACL and prints a curl line.
 */
import cluster from 'node:cluster'
import { createPublicKey, randomUUID } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { canonicalPath, type GuardOptions } from 'vonage-jwt-guard'
import { CLIENT_SDK_ACL, mintToken } from 'vonage-jwt-guard/mint'
import { addGuardFlags, resolveGuard, type GuardFlags } from './guard-options.js'
import { PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, writeKeyPair } from './keygen.js'
import { addRateLimitFlags, parseRateLimit, rateLimitSettings } from './rate-limit.js'
import { addServerFlags, newApp, runServer, type ServerFlags } from './server.js'
import { fsFailure, integerFlag, readText, shellQuote } from './shared.js'

const DEV_KEYS_DIR = '.vonage-jwt-guard'
/** The path of the printed curl line: granted by the Client SDK ACL's `/*\/users/**`. */
export const SAMPLE_PATH = '/v1/users'

export interface ServeFlags extends GuardFlags, ServerFlags {
  keysDir: string
  ttl: number
  rateLimitBy?: 'sub' | 'app'
}

interface DevKeys {
  privateKey: string
  publicKey: string
  dir: string
  created: boolean
}

/** The dev key pair in `dir`: made on the first run, reused after, so printed tokens keep working. */
async function devKeys (dir: string): Promise<DevKeys> {
  const privatePath = resolve(dir, PRIVATE_KEY_FILE)
  const publicPath = resolve(dir, PUBLIC_KEY_FILE)
  if (existsSync(privatePath)) {
    // The public half always comes from the private key, so a lost or stale public.key cannot
    // make the printed token fail.
    const privateKey = readText(privatePath)
    const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string
    if (!existsSync(publicPath) || readText(publicPath) !== publicKey) {
      try {
        writeFileSync(publicPath, publicKey)
      } catch (error) {
        throw fsFailure(error, 'write', publicPath)
      }
    }
    return { privateKey, publicKey, dir: resolve(dir), created: false }
  }
  const written = await writeKeyPair(dir, true)
  return { privateKey: written.privateKey, publicKey: written.publicKey, dir: resolve(dir), created: true }
}

/** The mock API: every granted request answered with a JSON echo of the decision. */
export async function buildServe (guard: GuardOptions, fastify: FastifyServerOptions, healthPath: string | false): Promise<FastifyInstance> {
  const { default: vonageJwtGuard } = await import('vonage-jwt-guard')
  const app = await newApp(fastify)
  await app.register(vonageJwtGuard, guard)
  if (healthPath !== false) app.get(healthPath, { config: { jwtGuard: false } }, async () => ({ status: 'ok' }))
  app.all('/*', async (request) => ({
    method: request.method,
    // The guard already accepted this target, so it is canonical.
    path: canonicalPath(request.raw.url ?? '/'),
    grantedBy: request.auth?.grantedBy ?? null,
    claims: request.auth?.claims ?? null
  }))
  return app
}

/** The flags `serve` and `mock` share: the guard's, the server's, and the dev keys'. */
export function addServeFlags (command: Command): Command {
  command
    .option('--keys-dir <dir>', 'where dev keys are made and reused (when no key is given)', DEV_KEYS_DIR)
    .option('--ttl <seconds>', 'lifetime of the sample token', integerFlag(60, 86_400), 86_400)
  addGuardFlags(command, { state: true })
  addRateLimitFlags(command)
  return addServerFlags(command)
}

interface DevServer {
  /** The command's name and what it is, for the banner: `serve: a guarded mock API`. */
  title: string
  build: (guard: GuardOptions, fastify: FastifyServerOptions) => Promise<FastifyInstance>
  /** The path of the printed curl line. */
  samplePath: string
}

/**
 * Run `serve` or `mock`: with no key, dev keys made once and reused, and a sample token (the
 * Client SDK ACL) in a ready curl line.
 */
export async function runDevServer (flags: ServeFlags, server: DevServer): Promise<void> {
  // A --rate-limit that does not parse is refused before anything starts.
  if (flags.rateLimit !== undefined) parseRateLimit(flags.rateLimit, 'sub')
  let dev: DevKeys | undefined
  const guard = await resolveGuard(flags, {
    state: true,
    // The primary of --workers makes them before forking; each worker reuses them.
    defaultKey: async () => (dev = await devKeys(flags.keysDir)).publicKey
  })
  const lines: string[] = []
  let sample: string | null = null
  if (dev !== undefined && !cluster.isWorker) {
    const ids = guard.options.applicationId
    const applicationId = (Array.isArray(ids) ? ids[0] : ids) ?? randomUUID()
    sample = await mintToken({}, dev.privateKey, { applicationId, sub: 'alice', acl: CLIENT_SDK_ACL, ttl: flags.ttl })
    lines.push(`dev keys ${dev.created ? 'created' : 'reused'} in ${dev.dir} (not for production)`)
  }
  await runServer({
    guard,
    flags,
    rateLimit: rateLimitSettings(flags, guard),
    build: server.build,
    banner: (base) => {
      lines.push(`vonage-jwt-guard ${server.title} listening on ${base} (Ctrl-C to stop)`)
      if (sample === null) {
        // A line that pastes as it is, in a project where the CLI is installed: an accepted
        // application id (a placeholder such as <id> would be read by the shell as a redirect).
        const ids = guard.options.applicationId
        const appId = shellQuote((Array.isArray(ids) ? ids[0] : ids) ?? 'my-app')
        lines.push(`make a token with: npx vonage-jwt-guard create --app-id ${appId} --private-key private.key --acl '{"paths":{"/*/users/**":{}}}'`)
      } else {
        lines.push(`a sample token (Client SDK ACL, sub alice, valid ${flags.ttl} s); try:`)
        lines.push('')
        lines.push(`curl -i -H ${shellQuote(`Authorization: Bearer ${sample}`)} ${base}${server.samplePath}`)
        lines.push('')
      }
      return lines.join('\n')
    }
  })
}

export function registerServe (program: Command): void {
  const command = program
    .command('serve')
    .description('start a guarded mock API that echoes each granted request (with no key: dev keys and a ready curl line)')
  addServeFlags(command)
  command.action(async (flags: ServeFlags) => {
    await runDevServer(flags, {
      title: 'serve: a guarded mock API',
      build: (options, fastify) => buildServe(options, fastify, flags.healthPath),
      samplePath: SAMPLE_PATH
    })
  })
}
