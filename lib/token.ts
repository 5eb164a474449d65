/**
 * Compact JWS parsing: split, strict base64url, UTF-8, JSON objects, header checks.
 * Nothing here trusts the content: claims are looked at only after the signature verifies.
 */
import { GuardError } from './errors.js'
import type { JsonObject } from './types.js'

/** RFC 7515 compact serialization with no padding: no JWE (five parts), no JSON serialization. */
const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** `ignoreBOM: true` keeps a byte order mark so that JSON.parse refuses it, as RFC 8259 asks. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export type { JsonObject } from './types.js'

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

/** Deepest JSON nesting accepted in a header or payload; a Vonage acl needs about five levels. */
export const MAX_JSON_DEPTH = 32

/**
 * What is wrong with the structure of a text that JSON.parse accepted, or undefined.
 *
 * - A member name repeated inside one object: JSON.parse keeps the last duplicate while other
 *   parsers keep the first or refuse, so `{"sub":"alice","sub":"admin"}` would mean two things.
 *   It is refused (RFC 7515 section 5.2 and RFC 7519 section 4 allow exactly that). Names are
 *   compared decoded, so `"\u0073ub"` is `"sub"`.
 * - Nesting deeper than MAX_JSON_DEPTH: claims are frozen and serialized recursively, here and
 *   in user code, and thousands of levels overflow the stack.
 *
 * One linear pass: the text is already known to be valid JSON.
 */
export function jsonStructureProblem (text: string): string | undefined {
  const stack: Array<Set<string> | null> = []
  const length = text.length
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x7b || code === 0x5b) { // { [
      if (stack.length === MAX_JSON_DEPTH) return `nests deeper than ${MAX_JSON_DEPTH} levels`
      stack.push(code === 0x7b ? new Set() : null)
    } else if (code === 0x7d || code === 0x5d) { // } ]
      stack.pop()
    } else if (code === 0x22) { // "
      const start = i
      let escaped = false
      for (i++; i < length; i++) {
        const c = text.charCodeAt(i)
        if (c === 0x5c) {
          escaped = true
          i++
        } else if (c === 0x22) {
          break
        }
      }
      const members = stack[stack.length - 1]
      if (members === null || members === undefined) continue
      let next = i + 1
      while (next < length && (text.charCodeAt(next) === 0x20 || text.charCodeAt(next) === 0x09 || text.charCodeAt(next) === 0x0a || text.charCodeAt(next) === 0x0d)) next++
      if (text.charCodeAt(next) !== 0x3a) continue // a string value, not a member name
      const name = escaped ? JSON.parse(text.slice(start, i + 1)) as string : text.slice(start + 1, i)
      if (members.has(name)) return 'repeats a member name in one JSON object'
      members.add(name)
    }
  }
  return undefined
}

/**
 * The common case of `jsonStructureProblem` without its cost (a Set per object, a slice per
 * name): true when `text` holds no backslash, nests at most MAX_JSON_DEPTH levels, and has as
 * many member names as `value` (what JSON.parse made of it) has keys, so no name was repeated
 * (JSON.parse keeps one property per repeated name). False means "look closer", not "refuse".
 * The walk over `value` also freezes it, as verify() hands claims out frozen anyway.
 */
function plainStructure (text: string, value: unknown): boolean {
  if (text.includes('\\')) return false
  // With no escapes, every quote opens or closes a string.
  let members = 0
  let depth = 0
  const length = text.length
  for (let i = 0; i < length; i++) {
    let code = text.charCodeAt(i)
    if (code === 0x22) { // "
      const close = text.indexOf('"', i + 1)
      if (close === -1) return false
      i = close + 1
      code = text.charCodeAt(i)
      while (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) code = text.charCodeAt(++i)
      if (code === 0x3a) members++ // a member name
      else i-- // the loop looks at this character again
    } else if (code === 0x7b || code === 0x5b) { // { [
      if (++depth > MAX_JSON_DEPTH) return false
    } else if (code === 0x7d || code === 0x5d) { // } ]
      depth--
    }
  }
  return members === freezeCountingKeys(value)
}

