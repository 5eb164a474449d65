/**
 * Where a server's keys come from, said once at start: the `keys:` line above the banner (the
 * key file, the directory and the applications read from it, the JWKS URL, the secrets' ids),
 * and a warning when `--public-keys-dir` holds no key, since every token is then refused.
 * Nothing secret is printed: a key given as PEM text is "inline", a URL loses its credentials
 * and query, a secret shows only its id.
 */
import type { GuardFlags, ResolvedGuard } from './guard-options.js'
import { keyFlagValue } from './key-kind.js'
import { escapeTerminal } from './terminal.js'

/** What a server says about its keys at start: the `keys:` line, and a warning (or null). */
interface KeySourceReport {
  /** One line, or null when the command says it itself (`serve`'s dev keys). */
  readonly line: string | null
  /** For stderr: the key source refuses every token (an empty `--public-keys-dir`), or null. */
  readonly warning: string | null
}

/** A URL as it may be printed: no user, password, query or fragment. */
function urlInLog (value: string): string {
  try {
    const url = new URL(value)
    url.username = ''
    url.password = ''
    url.search = ''
    url.hash = ''
    return url.href
  } catch {
    return '(not a URL)'
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/** The ids of a by-id option (publicKeys, secrets), escaped, for the line. */
function ids (value: unknown): string[] {
  return typeof value === 'object' && value !== null ? Object.keys(value).map(id => escapeTerminal(id)) : []
}

/** The `keys:` line and the start warning for a server on these options. */
export function keySource (guard: ResolvedGuard, flags: Partial<GuardFlags>): KeySourceReport {
  const options = guard.options as Record<string, unknown>
  const from = (name: string): string => {
    const source = guard.sources.get(name)
    return source === undefined || source.startsWith('--') ? '' : ` (from ${escapeTerminal(source)})`
  }
  if (guard.keysDir !== null) {
    const { dir, set } = guard.keysDir
    const applications = Object.keys(set.keys).map(id => escapeTerminal(id))
    const where = escapeTerminal(dir)
    if (applications.length === 0) {
      return {
        line: `keys: directory ${where}, empty: every token is refused (401) until a key is added`,
        warning: `warning: the keys directory ${where} holds no key file (<application_id>.pem or .key): every token is refused (401 VJG_KEY_UNKNOWN) until one is added`
      }
    }
    return { line: `keys: directory ${where}, ${plural(applications.length, 'application')}: ${applications.join(', ')}`, warning: null }
  }
  if (typeof options.jwksUrl === 'string') return { line: `keys: JWKS ${urlInLog(options.jwksUrl)}${from('jwksUrl')}`, warning: null }
  if (options.secrets !== undefined) return { line: `keys: shared secrets for ${ids(options.secrets).join(', ')}${from('secrets')}`, warning: null }
  if (options.publicKeys !== undefined) {
    const applications = ids(options.publicKeys)
    return { line: `keys: publicKeys${from('publicKeys')}, ${plural(applications.length, 'application')}: ${applications.join(', ')}`, warning: null }
  }
  if (flags.publicKey !== undefined) return { line: `keys: --public-key ${flags.publicKey.map(keyFlagValue).join(', ')}`, warning: null }
  if (options.publicKey !== undefined && guard.sources.has('publicKey')) return { line: `keys: publicKey${from('publicKey')}`, warning: null }
  return { line: null, warning: null }
}

/**
 * The message of a `--public-keys-dir` reload: what changed, then what is in use
 * (`keys reloaded: app-two removed, app-one replaced; 1 application in use`), so that a
 * pretty terminal line says it without its fields.
 */
export function reloadMessage (changes: { added: string[], removed: string[], replaced: string[] }, applications: readonly string[]): string {
  const what = (['added', 'removed', 'replaced'] as const)
    .filter(kind => changes[kind].length > 0)
    .map(kind => `${changes[kind].join(', ')} ${kind}`)
  return `vonage-jwt-guard: keys reloaded: ${what.length === 0 ? 'no change' : what.join(', ')}; ${plural(applications.length, 'application')} in use`
}
