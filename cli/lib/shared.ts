/**
 * What the commands share: exit codes, errors, flag parsers, filesystem errors as one line,
 * reading keys given as a path or as PEM without ever printing one. The guard's flags are in
 * guard-options.ts, the servers' in server.ts.
 */
import { readFileSync } from 'node:fs'
import { InvalidArgumentError } from 'commander'

/** Exit codes a script can rely on. */
export const EXIT = Object.freeze({
  /** Done; for `verify`, every check passed. */
  OK: 0,
  /** The command ran and the answer is no: a check failed, a file would be overwritten, a server could not start. */
  FAILED: 1,
  /** The command line is wrong: an unknown flag, a missing or bad value, a key the library refuses. */
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
 * A value a person typed that may be key material (a key flag given a base64 key body, a secret):
 * shown whole when it is short and plain, else its first characters and its length, so that an
 * error never prints a key.
 */
function shortQuote (value: string): string {
  if (value.length <= 48 && /^[\x21-\x7e ]*$/.test(value)) return `"${value}"`
  return `"${value.slice(0, 8).replace(/[^\x21-\x7e]/g, '?')}..." (${value.length} characters)`
}

/** What the errno codes a user meets mean, in words. */
const FS_CAUSES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'it already exists',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files'
}

/** A filesystem error of Node (it has a `syscall` and an errno `code`). */
export function isFsError (error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && typeof (error as NodeJS.ErrnoException).syscall === 'string'
}

/**
 * A filesystem error as one line naming the path and the cause (exit 1, no stack):
 * `cannot write "keys/private.key": a part of the path is a file, not a directory (ENOTDIR)`.
 */
export function fsFailure (error: unknown, action: string, path: string): CommandFailed {
  if (!isFsError(error)) throw error
  const code = error.code ?? 'EIO'
  return new CommandFailed(`cannot ${action} "${path}": ${FS_CAUSES[code] ?? error.message.replace(/^[A-Z]+: /, '')} (${code})`)
}

/** A Node filesystem error that escaped the command's own handling, as `fsFailure` writes it. */
export function describeFsError (error: NodeJS.ErrnoException): string {
  const verb: Record<string, string> = { open: 'open', mkdir: 'create the directory', scandir: 'read the directory', read: 'read', write: 'write', stat: 'read', chmod: 'change the mode of', rename: 'rename', unlink: 'remove', watch: 'watch' }
  return fsFailure(error, verb[error.syscall ?? ''] ?? error.syscall ?? 'use', error.path ?? '?').message
}

/** A file's text, or a CommandFailed naming the path and the cause. */
export function readText (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw fsFailure(error, 'read', path)
  }
}

/**
 * A key flag takes the PEM itself (as `vonage jwt create --private-key` does), a JWK as JSON, or
 * a path to a file holding either. A value that is neither (a base64 key body without its PEM
 * lines, say) is refused without printing it.
 */
export function readKeyText (value: string, flag: string): string {
  if (value.includes('-----BEGIN ') || value.trimStart().startsWith('{')) return value
  const compact = value.replace(/\s+/g, '')
  if (value.length > 255 || (compact.length >= 64 && /^[A-Za-z0-9+/=_-]+$/.test(compact) && !value.includes('/'))) {
    throw new UsageError(`${flag}: ${shortQuote(value)} is neither a PEM key nor a path to one; a base64 key body needs its -----BEGIN ... KEY----- lines: give the PEM file`)
  }
  return readText(value)
}

/** The host a person types into curl: a wildcard address is reached through the loopback. */
export function reachableHost (host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/** A single-quoted shell word: what a person can paste into sh, bash or zsh. */
export function shellQuote (value: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`
}

