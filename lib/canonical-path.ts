/**
 * The canonical path: the one view of the request target that the ACL matches and a 403 names
 * (docs/acl.md, "The canonical path"). Authorize exactly what the router and the upstream will receive, so any
 * target that two parsers could read differently is refused (400 `VJG_PATH_INVALID`), never
 * repaired: a repaired path is a path some other component did not see.
 */
import { TextDecoder } from 'node:util'
import { GuardError } from './errors.js'

/** Longest accepted path, query excluded (the query is never matched, so it is not bounded here). */
export const MAX_PATH_LENGTH = 2048
/** Most segments accepted; one trailing slash does not count as a segment. */
export const MAX_SEGMENTS = 64

const SLASH = 0x2f
const DOT = 0x2e
const PERCENT = 0x25

/**
 * The common case in one regex: 1 to 64 segments of RFC 3986 path characters without `%`, none
 * of them `.` or `..`, and an optional trailing slash. Segments are split by `/`, which the class
 * excludes, so the regex cannot backtrack badly. Anything it refuses takes the slow path, which
 * either decodes it or says precisely why not.
 */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[\w\-.~!$&'()*+,=:@]+){1,64}\/?$/

/** RFC 3986 `pchar` minus `%` (handled as an escape) and `/` (the separator). */
const PATH_CHAR = new Uint8Array(128)
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@") {
  PATH_CHAR[c.charCodeAt(0)] = 1
}

/**
 * Why a byte may not be percent-encoded, or `undefined` when it may. An encoded separator, dot,
 * backslash, percent or semicolon is exactly what path-confusion attacks rely on (one parser
 * decodes before splitting, another after); an encoded control character is log and header
 * injection; an encoded unreserved character has two spellings for one path.
 */
const ESCAPE_REFUSAL: ReadonlyArray<string | undefined> = (() => {
  const reasons: Array<string | undefined> = new Array<string | undefined>(256).fill(undefined)
  for (let b = 0; b < 0x20; b++) reasons[b] = 'a control character'
  reasons[0x7f] = 'a control character'
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~') {
    reasons[c.charCodeAt(0)] = 'a character that needs no escaping'
  }
  reasons[SLASH] = '"/"'
  reasons[0x5c] = '"\\"'
  reasons[DOT] = '"."'
  reasons[PERCENT] = '"%" (a double encoding)'
  reasons[0x3b] = '";"'
  return reasons
})()

/**
 * Strict UTF-8: `fatal` refuses overlong forms, surrogates, truncated sequences and code points
 * above U+10FFFF; `ignoreBOM` keeps a leading U+FEFF instead of silently dropping it, since a
 * dropped character is a repair.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** C1 controls (U+0080-U+009F) are control characters too; some decoders read U+0085 as a newline. */
const C1_CONTROL = /[\u0080-\u009f]/
/** After NFKC, a character that became a separator (U+FF0F, U+FF3C and their kin). */
const NFKC_SEPARATOR = /[/\\]/

function invalid (reason: string): GuardError {
  return new GuardError('VJG_PATH_INVALID', reason)
}

/** Names a character without echoing the input: printable ASCII quoted, all else as U+XXXX. */
function describe (codePoint: number): string {
  const hex = `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`
  return codePoint > 0x20 && codePoint < 0x7f ? `"${String.fromCharCode(codePoint)}" (${hex})` : hex
}

function hexValue (code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x41 && code <= 0x46) return code - 0x37
  if (code >= 0x61 && code <= 0x66) return code - 0x57
  return -1
}

/**
 * The canonical, percent-decoded path of a raw HTTP request target (Fastify `request.raw.url`,
 * Express `req.originalUrl`): the query dropped, one trailing slash dropped (the root stays `/`).
 *
 * @throws {GuardError} `VJG_PATH_INVALID` (400) for anything two parsers could read differently.
 */
/**
 * Whether `value` is a canonical path of at least one segment, exactly as `canonicalPath` gives
 * it back (no query, no trailing slash, not `/`): what a route the guard mounts itself may be
 * (forward-auth's `envoyPathPrefix` and `healthPath`, the CLI's `--health-path`).
 */
