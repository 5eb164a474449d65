/**
 * What the commands share: exit codes, flag parsers, reading keys given as a path or as PEM,
 * the flags of the commands that guard traffic (`proxy`, `forward-auth`) and of the servers, the
 * Fastify logger setting, and starting / stopping a server the way a terminal user expects.
 */
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { FastifyInstance } from 'fastify'
import { canonicalPath, type GuardOptions } from 'vonage-jwt-guard'

/** Exit codes a script can rely on. */
export const EXIT = Object.freeze({
  /** Done; for `verify`, every check passed. */
  OK: 0,
  /** The command ran and the answer is no: a check failed, a file would be overwritten, a server could not start. */
  FAILED: 1,
  /** The command line is wrong: an unknown flag, a missing or bad value, a key that cannot be read. */
  USAGE: 2
})

/** A mistake in the command line or in what it points to: exit 2 with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  readonly exitCode = EXIT.USAGE
}

/** The command ran and failed: exit 1 with the message. */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed'
  readonly exitCode = EXIT.FAILED
}

/**
 * The library's developer-mistake family (a `TypeError` with `code: 'VJG_INVALID_OPTION'`, as
 * its docs promise): a flag gave the guard a value it refuses, which is a usage error here.
 */
export function isInvalidOption (error: unknown): boolean {
  return error instanceof TypeError && (error as { code?: unknown }).code === 'VJG_INVALID_OPTION'
}

