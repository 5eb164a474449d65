/**
 * Where the token of a request comes from (docs/options.md, `tokenSources` and `getToken`): `Authorization: Bearer` by default, the
 * configured `tokenSources` (headers, a cookie, a query parameter), or the user's `getToken`.
 * Two tokens in one request are 400 `VJG_TOKEN_AMBIGUOUS`; headers are counted from the raw
 * list, since Node's parsed headers keep one of two `Authorization` fields.
 */
import { isTokenChar } from './http-token.js'
import type { IncomingMessage } from 'node:http'
import { isThenable, type Awaitable } from './awaitable.js'
import { GuardError } from './errors.js'
import type { NormalizedOptions, ResolvedTokenSource } from './options.js'
import type { GuardRequest } from './types.js'

/**
 * The value of the header `name` (lower case) from the raw list, undefined when absent. With
 * `unique`, a second field of that name is 400 `VJG_TOKEN_AMBIGUOUS`; without, the last one wins.
 */
function headerValue (raw: IncomingMessage, name: string, unique: boolean): string | undefined {
  const list = raw.rawHeaders
  let count = 0
  let value: string | undefined
  for (let i = 0; i < list.length; i += 2) {
    const field = list[i]
    if (field?.length === name.length && field.toLowerCase() === name) {
      count++
      value = list[i + 1]
    }
  }
  if (unique && count > 1) throw new GuardError('VJG_TOKEN_AMBIGUOUS', `The request has ${count} "${name}" headers: send one`)
  return value
}

/**
 * Whether `value` starts with `scheme` in any letter case (an auth-scheme is case-insensitive,
 * RFC 9110 section 11.1), compared in place: a lower-cased copy of both cost two strings per
 * request. Only A-Z fold, so `^` and `~`, which differ by the case bit, stay apart.
 */
function startsWithScheme (value: string, scheme: string): boolean {
  if (value.length < scheme.length) return false
  for (let i = 0; i < scheme.length; i++) {
    let a = value.charCodeAt(i)
    let b = scheme.charCodeAt(i)
    if (a >= 0x41 && a <= 0x5a) a += 0x20
    if (b >= 0x41 && b <= 0x5a) b += 0x20
    if (a !== b) return false
  }
  return true
}

/**
 * The credentials of `<scheme> <credentials>` (spaces around them allowed), given the index of
 * the first space, or null when the value is not of that form. A hand-written split rather than
 * a regex because it runs on every request and a regex scans the whole token: a credential with
 * other whitespace inside (a tab) is left to the token parser, which refuses it as malformed.
 */
function credentials (value: string, space: number): string | null {
  for (let i = 0; i < space; i++) {
    // RFC 9110 `tchar`: what an auth-scheme is made of.
    if (!isTokenChar(value.charCodeAt(i))) return null
  }
  let start = space + 1
  while (value.charCodeAt(start) === 0x20) start++
  const end = value.indexOf(' ', start)
  if (end === -1) return value.slice(start)
  for (let i = end + 1; i < value.length; i++) if (value.charCodeAt(i) !== 0x20) return null
  return value.slice(start, end)
}

type HeaderSource = Extract<ResolvedTokenSource, { readonly header: string }>

/**
 * The token of a header source, undefined when the header is absent or carries another scheme;
 * or a thrown GuardError. A header carries one token at most, so no list is made for it.
 */
function fromHeader (source: HeaderSource, input: GuardRequest): string | undefined {
  const value = headerValue(input.raw, source.header, true)
  if (value === undefined) return undefined
  if (source.scheme === null) {
    const token = value.trim()
    return token.length === 0 ? undefined : token
  }
  const space = value.indexOf(' ')
  const token = space > 0 ? credentials(value, space) : null
  if (token === null) {
    // "Bearer " with no token reaches a real server as "Bearer": Node's parser trims the space.
    if (value.trim().toLowerCase() === source.scheme.toLowerCase()) {
      throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header has an empty ${source.scheme} token`)
    }
    if (startsWithScheme(value, source.scheme) && value.length > source.scheme.length && value[source.scheme.length] === ' ') {
      throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header is not "${source.scheme} <token>"`)
    }
    return undefined
  }
  // Another scheme (Basic, say) is not our token: the request has no bearer token.
  if (space !== source.scheme.length || !startsWithScheme(value, source.scheme)) return undefined
  if (token.length === 0) throw new GuardError('VJG_TOKEN_MALFORMED', `The "${source.header}" header has an empty ${source.scheme} token`)
  return token
}

/** The tokens of a cookie or query source (none when it is empty): a request may repeat either. */
function fromList (source: Exclude<ResolvedTokenSource, HeaderSource>, input: GuardRequest): string[] {
  if ('cookie' in source) {
    const value = headerValue(input.raw, 'cookie', false)
    const all = input.raw.headers.cookie
    if (value === undefined || all === undefined) return []
    const found: string[] = []
    for (const pair of all.split(/; */)) {
      const eq = pair.indexOf('=')
      if (eq > 0 && pair.slice(0, eq).trim() === source.cookie) found.push(pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'))
    }
    return found.filter(t => t.length > 0)
  }
  const q = input.target.indexOf('?')
  if (q === -1) return []
  const found = new URLSearchParams(input.target.slice(q + 1)).getAll(source.query)
  return found.filter(t => t.length > 0)
}

/** A getToken answer: a non-empty string is the token; undefined, null and '' mean none. */
function gotToken (token: unknown): string | undefined {
  if (token === undefined || token === null || token === '') return undefined
  if (typeof token !== 'string') throw new GuardError('VJG_TOKEN_MALFORMED', 'getToken returned something other than a string')
  return token
}

/**
 * The request's one token, or undefined when it has none: from `getToken` (a promise only when
 * it answers with one), else from the configured sources, of which together at most one may
 * carry a token (400 `VJG_TOKEN_AMBIGUOUS`). Throws a GuardError for a malformed source.
 */
export function tokenOf<Request> (options: Pick<NormalizedOptions<Request>, 'getToken' | 'tokenSources'>, input: GuardRequest<Request>): Awaitable<string | undefined> {
  if (options.getToken !== undefined) {
    const token = options.getToken(input.request)
    return isThenable(token) ? Promise.resolve(token).then(gotToken) : gotToken(token)
  }
  let token: string | undefined
  let count = 0
  for (const source of options.tokenSources) {
    if ('header' in source) {
      const found = fromHeader(source, input)
      if (found === undefined) continue
      count++
      token ??= found
    } else {
      const found = fromList(source, input)
      count += found.length
      token ??= found[0]
    }
  }
  if (count > 1) throw new GuardError('VJG_TOKEN_AMBIGUOUS', 'The request carries more than one token: send exactly one')
  return token
}
