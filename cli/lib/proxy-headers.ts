/**
 * What `proxy` sends upstream and back, header by header. A request header is compared by its
 * name as the most permissive backend reads it (`foldHeaderName`: every character that is not a
 * letter or a digit read as `-`, case ignored, as PHP, WSGI and Rack do; `X_Vonage_Sub` and
 * `X.Vonage.Sub` are their `HTTP_X_VONAGE_SUB`, the class of Puma's CVE-2024-45614): a header the
 * proxy strips or sets never reaches the upstream in another spelling.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { foldHeaderName, FORWARDING_HEADERS, HOP_BY_HOP_HEADERS, IDENTITY_HEADERS, METHOD_OVERRIDE_HEADERS, URL_REWRITE_HEADERS } from 'vonage-jwt-guard/forward-auth'

/**
 * Besides the hop-by-hop headers (edge.ts, RFC 9110 7.6.1, plus the names Connection lists):
 * `Expect`, as the proxy answers `100-continue` itself (Node sends it before the body is read)
 * and the upstream connection is ours; `Proxy-Authorization`, the client's credential for a
 * proxy, never for the upstream.
 */
const ANSWERED_HERE = Object.freeze(['expect', 'proxy-authorization'])

/**
 * Always removed: URL rewrites (another URL or path prefix than the one judged), method overrides
 * (the guard refuses them before, `forUpstream`; removed here too), the identity (set below from
 * the verified claims), hop-by-hop headers.
 */
const ALWAYS_STRIPPED = new Set<string>([
  ...Object.keys(URL_REWRITE_HEADERS), ...Object.keys(METHOD_OVERRIDE_HEADERS), ...Object.values(IDENTITY_HEADERS),
  ...HOP_BY_HOP_HEADERS, ...ANSWERED_HERE
])
/**
 * The client's address, host and scheme: the proxy sets X-Forwarded-For, -Host and -Proto; all
 * of them pass from a trusted peer (--trust-proxy) in their exact spelling, and are removed from
 * anyone else.
 */
const FORWARDING = new Set<string>(FORWARDING_HEADERS)

/** The names a Connection header lists, folded. */
function connectionNames (value: string | string[] | undefined): Set<string> {
  const list = Array.isArray(value) ? value.join(',') : value ?? ''
  return new Set(list.split(',').map(name => foldHeaderName(name.trim())).filter(name => name !== ''))
}

/** The client side of one forwarded request. */
interface Hop {
  /** The client's own request headers, as Node parsed them (its Host, its Connection). */
  readonly received: IncomingHttpHeaders
  /** The peer's address (IPv4-mapped IPv6 shown as IPv4). */
  readonly peer: string
  /** Whether the peer is a proxy we trust (--trust-proxy): its forwarding headers are kept and extended. */
  readonly trusted: boolean
  /** The verified identity headers (`identityHeaders()` of the claims, and the claim headers). */
  readonly identity: Readonly<Record<string, string>>
  /** The claim headers (`--claim-header`, `--granted-by-header`), folded: a client's copy is removed. */
  readonly stripped?: ReadonlySet<string>
}

function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

/**
 * The headers sent upstream: the client's, minus every spelling of the stripped ones and of the
 * names its Connection lists, minus its forwarding headers unless the peer is trusted; plus
 * X-Forwarded-For (the chain, then the peer), -Host and -Proto, and the verified identity.
 */
export function upstreamHeaders (headers: IncomingHttpHeaders, hop: Hop): IncomingHttpHeaders {
  const listed = connectionNames(hop.received.connection)
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    const folded = foldHeaderName(name)
    if (ALWAYS_STRIPPED.has(folded) || listed.has(folded) || hop.stripped?.has(folded) === true) continue
    // Only the exact spelling of a trusted peer's: `X_Forwarded_For` is nobody's forwarding header.
    if (FORWARDING.has(folded) && !(hop.trusted && name === folded)) continue
    out[name] = value
  }
  const chain = hop.trusted ? single(out['x-forwarded-for']) : undefined
  out['x-forwarded-for'] = chain === undefined || chain.trim() === '' ? hop.peer : `${chain}, ${hop.peer}`
  const host = single(hop.received.host)
  if (out['x-forwarded-host'] === undefined && host !== undefined) out['x-forwarded-host'] = host
  // The proxy listens on plain HTTP: a TLS terminator in front says https through --trust-proxy.
  out['x-forwarded-proto'] ??= 'http'
  return Object.assign(out, hop.identity)
}

/**
 * The upstream's hop-by-hop response headers describe its connection to us, not ours to the
 * client: passed on, `connection: keep-alive` would hold open a connection the client asked to
 * close.
 */
export function downstreamHeaders<Headers extends Record<string, unknown>> (headers: Headers): Headers {
  const out: Record<string, unknown> = { ...headers }
  const listed = typeof out.connection === 'string' ? connectionNames(out.connection) : new Set<string>()
  for (const name of Object.keys(out)) {
    if (HOP_BY_HOP_HEADERS.includes(name) || listed.has(name)) delete out[name]
  }
  return out as Headers
}

/** An address as a person reads it: `::ffff:127.0.0.1` is 127.0.0.1. */
export function plainAddress (address: string | undefined): string {
  if (address === undefined) return 'unknown'
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