/** A commander argument parser for an integer in [min, max]. */
export function integerFlag (min: number, max: number): (value: string) => number {
  return (value: string): number => {
    if (!/^-?[0-9]+$/.test(value)) throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`)
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`Expected an integer from ${min} to ${max}.`)
    return n
  }
}

export const portFlag = integerFlag(0, 65_535)

/** A repeatable flag: each use adds one value (not variadic, which would swallow a following argument). */
export function repeatable (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export function logLevelFlag (value: string): string {
  if (!LOG_LEVELS.includes(value)) throw new InvalidArgumentError(`Expected one of ${LOG_LEVELS.join(', ')}.`)
  return value
}

/**
 * A key flag takes the PEM itself (as `vonage jwt create --private-key` does), a JWK as JSON, or
 * a path to a file holding either.
 */
export function readKeyText (value: string, flag: string): string {
  if (value.includes('-----BEGIN ') || value.trimStart().startsWith('{')) return value
  try {
    return readFileSync(value, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (error as Error).message
    throw new UsageError(`${flag}: cannot read "${value}" (${why}); give a path to a PEM file or the PEM itself`)
  }
}

/** Fastify's logger: pretty lines in a terminal, JSON lines (one per event) for a pipe or a file. */
export function loggerOptions (level: string): { level: string, transport?: { target: string, options: Record<string, unknown> } } {
  if (process.stdout.isTTY === true) {
    return { level, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
  }
  return { level }
}

/** The host a person types into curl: a wildcard address is reached through the loopback. */
export function reachableHost (host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/** Listen, and return the base URL a client can use (the real port when `port` is 0). */
export async function listen (app: FastifyInstance, host: string, port: number): Promise<string> {
  try {
    await app.listen({ host, port })
  } catch (error) {
    await app.close().catch(() => undefined)
    throw new CommandFailed(`cannot listen on ${host}:${port} (${(error as Error).message})`)
  }
  const address = app.server.address() as AddressInfo
  return `http://${reachableHost(host)}:${address.port}`
}

/** The default of `--grace-period`: long enough for a slow request, short of Kubernetes' 30 s. */
export const DEFAULT_GRACE_PERIOD = 10

/**
 * SIGINT (Ctrl-C) and SIGTERM close the server: no new connection is accepted, the requests in
 * flight finish (each answered with `Connection: close`, so an idle keep-alive connection does
 * not hold the exit), then the process exits 0. When they have not finished after
 * `gracePeriod` seconds, or on a second signal, it exits 1 at once. Call before `listen()`.
 */
export function closeOnSignals (app: FastifyInstance, gracePeriod = DEFAULT_GRACE_PERIOD): void {
  let closing = false
  // A callback hook: no promise per request on the hot path.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) process.exit(EXIT.FAILED)
    closing = true
    process.stderr.write(`\n${signal}: closing the server (requests in flight get ${gracePeriod} s to finish)\n`)
    const force = setTimeout(() => {
      process.stderr.write(`the grace period of ${gracePeriod} s is over: requests still in flight are cut\n`)
      process.exit(EXIT.FAILED)
    }, gracePeriod * 1000)
    force.unref()
    app.close().then(() => process.exit(EXIT.OK), () => process.exit(EXIT.FAILED))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

/** A single-quoted shell word: what a person can paste into sh, bash or zsh. */
export function shellQuote (value: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`
}

/**
 * The guard flags of the commands that guard traffic (`proxy`, `forward-auth`): which key, which
 * applications, how the ACL reads the path, how a refusal is written. One place, so that a flag
 * added here reaches both commands; `guardOptions()` turns the parsed flags into guard options.
 */
export interface GuardFlags {
  publicKey?: string
  jwksUrl?: string
  appId?: string[]
  aclPath?: string
  requireAcl: boolean
  errorFormat: 'fastify' | 'problem'
}

export function addGuardFlags (command: Command): Command {
  return command
    .option('--public-key <path|pem>', 'the application public key: a path to public.key, or the PEM itself')
    .option('--jwks-url <url>', 'verify with the keys of a remote JWKS instead (chosen by kid; https, or http on localhost)')
    .option('--app-id <id>', 'accept only this application_id (repeat the flag for several)', repeatable)
    .option('--acl-path <prefix>', 'strip this prefix from the path before the ACL sees it (e.g. /api)')
    .option('--require-acl', 'refuse tokens without an acl claim', false)
    .addOption(new Option('--error-format <format>', 'the body of a refusal: Fastify\'s JSON, or RFC 7807 problem+json').choices(['fastify', 'problem']).default('fastify'))
}

/** The guard options of the parsed guard flags; throws a UsageError for a combination that cannot work. */
export function guardOptions (flags: GuardFlags): GuardOptions {
  if ((flags.publicKey === undefined) === (flags.jwksUrl === undefined)) {
    throw new UsageError('give exactly one of --public-key and --jwks-url')
  }
  const options: GuardOptions = { requireAcl: flags.requireAcl, errorFormat: flags.errorFormat }
  if (flags.publicKey !== undefined) options.publicKey = readKeyText(flags.publicKey, '--public-key')
  if (flags.jwksUrl !== undefined) options.jwksUrl = flags.jwksUrl
  if (flags.appId !== undefined) options.applicationId = flags.appId
  if (flags.aclPath !== undefined) options.aclPath = flags.aclPath
  return options
}

/** The flags of a long-running server: where it listens, its health route, how it stops, its log. */
export interface ServerFlags {
  port: number
  host: string
  /** The unguarded health route, or false for none. */
  healthPath: string | false
  /** Seconds the requests in flight get after SIGTERM. */
  gracePeriod: number
  logLevel: string
}

/** A `--health-path`: a canonical path of at least one segment (a `/` route would shadow the upstream's root). */
export function healthPathFlag (value: string): string {
  let canonical: string | undefined
  try {
    canonical = /[?#]/.test(value) ? undefined : canonicalPath(value)
  } catch {
    canonical = undefined
  }
  if (canonical !== value || value === '/') throw new InvalidArgumentError('Expected a canonical path such as /healthz (no trailing slash, no query, not /).')
  return value
}

export function addServerFlags (command: Command): Command {
  return command
    .addOption(new Option('-p, --port <port>', 'port to listen on (0: any free port)').env('PORT').default(3000).argParser(portFlag))
    .option('--host <host>', 'address to listen on (0.0.0.0 to accept other machines)', '127.0.0.1')
    .option('--health-path <path>', 'the unguarded health route (GET and HEAD)', healthPathFlag, '/healthz')
    .option('--no-health-path', 'no health route: every path is guarded')
    .option('--grace-period <seconds>', 'after SIGTERM, how long requests in flight may take before the process exits', integerFlag(0, 3600), DEFAULT_GRACE_PERIOD)
    .option('--log-level <level>', 'Fastify log level (fatal, error, warn, info, debug, trace, silent)', logLevelFlag, 'info')
}

/**
 * Run a built server until a signal: shutdown on SIGINT/SIGTERM, listen, print `banner(base)`
 * (which ends with "(Ctrl-C to stop)"). What a worker process (--workers) runs, too.
 */
export async function runServer (app: FastifyInstance, flags: ServerFlags, banner: (base: string) => string): Promise<void> {
  closeOnSignals(app, flags.gracePeriod)
  const base = await listen(app, flags.host, flags.port)
  process.stdout.write(`${banner(base)}\n`)
}
