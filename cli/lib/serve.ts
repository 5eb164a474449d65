/**
 * `serve`: a guarded mock API. Every path the token's ACL grants answers, for any method, with a
 * JSON echo of the decision. With no `--public-key` it makes (once) and reuses dev keys in
 * `.vonage-jwt-guard/`, mints a sample token with the Client SDK ACL and prints a curl line.
 */
import { createPublicKey, randomUUID } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { Option, type Command } from 'commander'
import { canonicalPath, type GuardOptions } from 'vonage-jwt-guard'
import { CLIENT_SDK_ACL, mintToken } from 'vonage-jwt-guard/mint'
import { PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, writeKeyPair } from './keygen.js'
import { closeOnSignals, integerFlag, listen, loggerOptions, logLevelFlag, portFlag, readKeyText, repeatable, shellQuote } from './shared.js'

export const DEV_KEYS_DIR = '.vonage-jwt-guard'
/** The path of the printed curl line: granted by the Client SDK ACL's `/*\/users/**`. */
export const SAMPLE_PATH = '/v1/users'

interface ServeFlags {
  port: number
  host: string
  publicKey?: string
  appId?: string[]
  keysDir: string
  ttl: number
  requireAcl: boolean
  logLevel: string
}

interface DevKeys {
  privateKey: string
  publicKey: string
  dir: string
  created: boolean
}

/** The dev key pair in `dir`: made on the first run, reused after, so printed tokens keep working. */
export async function devKeys (dir: string): Promise<DevKeys> {
  const privatePath = resolve(dir, PRIVATE_KEY_FILE)
  const publicPath = resolve(dir, PUBLIC_KEY_FILE)
  if (existsSync(privatePath)) {
    // The public half always comes from the private key, so a lost or stale public.key cannot
    // make the printed token fail.
    const privateKey = readFileSync(privatePath, 'utf8')
    const publicKey = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string
    if (!existsSync(publicPath) || readFileSync(publicPath, 'utf8') !== publicKey) writeFileSync(publicPath, publicKey)
    return { privateKey, publicKey, dir: resolve(dir), created: false }
  }
  const written = await writeKeyPair(dir, true)
  return { privateKey: written.privateKey, publicKey: written.publicKey, dir: resolve(dir), created: true }
}

export function registerServe (program: Command): void {
  program
    .command('serve')
    .description('start a guarded mock API that echoes each granted request (with no key: dev keys and a ready curl line)')
    .addOption(new Option('-p, --port <port>', 'port to listen on (0: any free port)').env('PORT').default(3000).argParser(portFlag))
    .option('--host <host>', 'address to listen on (0.0.0.0 to accept other machines)', '127.0.0.1')
    .option('--public-key <path|pem>', 'verify with this public key instead of dev keys (no sample token is minted)')
    .option('--app-id <id>', 'accept only this application_id (repeat the flag for several)', repeatable)
    .option('--keys-dir <dir>', 'where dev keys are made and reused', DEV_KEYS_DIR)
    .option('--ttl <seconds>', 'lifetime of the sample token', integerFlag(60, 86_400), 86_400)
    .option('--require-acl', 'refuse tokens without an acl claim', false)
    .option('--log-level <level>', 'Fastify log level (fatal, error, warn, info, debug, trace, silent)', logLevelFlag, 'info')
    .action(async (flags: ServeFlags) => {
      let publicKey: string
      let sample: string | null = null
      const lines: string[] = []
      if (flags.publicKey === undefined) {
        const keys = await devKeys(flags.keysDir)
        publicKey = keys.publicKey
        const applicationId = flags.appId?.[0] ?? randomUUID()
        sample = await mintToken({}, keys.privateKey, { applicationId, sub: 'alice', acl: CLIENT_SDK_ACL, ttl: flags.ttl })
        lines.push(`dev keys ${keys.created ? 'created' : 'reused'} in ${keys.dir} (not for production)`)
      } else {
        publicKey = readKeyText(flags.publicKey, '--public-key')
      }

      const options: GuardOptions = { publicKey, requireAcl: flags.requireAcl }
      if (flags.appId !== undefined) options.applicationId = flags.appId
      // The server stack is loaded only by the commands that run a server: keygen, create and
      // verify start fast.
      const [{ default: Fastify }, { default: vonageJwtGuard }] = await Promise.all([import('fastify'), import('vonage-jwt-guard')])
      const app = Fastify({ logger: loggerOptions(flags.logLevel) })
      await app.register(vonageJwtGuard, options)
      app.all('/*', async (request) => ({
        method: request.method,
        // The guard already accepted this target, so it is canonical.
        path: canonicalPath(request.raw.url ?? '/'),
        grantedBy: request.auth?.grantedBy ?? null,
        claims: request.auth?.claims ?? null
      }))

      closeOnSignals(app)
      const base = await listen(app, flags.host, flags.port)
      lines.push(`vonage-jwt-guard serve: a guarded mock API listening on ${base} (Ctrl-C to stop)`)
      if (sample === null) {
        lines.push('make a token with: vonage-jwt-guard create --app-id <id> --private-key private.key --acl \'{"paths":{"/*/users/**":{}}}\'')
      } else {
        lines.push(`a sample token (Client SDK ACL, sub alice, valid ${flags.ttl} s); try:`)
        lines.push('')
        lines.push(`curl -i -H ${shellQuote(`Authorization: Bearer ${sample}`)} ${base}${SAMPLE_PATH}`)
        lines.push('')
      }
      process.stdout.write(`${lines.join('\n')}\n`)
    })
}
