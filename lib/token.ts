/**
 * Compact JWS parsing: split, strict base64url, UTF-8, JSON objects, header checks.
 * Nothing here trusts the content: claims are looked at only after the signature verifies.
 */
import { GuardError } from './errors.js'
import type { JsonObject } from './types.js'

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

/** The value of each base64url character (-1: not one). */
const BASE64URL = new Int8Array(128).fill(-1)
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
for (let i = 0; i < ALPHABET.length; i++) BASE64URL[ALPHABET.charCodeAt(i)] = i

/**
 * Whether `part` is canonical base64url, given how many bytes Node's decoder made of it: exactly
 * what encoding those bytes gives back, so that one byte string has one spelling (otherwise
 * `...Q` and `...R` would be two tokens with one signature). Checked without encoding the bytes
 * again (a string of the part's length each time; this costs about a third of that), from what
 * Node's decoder does with anything else, which test/token-base64url.test.ts compares with the
 * encoding round trip for every character at every position, on every Node version CI runs:
 *
 * - it skips a character outside the alphabet (whitespace, `$`, `=` inside) or stops at `=`, so
 *   fewer bytes come out than `3 * length / 4`; a length of 4n+1 is never canonical;
 * - it reads only the low byte of a character beyond U+00FF (`ŕ` as `U`), and reads `+` and `/`
 *   as `-` and `_`: refused by name, with an ASCII check (a string is ASCII when its UTF-8 length
 *   is its length);
 * - the unused low bits of the last character (4 after two characters of a group, 2 after
 *   three) must be zero.
 */
function canonicalBase64url (part: string, decoded: number): boolean {
  const length = part.length
  const rest = length & 3
  if (rest === 1 || decoded !== Math.floor(length * 3 / 4)) return false
  if (Buffer.byteLength(part, 'utf8') !== length || part.includes('+') || part.includes('/')) return false
  if (rest === 0) return true
  const last = BASE64URL[part.charCodeAt(length - 1)] ?? -1
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0
}

function notCanonical (what: string): GuardError {
  return new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not canonical base64url (A-Z a-z 0-9 - _ only, no padding)`)
}

/**
 * Decode base64url, refusing anything but its canonical form (`canonicalBase64url`): characters
 * outside `A-Z a-z 0-9 - _`, `+` and `/`, `=` padding, a length of 4n+1, and unused low bits of
 * the last character that are not zero.
 */
export function decodeBase64url (part: string, what: string): Buffer {
  const bytes = Buffer.from(part, 'base64url')
  if (!canonicalBase64url(part, bytes.length)) throw notCanonical(what)
  return bytes
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
 * name), in one scan of the text and the walk that freezes the value (verify() hands claims out
 * frozen anyway): true when `text` holds no backslash and no whitespace before a colon, nests at
 * most MAX_JSON_DEPTH levels, and has as many `":` as `value` (what JSON.parse made of it) has
 * keys. False means "look closer", not "refuse".
 *
 * Why that proves no name repeats: without a backslash no string holds a `"`, so every `":` is
 * either the end of a member name (no whitespace may sit between them) or the opening quote of a
 * string that starts with `:`. So the count is at least the number of member names, which is at
 * least the number of keys (JSON.parse keeps one key per repeated name); equal counts leave no
 * room for a repeat.
 */
function plainStructure (text: string, value: JsonObject, freeze: boolean): boolean {
  if (text.includes('\\')) return false
  // Each ':' preceded by '"' (a one-character search is twice as fast as one for '":'). JSON
  // whitespace before a colon hides a member name from this count: the exact scanner reads it.
  let names = 0
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) {
    const before = text.charCodeAt(i - 1)
    if (before === 0x22) names++
    else if (before === 0x20 || before === 0x09 || before === 0x0a || before === 0x0d) return false
  }
  return names === countingKeys(value, 1, freeze)
}

/**
 * Own keys of every object in a JSON value, freezing each object and array on the way when
 * asked to; -1 past MAX_JSON_DEPTH. A for-in walk allocates nothing; it would also list
 * enumerable keys inherited from a polluted `Object.prototype`, which make it answer -1.
 */
function countingKeys (value: object, depth: number, freeze: boolean): number {
  if (depth > MAX_JSON_DEPTH) return -1
  if (freeze) Object.freeze(value)
  let count = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (typeof item !== 'object' || item === null) continue
      const inner = countingKeys(item, depth + 1, freeze)
      if (inner < 0) return inner
      count += inner
    }
    return count
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return -1
    count++
    const item = (value as JsonObject)[key]
    if (typeof item !== 'object' || item === null) continue
    const inner = countingKeys(item, depth + 1, freeze)
    if (inner < 0) return inner
    count += inner
  }
  return count
}

/**
 * Freeze a value out of `decodeJsonObject` deeply (a tree whose depth is already bounded), its
 * top level frozen or not: what a cache shares between requests, no handler may change.
 */
export function deepFreeze (value: unknown): void {
  if (typeof value !== 'object' || value === null) return
  Object.freeze(value)
  for (const key of Object.keys(value)) deepFreeze((value as JsonObject)[key])
}

/**
 * Where a JSON part is decoded: its bytes are only read into a string, which nothing else runs
 * between, so one buffer serves every token (a Buffer per payload
 * costs more: docs/benchmark.md, "Measured choices in the code").
 */
