/**
 * `claimHeaders` and `grantedByHeader`: verified claims of the operator's choosing, and the ACL
 * pattern that granted the request, as headers for the server behind the guard (forward-auth's
 * grant, the CLI's proxy). The rules are the identity headers' (identity.ts): a claim travels
 * only if a header carries it unchanged, which the verify stage checks (a token that cannot is
 * refused with 401 `VJG_CLAIM_INVALID`, never granted and then refused), and a client's copy of
 * such a header never reaches the upstream in any spelling (forward-auth refuses it, the proxy
 * strips it), compared by folded name (edge.ts).
 */
import { FORWARDING_HEADERS, HOP_BY_HOP_HEADERS, METHOD_OVERRIDE_HEADERS, URL_REWRITE_HEADERS } from './edge.js'
import { GuardError, invalidOption } from './errors.js'
import { HEADER_SAFE, IDENTITY_HEADERS } from './identity.js'

/** One claim to copy: its path in the claims, and the header (lower case) that carries it. */
export interface ClaimHeader {
  /** As configured, to name it in a refusal: `video.role`. */
  readonly claim: string
  readonly path: readonly string[]
  readonly header: string
}

/** The compiled `claimHeaders` and `grantedByHeader`. */
export interface UpstreamHeaderTable {
  readonly claims: readonly ClaimHeader[]
  /** The header of the granting pattern (lower case), or null for none. */
  readonly grantedBy: string | null
  /** Every header name of the table (lower case): a client's copy is refused or stripped. */
  readonly names: readonly string[]
}

const NO_UPSTREAM_HEADERS: UpstreamHeaderTable = Object.freeze({ claims: Object.freeze([]), grantedBy: null, names: Object.freeze([]) })

/**
 * Headers no claim may be copied into, by folded name: what the guard sets itself or strips
 * (identity, forward-auth's pair headers and answer headers, URL rewrites, method overrides,
 * forwarding headers), the hop-by-hop ones, and those that frame or authenticate the request
 * (a claim in Content-Length or Host would be request smuggling in the operator's name).
 */
const RESERVED: ReadonlySet<string> = new Set([
  ...Object.values(IDENTITY_HEADERS), ...Object.keys(URL_REWRITE_HEADERS), ...Object.keys(METHOD_OVERRIDE_HEADERS),
  ...FORWARDING_HEADERS, ...HOP_BY_HOP_HEADERS,
  'x-forwarded-method', 'x-forwarded-uri', 'x-original-method', 'x-original-uri',
  'x-vonage-guard-code', 'x-envoy-auth-headers-to-remove', 'www-authenticate', 'cache-control',
  'expect', 'proxy-authorization', 'authorization', 'cookie', 'set-cookie', 'host',
  'content-length', 'content-type', 'content-encoding'
])

/** A claim path: names of letters, digits, `_`, `$` or `-`, joined by dots. */
const CLAIM_PATH = /^[A-Za-z0-9_$-]+(?:\.[A-Za-z0-9_$-]+)*$/

/** A header name whose every spelling folds onto itself: letters, digits and `-` only. */
const HEADER_NAME = /^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$/

/** Names a header could take that are no claim's own (`__proto__` reads the prototype). */
const NOT_A_CLAIM = new Set(['__proto__', 'constructor', 'prototype'])

function headerName (value: unknown, option: string, taken: Map<string, string>, extra: ReadonlySet<string>): string {
  if (typeof value !== 'string' || !HEADER_NAME.test(value) || value.length > 128) {
    invalidOption(option, 'must be a header name of letters, digits and single dashes (e.g. X-User-Id): another character would be read as a dash by some servers')
  }
  const name = value.toLowerCase()
  if (RESERVED.has(name) || extra.has(name)) invalidOption(option, `names ${value}, a header the guard sets or strips itself, or a hop-by-hop or framing header: choose another name`)
  const other = taken.get(name)
  if (other !== undefined) invalidOption(option, `names ${value}, as ${other} does: one header per value`)
  taken.set(name, option)
  return name
}