/** Own keys of every object in a JSON value, freezing each object and array (depth already bounded). */
function freezeCountingKeys (value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  Object.freeze(value)
  let count = 0
  if (Array.isArray(value)) {
    for (const item of value) count += freezeCountingKeys(item)
    return count
  }
  const keys = Object.keys(value)
  count = keys.length
  for (const key of keys) count += freezeCountingKeys((value as JsonObject)[key])
  return count
}

/** Decode one base64url part as a UTF-8 JSON object (unique member names, bounded depth), or throw VJG_TOKEN_MALFORMED. */
export function decodeJsonObject (part: string, what: string): JsonObject {
  let text: string
  let value: unknown
  try {
    text = utf8.decode(decodeBase64url(part, what))
    value = JSON.parse(text)
  } catch (error) {
    if (error instanceof GuardError) throw error
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not UTF-8 JSON`, { cause: error })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not a JSON object`)
  }
  if (!plainStructure(text, value)) {
    const problem = jsonStructureProblem(text)
    if (problem !== undefined) throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} ${problem}`)
  }
  return value as JsonObject
}

/** The three parts of a compact JWS, before any JSON: what the signature layer needs. */
export interface CompactParts {
  readonly header: string
  readonly payload: string
  /** `base64url(header) . base64url(payload)`: the bytes the signature covers. */
  readonly signingInput: string
  readonly signature: Buffer
}

/** Split a compact JWS and decode its signature. Throws VJG_TOKEN_MALFORMED on anything but the strict form. */
export function splitCompact (token: string, maxLength: number): CompactParts {
  if (token.length > maxLength) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token is longer than ${maxLength} characters`)
  }
  if (!COMPACT.test(token)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token is not three base64url parts separated by dots (JWE, JSON serialization and padding are refused)')
  }
  const first = token.indexOf('.')
  const second = token.indexOf('.', first + 1)
  return {
    header: token.slice(0, first),
    payload: token.slice(first + 1, second),
    signingInput: token.slice(0, second),
    signature: decodeBase64url(token.slice(second + 1), 'signature')
  }
}

const HEADER_CACHE_MAX = 64
/** Longer headers are decoded every time rather than kept. */
const HEADER_TEXT_MAX = 512

/** Splits and decodes a compact JWS; throws VJG_TOKEN_MALFORMED on anything but the strict form. */
export type TokenParser = (token: string) => ParsedToken

/**
 * A parser for one verifier: tokens at most `maxLength` characters, and the headers it decoded
 * kept by their base64url text (the tokens of one issuer share one header), deeply frozen and
 * shared; the last one is compared before the map (one issuer, one header, one string compare).
 */
export function createTokenParser (maxLength: number): TokenParser {
  const headers = new Map<string, JsonObject>()
  let last: { readonly part: string, readonly header: JsonObject } | undefined

  function decodeHeader (part: string): JsonObject {
    if (last !== undefined && last.part === part) return last.header
    const cached = headers.get(part)
    if (cached !== undefined) {
      last = { part, header: cached }
      return cached
    }
    const header = decodeJsonObject(part, 'header')
    if (part.length <= HEADER_TEXT_MAX && Object.isFrozen(header)) {
      if (headers.size >= HEADER_CACHE_MAX) {
        const oldest = headers.keys().next()
        if (oldest.done !== true) headers.delete(oldest.value)
      }
      headers.set(part, header)
    }
    return header
  }

  return (token) => {
    const parts = splitCompact(token, maxLength)
    return {
      header: decodeHeader(parts.header),
      payload: decodeJsonObject(parts.payload, 'payload'),
      signingInput: parts.signingInput,
      signature: parts.signature
    }
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
