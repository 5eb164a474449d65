/**
 * What a server behind the guard may read differently from what the guard judged, for the two
 * places where one does (forward-auth's upstream, the CLI's proxy): header names as the most
 * permissive backend folds them, method overrides, and headers Node dropped unseen. A leaf module:
 * options.ts turns `forUpstream: true` into the request check below, forward-auth and the CLI's
 * proxy use the folding and the tables.
 *
 * Header names: PHP (CGI, FastCGI, its built-in server), WSGI and Rack turn every character of a
 * name that is not a letter or a digit into `_` and ignore case, so `X-Vonage-Sub`,
 * `X_Vonage_Sub`, `X.Vonage.Sub` and `X Vonage Sub` are all `HTTP_X_VONAGE_SUB`. Node and Go accept
 * `_` and `.` in a header name, and Caddy's `php_fastcgi` passes both on (the class of Puma's
 * CVE-2024-45614). A name is compared here as that reading folds it.
 */
import type { IncomingMessage } from 'node:http'
import { GuardError } from './errors.js'

/**
 * A header name as the most permissive backend reads it: lower case, every character that is not
 * a letter or a digit read as `-`. `X.Vonage.Sub` folds onto `x-vonage-sub`.
 */
export function foldHeaderName (name: string): string {
  const lower = name.toLowerCase()
  return /^[a-z0-9-]*$/.test(lower) ? lower : lower.replace(/[^a-z0-9]/g, '-')
}

/** Headers that ask a framework for another method than the request's (Express method-override, Symfony, Laravel, ASP.NET, Google's APIs). */
export const METHOD_OVERRIDE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-http-method-override': 'X-HTTP-Method-Override',
  'x-http-method': 'X-HTTP-Method',
  'x-method-override': 'X-Method-Override'
})

/**
 * Header names by their folded spelling, with a test cheaper than folding for the names that
 * cannot fold onto any of them, so a scan of a request's headers folds only the few that might
 * (eight typical headers: about 650 ns a request all folded). Folding keeps a name's length and
 * maps each ASCII character to one, except `İ` (U+0130), whose lower case is two characters (`i`
 * and a combining dot, folded `i-`), and the Kelvin sign (U+212A), whose lower case is `k`: the
 * only two characters of Unicode whose lower case changes the length or is ASCII. So a name may
 * fold onto one of the table's only when its first character folds onto that name's first, and
 * its length is that name's less at most one per `i-` in it. (A Map: a header named
 * `constructor` is none of them.)
 */
export class FoldedNames<T> {
  readonly #byName: ReadonlyMap<string, T>
  /** The lengths a name may have and still fold onto one of the table's. */
  readonly #lengths = new Set<number>()
  /** The first characters (folded, as char codes) of the table's names. */
  readonly #firsts = new Set<number>()

  constructor (entries: Iterable<readonly [string, T]>) {
    const byName = new Map<string, T>()
    for (const [name, value] of entries) {
      byName.set(name, value)
      const expansions = name.split('i-').length - 1
      for (let k = 0; k <= expansions; k++) this.#lengths.add(name.length - k)
      this.#firsts.add(name.charCodeAt(0))
    }
    this.#byName = byName
  }

  /** What the table holds for the name `name` folds onto, or undefined. */
  get (name: string): T | undefined {
    if (!this.#lengths.has(name.length)) return undefined
    const first = name.charCodeAt(0)
    if (first < 0x80) {
      // An ASCII character folds onto its lower case letter, itself (a digit) or `-`.
      const folded = (first >= 0x41 && first <= 0x5a) ? first | 0x20 : (first >= 0x61 && first <= 0x7a) || (first >= 0x30 && first <= 0x39) ? first : 0x2d
      if (!this.#firsts.has(folded)) return undefined
    }
    return this.#byName.get(foldHeaderName(name))
  }

  get size (): number {
    return this.#byName.size
  }
}

/** The method override headers by folded name. */
const METHOD_OVERRIDES = new FoldedNames(Object.entries(METHOD_OVERRIDE_HEADERS))

/** Headers that ask a server for another URL or path prefix than the request's (IIS and Symfony's X-Original-URL, Zend's X-Rewrite-URL, Spring and ASP.NET's X-Forwarded-Prefix). */
export const URL_REWRITE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-original-url': 'X-Original-URL',
  'x-rewrite-url': 'X-Rewrite-URL',
  'x-forwarded-prefix': 'X-Forwarded-Prefix'
})

/**
 * RFC 9110 7.6.1: they describe one connection, not the message (plus Keep-Alive and
 * Proxy-Connection; a Connection header lists more).
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = Object.freeze(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/**
 * What upstreams read as the client's address, host and scheme. A proxy sets some of them; the
 * CLI's proxy passes them from a trusted peer only, in their exact spelling, and removes them
 * from anyone else; forward-auth refuses them spelled any other way than a proxy spells them.
 */