let scratch = Buffer.allocUnsafeSlow(8192)

/**
 * The UTF-8 text of a base64url part, or throw VJG_TOKEN_MALFORMED. ASCII (what tokens nearly
 * always are) is read as latin1, which is the same text without a validating decoder; anything
 * else goes through the fatal decoder, so invalid UTF-8 and a byte order mark are refused.
 */
function decodeText (part: string, what: string): string {
  const most = Math.ceil(part.length * 3 / 4)
  if (most > scratch.length) scratch = Buffer.allocUnsafeSlow(most)
  const decoded = scratch.write(part, 0, 'base64url')
  if (!canonicalBase64url(part, decoded)) throw notCanonical(what)
  const text = scratch.toString('latin1', 0, decoded)
  return Buffer.byteLength(text, 'utf8') === decoded ? text : utf8.decode(scratch.subarray(0, decoded))
}

/**
 * Decode one base64url part as a UTF-8 JSON object (unique member names, bounded depth), or throw
 * VJG_TOKEN_MALFORMED. Frozen deeply, or (`deep` false: a payload, which verify() freezes deeply
 * only when its cache keeps it) only the object itself.
 */
export function decodeJsonObject (part: string, what: string, deep = true): JsonObject {
  let text: string
  let value: unknown
  try {
    text = decodeText(part, what)
    value = JSON.parse(text)
  } catch (error) {
    if (error instanceof GuardError) throw error
    // No cause: V8's JSON.parse message quotes the text around the fault, so a piece of the
    // token would reach the decision event and any log that prints causes.
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not UTF-8 JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} is not a JSON object`)
  }
  if (!plainStructure(text, value as JsonObject, deep)) {
    const problem = jsonStructureProblem(text)
    if (problem !== undefined) throw new GuardError('VJG_TOKEN_MALFORMED', `The token ${what} ${problem}`)
    if (deep) deepFreeze(value)
  }
  return Object.freeze(value as JsonObject)
}

/** The three parts of a compact JWS, before any JSON: what the signature layer needs. */
interface CompactParts {
  readonly header: string
  readonly payload: string
  /** `base64url(header) . base64url(payload)`: the bytes the signature covers. */
  readonly signingInput: string
  readonly signature: Buffer
}

/**
 * Split a compact JWS and decode its signature. RFC 7515 compact serialization has three
 * non-empty parts, so no JWE (five parts) and no JSON serialization; each part is decoded by
 * `decodeBase64url`, which refuses anything but canonical base64url. Throws VJG_TOKEN_MALFORMED
 * on anything but the strict form.
 */
export function splitCompact (token: string, maxLength: number): CompactParts {
  if (token.length > maxLength) {
    throw new GuardError('VJG_TOKEN_MALFORMED', `The token is longer than ${maxLength} characters`)
  }
  const first = token.indexOf('.')
  const second = first > 0 ? token.indexOf('.', first + 1) : -1
  if (second <= first + 1 || second === token.length - 1 || token.includes('.', second + 1)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token is not three base64url parts separated by dots (JWE, JSON serialization and padding are refused)')
  }
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
type TokenParser = (token: string) => ParsedToken

/**
 * A parser for one verifier: tokens at most `maxLength` characters, and the headers it decoded
 * kept by their base64url text (the tokens of one issuer share one header), deeply frozen and
 * shared; the last one is compared before the map (one issuer, one header, one string compare).
 * Payloads are frozen only at their top level: freezing a Client SDK payload's objects is paid
 * (`deepFreeze`) only for a payload a cache will share between requests (its cost: docs/benchmark.md, "Measured choices in the code").
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
    if (part.length <= HEADER_TEXT_MAX) {
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
      payload: decodeJsonObject(parts.payload, 'payload', false),
      signingInput: parts.signingInput,
      signature: parts.signature
    }
  }
}

/**
 * Header rules of docs/options.md "Token format and header": `alg` in the allow-list (never `none`), no `crit`, `typ` JWT when
 * present, `b64` only its default, `kid` a string. `jwk`, `jku`, `x5u`, `x5c` are never read.
 */
export function checkHeader (header: JsonObject, algorithms: ReadonlySet<string>): string {
  const alg = header.alg
  if (typeof alg !== 'string') throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has no "alg"', { claim: 'alg' })
  if (!algorithms.has(alg)) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', `The token algorithm is not accepted here (accepted: ${[...algorithms].join(', ')})`, { claim: 'alg', expected: [...algorithms] })
  }
  if (Object.hasOwn(header, 'crit')) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has "crit": no critical extension is supported', { claim: 'crit' })
  }
  if (Object.hasOwn(header, 'b64') && header.b64 !== true) {
    throw new GuardError('VJG_ALG_NOT_ALLOWED', 'The token header has "b64": unencoded payloads are not supported', { claim: 'b64' })
  }
  const typ = header.typ
  if (typ !== undefined && (typeof typ !== 'string' || typ.toUpperCase() !== 'JWT')) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token header "typ" must be "JWT" when present', { check: 'header', claim: 'typ', expected: 'JWT' })
  }
  const kid = header.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)) {
    throw new GuardError('VJG_TOKEN_MALFORMED', 'The token header "kid" must be a non-empty string of at most 256 characters', { check: 'header', claim: 'kid', limit: 256 })
  }
  return alg
}