export function isCanonicalRoutePath (value: unknown): value is string {
  if (typeof value !== 'string' || value === '/' || /[?#]/.test(value)) return false
  try {
    return canonicalPath(value) === value
  } catch {
    return false
  }
}

export function canonicalPath (target: string): string {
  // Only origin-form is authorized: absolute-form (`http://h/p`) and `*` carry no path the ACL
  // could see the same way the router does.
  if (typeof target !== 'string' || target.charCodeAt(0) !== SLASH) {
    throw invalid('the request target is not origin-form: it must start with "/"')
  }
  // `//x` is a network-path reference: URL parsers read `x` as a host.
  if (target.charCodeAt(1) === SLASH) {
    throw invalid('the path starts with "//", which URL parsers read as a host')
  }
  // A client never sends a fragment; parsers disagree on whether `#` ends the path or the
  // query, so it is refused anywhere, the query included.
  if (target.includes('#')) {
    throw invalid('the request target holds "#"')
  }
  const query = target.indexOf('?')
  const path = query === -1 ? target : target.slice(0, query)
  if (path.length > MAX_PATH_LENGTH) {
    throw invalid(`the path is longer than ${MAX_PATH_LENGTH} characters`)
  }
  if (path.length === 1) return '/'
  if (PLAIN_PATH.test(path)) {
    return path.charCodeAt(path.length - 1) === SLASH ? path.slice(0, -1) : path
  }
  return decodePath(path)
}

/** The slow path: `path` starts with `/`, is not the root and holds no `?` or `#`. */
function decodePath (path: string): string {
  const end = path.length
  let canonical = ''
  let segments = 0
  let start = 1
  for (;;) {
    let stop = path.indexOf('/', start)
    if (stop === -1) stop = end
    if (stop === start) {
      if (start === end) break // the one trailing slash, dropped
      throw invalid(`the path has an empty segment at offset ${start}`)
    }
    if (++segments > MAX_SEGMENTS) {
      throw invalid(`the path has more than ${MAX_SEGMENTS} segments`)
    }
    canonical += '/' + decodeSegment(path, start, stop)
    if (stop === end) break
    start = stop + 1
  }
  return canonical === '' ? '/' : canonical
}

function decodeSegment (path: string, start: number, stop: number): string {
  // Raw dot segments: routers and upstreams resolve them differently (or not at all). Encoded
  // dots never get here, they are refused as escapes below.
  if (path.charCodeAt(start) === DOT && (stop - start === 1 || (stop - start === 2 && path.charCodeAt(start + 1) === DOT))) {
    throw invalid(`the path has a "${path.slice(start, stop)}" segment at offset ${start}`)
  }
  let escaped = false
  for (let i = start; i < stop; i++) {
    const code = path.charCodeAt(i)
    if (code === PERCENT) {
      const high = hexValue(path.charCodeAt(i + 1))
      const low = hexValue(path.charCodeAt(i + 2))
      if (high === -1 || low === -1 || i + 2 >= stop) {
        throw invalid(`the path has a malformed percent-escape at offset ${i}`)
      }
      const refusal = ESCAPE_REFUSAL[high * 16 + low]
      if (refusal !== undefined) {
        throw invalid(`the path escape "${path.slice(i, i + 3)}" at offset ${i} encodes ${refusal}`)
      }
      escaped = true
      i += 2
    } else if (code >= 0x80 || PATH_CHAR[code] !== 1) {
      throw invalid(`the path holds ${describe(path.codePointAt(i) ?? code)} at offset ${i}, which is not an RFC 3986 path character`)
    }
  }
  if (!escaped) return path.slice(start, stop)

  // Every character is now ASCII or a checked escape, so the bytes are one pass away.
  const bytes = new Uint8Array(stop - start)
  let length = 0
  let wide = false
  for (let i = start; i < stop; i++) {
    const code = path.charCodeAt(i)
    if (code === PERCENT) {
      const byte = hexValue(path.charCodeAt(i + 1)) * 16 + hexValue(path.charCodeAt(i + 2))
      if (byte >= 0x80) wide = true
      bytes[length++] = byte
      i += 2
    } else {
      bytes[length++] = code
    }
  }
  let decoded: string
  try {
    decoded = utf8.decode(bytes.subarray(0, length))
  } catch (error) {
    throw new GuardError('VJG_PATH_INVALID', `the path segment at offset ${start} is not valid UTF-8 once decoded`, { cause: error })
  }
  if (wide) {
    if (C1_CONTROL.test(decoded)) {
      throw invalid(`the path segment at offset ${start} encodes a control character`)
    }
    // A component that applies Unicode compatibility normalization (NFKC) would read U+FF0E
    // U+FF0E as `..` or U+FF0F as `/`: refuse the segments that would then traverse or split.
    // Such characters elsewhere in a segment stay as they are.
    const folded = decoded.normalize('NFKC')
    if (folded === '.' || folded === '..' || NFKC_SEPARATOR.test(folded)) {
      throw invalid(`the path segment at offset ${start} reads as a dot segment or a separator under Unicode normalization`)
    }
  }
  return decoded
}