export const FORWARDING_HEADERS: readonly string[] = Object.freeze([
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'x-forwarded-port',
  'x-forwarded-server', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'client-ip', 'x-cluster-client-ip',
  'x-forwarded-ssl', 'x-forwarded-scheme', 'front-end-https', 'x-url-scheme', 'x-host', 'x-forwarded-path'
])

/**
 * The header lines Node's parser reads when the server sets no `maxHeadersCount` (Fastify and
 * Express set none): 1,000. Measured: Node 20 keeps 1,023 (its parser hands headers over in
 * batches of 32) and drops the rest unseen; Node 22 and 24 answer 431 themselves past 1,000. With
 * a number set, Node 20 keeps that many, rounded up to the batch.
 */
const NODE_DEFAULT_HEADER_LIMIT = 1000

/** A name as sent, safe to quote in a message and a log: printable ASCII, at most 64 characters. */
export function quoteName (name: string): string {
  const printable = name.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > 64 ? `${printable.slice(0, 61)}...` : printable
}

/**
 * The name of a query parameter that asks for another method, as sent, or undefined. Laravel and
 * Symfony read `_method` from the query, Express' method-override does with `methodOverride('_method')`.
 * PHP decodes a parameter name, reads `.` and a space in it as `_`, and cuts it at `[`
 * (`_method[]=`); other frameworks differ in case: a decoded name cut at `[` that folds as a header
 * name does onto `-method` is found, between `&` or `;`.
 */
export function methodOverrideParameter (target: string): string | undefined {
  const start = target.indexOf('?')
  if (start === -1) return undefined
  const query = target.slice(start + 1)
  // Fast path: no parameter name can spell "method" without an "ethod" or a percent-escape.
  if (!/ethod|%/i.test(query)) return undefined
  for (const part of query.split(/[&;]/)) {
    const equals = part.indexOf('=')
    const raw = equals === -1 ? part : part.slice(0, equals)
    let name = raw.replace(/\+/g, ' ')
    try {
      name = decodeURIComponent(name)
    } catch {
      // A name that does not decode is read as it is.
    }
    const bracket = name.indexOf('[')
    if (bracket > 0) name = name.slice(0, bracket)
    if (foldHeaderName(name) === '-method') return raw
  }
  return undefined
}

/** The most header lines the server keeps (Node drops the rest unseen); 0 when unlimited. */
function headerLimit (raw: IncomingMessage): number {
  const server = (raw.socket as { server?: { maxHeadersCount?: unknown } } | null)?.server
  const max = server?.maxHeadersCount
  return typeof max === 'number' ? max : NODE_DEFAULT_HEADER_LIMIT
}

/**
 * 431 `VJG_HEADERS_TOO_MANY` when the request reached the server's header count limit: the guard
 * cannot see what Node dropped (the proxy in front passes it on).
 */
export function checkHeaderCount (raw: IncomingMessage): void {
  const limit = headerLimit(raw)
  if (limit > 0 && raw.rawHeaders.length >= limit * 2) {
    throw new GuardError('VJG_HEADERS_TOO_MANY', `The request has ${limit} header lines or more, the most this server reads: send fewer`)
  }
}

/** 400 `VJG_METHOD_OVERRIDE` for the header `name`, a method override header spelled `spelled`. */
export function methodOverrideRefusal (name: string, spelled: string): GuardError {
  return new GuardError('VJG_METHOD_OVERRIDE', `The request carries "${quoteName(name)}" (${spelled}): a server behind the guard could obey it, and the guard judged the request's own method`)
}

/** 400 `VJG_METHOD_OVERRIDE` when the target's query carries a `_method` parameter. */
export function checkOverrideParameter (target: string): void {
  const parameter = methodOverrideParameter(target)
  if (parameter !== undefined) {
    throw new GuardError('VJG_METHOD_OVERRIDE', `The query carries "${quoteName(parameter)}" (_method): a server behind the guard could obey it, and the guard judged the request's own method`)
  }
}

/**
 * `forUpstream: true`, before any token work: refuse a request a server behind the guard could
 * read as another one than the guard judges. (forward-auth makes the same checks in its own scan
 * of the headers, which it makes anyway.)
 * @throws {GuardError} 431 `VJG_HEADERS_TOO_MANY` when the request reached the server's header
 *   count limit (the guard cannot see what Node dropped; the proxy in front passes it on);
 *   400 `VJG_METHOD_OVERRIDE` for a method override header in any spelling, or a `_method`
 *   query parameter.
 */
export function checkForUpstream (raw: IncomingMessage, target: string): void {
  checkHeaderCount(raw)
  const list = raw.rawHeaders
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] ?? ''
    const spelled = METHOD_OVERRIDES.get(name)
    if (spelled !== undefined) throw methodOverrideRefusal(name, spelled)
  }
  checkOverrideParameter(target)
}