/**
 * Validate `claimHeaders` (claim path -> header name) and `grantedByHeader`. `tokenHeaders`:
 * the headers a token is read from, which no claim may replace.
 */
export function compileUpstreamHeaders (claimHeaders: unknown, grantedByHeader: unknown, tokenHeaders: readonly string[]): UpstreamHeaderTable {
  if (claimHeaders === undefined && grantedByHeader === undefined) return NO_UPSTREAM_HEADERS
  const extra = new Set(tokenHeaders.map(name => name.toLowerCase()))
  const taken = new Map<string, string>()
  const claims: ClaimHeader[] = []
  if (claimHeaders !== undefined) {
    if (typeof claimHeaders !== 'object' || claimHeaders === null || Array.isArray(claimHeaders)) {
      invalidOption('claimHeaders', 'must be an object of claim path -> header name, e.g. { "sub": "X-User-Id", "video.role": "X-Role" }')
    }
    for (const [claim, value] of Object.entries(claimHeaders)) {
      const option = `claimHeaders.${claim}`
      if (!CLAIM_PATH.test(claim) || claim.length > 256) invalidOption(option, 'must name a claim: names of letters, digits, _, $ or -, joined by dots (video.role)')
      const path = claim.split('.')
      if (path[0] === 'acl') invalidOption(option, 'names the acl claim, which is an object: name a string or number claim (the granting pattern is grantedByHeader)')
      if (path.some(name => NOT_A_CLAIM.has(name))) invalidOption(option, 'must name a claim of the token')
      claims.push(Object.freeze({ claim, path: Object.freeze(path), header: headerName(value, option, taken, extra) }))
    }
  }
  const grantedBy = grantedByHeader === undefined ? null : headerName(grantedByHeader, 'grantedByHeader', taken, extra)
  return Object.freeze({ claims: Object.freeze(claims), grantedBy, names: Object.freeze([...taken.keys()]) })
}

/** The value at `path`, own properties only; undefined when any step is missing. */
function claimAt (claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = claims
  for (const name of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, name)) return undefined
    value = (value as Record<string, unknown>)[name]
  }
  return value
}

/**
 * The claim headers for verified claims, each whose claim is present.
 * @throws {GuardError} 401 `VJG_CLAIM_INVALID` when a named claim is neither a string of printable
 *   ASCII nor a number.
 */
export function claimHeaderValues (table: UpstreamHeaderTable, claims: Readonly<Record<string, unknown>>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const { claim, path, header } of table.claims) {
    const value = claimAt(claims, path)
    if (value === undefined) continue
    if (typeof value === 'number') {
      headers[header] = String(value)
    } else if (typeof value === 'string' && HEADER_SAFE.test(value)) {
      headers[header] = value
    } else {
      throw new GuardError('VJG_CLAIM_INVALID', `The "${claim}" claim cannot be passed to the upstream: it must be a number, or a string of printable ASCII`)
    }
  }
  return headers
}

/**
 * An ACL pattern as a header value: a space, `%`, a control character or a non-ASCII one
 * percent-encoded (UTF-8), so the value is printable ASCII and decodes back to the pattern.
 */
export function patternHeaderValue (pattern: string): string {
  return pattern.replace(/[^\x21-\x24\x26-\x7e]/gu, ch => [...Buffer.from(ch, 'utf8')].map(byte => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''))
}

/**
 * Every header of the table for a grant: the claims present, and the pattern (empty for a root
 * token or an unchecked ACL). A claim the token lacks is left out: the caller decides how to
 * say so (forward-auth sends it empty, the proxy strips the client's copy).
 */
export function upstreamHeaderValues (table: UpstreamHeaderTable, claims: Readonly<Record<string, unknown>>, grantedBy: string | null): Record<string, string> {
  const headers = table.claims.length === 0 ? {} : claimHeaderValues(table, claims)
  if (table.grantedBy !== null) headers[table.grantedBy] = grantedBy === null ? '' : patternHeaderValue(grantedBy)
  return headers
}
