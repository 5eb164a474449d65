/**
 * What the commands share: exit codes, flag parsers, reading keys given as a path or as PEM,
 * the Fastify logger setting, and starting / stopping a server the way a terminal user expects.
 */
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { InvalidArgumentError } from 'commander'
import type { FastifyInstance } from 'fastify'

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

/** SIGINT (Ctrl-C) and SIGTERM close the server, then the process ends; a second signal ends it at once. */
export function closeOnSignals (app: FastifyInstance): void {
  let closing = false
  const stop = (signal: NodeJS.Signals): void => {
    if (closing) process.exit(EXIT.FAILED)
    closing = true
    process.stderr.write(`\n${signal}: closing the server\n`)
    // Open keep-alive connections must not keep the process alive for long.
    const force = setTimeout(() => process.exit(EXIT.OK), 5_000)
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
