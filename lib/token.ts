/**
 * Compact JWS parsing: split, strict base64url, UTF-8, JSON objects, header checks.
 * Nothing here trusts the content: claims are looked at only after the signature verifies.
 */
import { GuardError } from './errors.js'

/** RFC 7515 compact serialization with no padding: no JWE (five parts), no JSON serialization. */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** `ignoreBOM: true` keeps a byte order mark so that JSON.parse refuses it, as RFC 8259 asks. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export type JsonObject = Record<string, unknown>

export interface ParsedToken {
  readonly header: JsonObject
  readonly payload: JsonObject
  /** `base64url(header) . base64url(payload)`: the bytes the signature covers. */
  readonly signingInput: string
  readonly signature: Buffer
}

/** 6-bit value of a base64url character (the regex has already vouched for the alphabet). */
function sextet (code: number): number {
  if (code >= 97) return code - 71 // a-z
  if (code >= 65) return code - 65 // A-Z
  if (code >= 48) return code + 4 // 0-9
  return code === 45 ? 62 : 63 // - _
}

/**
 * Decode base64url, refusing non-canonical text: a length of 4n+1 is never valid, and the
 * unused low bits of the last character must be zero, so one byte string has one encoding
 * (otherwise `...Q` and `...R` would be two tokens with one signature).
 */
export function decodeBase64url (part: string, what: string): Buffer {
  const rest = part.length % 4
  if (rest === 1) throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not valid base64url`)
  if (rest !== 0) {
    const last = sextet(part.charCodeAt(part.length - 1))
    if ((rest === 2 && (last & 0x0f) !== 0) || (rest === 3 && (last & 0x03) !== 0)) {
      throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not canonical base64url`)
    }
  }
  return Buffer.from(part, 'base64url')
}

function decodeJsonObject (part: string, what: string): JsonObject {
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(decodeBase64url(part, what)))
  } catch (error) {
    if (error instanceof GuardError) throw error
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not UTF-8 JSON`, { cause: error })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not a JSON object`)
  }
  return value as JsonObject
}

/** Split and decode a compact JWS. Throws VJG_TOKEN_MALFORMED on anything but the strict form. */
export function parseCompact (token: string, maxLength: number): ParsedToken {
  if (token.length > maxLength) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token is longer than ${maxLength} characters`)
  }
  if (!COMPACT.test(token)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token is not three base64url parts separated by dots (JWE, JSON serialization and padding are refused)')
  }
  const first = token.indexOf('.')
  const second = token.indexOf('.', first + 1)
  return {
    header: decodeJsonObject(token.slice(0, first), 'header'),
    payload: decodeJsonObject(token.slice(first + 1, second), 'payload'),
    signingInput: token.slice(0, second),
    signature: decodeBase64url(token.slice(second + 1), 'signature')
  }
}

/**
 * Header rules of SPEC 2.1: `alg` in the allow-list (never `none`), no `crit`, `typ` JWT when
 * present, `b64` only its default, `kid` a string. `jwk`, `jku`, `x5u`, `x5c` are never read.
 */
export function checkHeader (header: JsonObject, algorithms: ReadonlySet<string>): string {
  const alg = header.alg
  if (typeof alg !== 'string') throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has no "alg"')
  if (!algorithms.has(alg)) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', `The token algorithm is not accepted here (accepted: ${[...algorithms].join(', ')})`)
  }
  if (Object.hasOwn(header, 'crit')) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has "crit": no critical extension is supported')
  }
  if (Object.hasOwn(header, 'b64') && header.b64 !== true) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has "b64": unencoded payloads are not supported')
  }
  const typ = header.typ
  if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT')) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token header "typ" must be "JWT" when present')
  }
  const kid = header.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token header "kid" must be a non-empty string of at most 256 characters')
  }
  return alg
}
