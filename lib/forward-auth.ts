/**
 * forward-auth: the service a reverse proxy asks "may this request pass?" (nginx `auth_request`,
 * Caddy `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz` as an HTTP service), as a
 * Fastify plugin. The check request carries the client's headers (so the token) and names the
 * original request; the guard decides on that original method and target exactly as it decides
 * on a request it serves itself. A grant is 200 with the verified identity in
 * `X-Vonage-Application-Id` / `X-Vonage-Sub` (and the `claimHeaders` / `grantedByHeader` the
 * operator named) for the proxy to copy upstream; a refusal is the
 * guard's own answer (status, `WWW-Authenticate`, body) plus `X-Vonage-Guard-Code`. A claim the
 * token lacks is an empty header (so no proxy passes a client's copy or a placeholder instead).
 *
 * Fail closed: a check that does not name exactly one original request (no pair of headers, half
 * a pair, a header given twice or spelled otherwise than with `-`, two pairs that disagree) is
 * never granted, and neither is an original request that carries an identity header of its own
 * or a URL rewrite header in any spelling (edge.ts folds names as PHP reads them), a method
 * override, or as many headers as Node reads (`forUpstream`): the upstream must read nothing the
 * guard did not judge, even behind a proxy configuration that forgets to remove the client's copy.
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { isCanonicalRoutePath } from './canonical-path.js'
import { errorBody, GuardError, invalidOption, problemBody } from './errors.js'
import { withoutRegisterOptions } from './fastify.js'
import { createGuard } from './guard.js'
import { checkHeaderCount, checkOverrideParameter, FoldedNames, FORWARDING_HEADERS, METHOD_OVERRIDE_HEADERS, methodOverrideRefusal, quoteName, URL_REWRITE_HEADERS } from './edge.js'
import { isToken } from './http-token.js'
import { IDENTITY_HEADERS, identityHeaders } from './identity.js'
import { upstreamHeaderValues } from './claim-headers.js'
import { addReadinessCheck } from './readiness.js'
import type { AuthResult, GuardOptions, GuardRequest } from './types.js'

export { IDENTITY_HEADERS, identityHeaders } from './identity.js'
export { foldHeaderName, FORWARDING_HEADERS, HOP_BY_HOP_HEADERS, METHOD_OVERRIDE_HEADERS, methodOverrideParameter, URL_REWRITE_HEADERS } from './edge.js'
export { compileUpstreamHeaders, upstreamHeaderValues } from './claim-headers.js'
export type { UpstreamHeaderTable } from './claim-headers.js'

/** On every refusal: the guard's code, for a proxy that shows its own error page (nginx) to pass on. */
export const CODE_HEADER = 'x-vonage-guard-code'

export interface ForwardAuthOptions extends GuardOptions<FastifyRequest> {
  /**
   * Envoy `ext_authz` with an HTTP service sends the original method and `path_prefix` + the
   * original target as its own request line. Set this to that `path_prefix` (a path such as
   * `/envoy`): check requests under it are read that way, and must not carry the header pairs.
   * Everywhere else the original request is read from the header pairs. @default undefined (off)
   */
  envoyPathPrefix?: string
  /**
   * An unguarded health route in the plugin's context: `GET` and `HEAD` answer 204. 204, not
   * 200, because Envoy grants only on 200: an Envoy sent here by mistake is never granted; and a
   * request carrying the header pairs (a proxy pointed here) is refused. @default undefined (none)
   */
  healthPath?: string
  /**
   * Let the proxy cache a grant (nginx `proxy_cache` on the auth location): a grant then carries
   * `X-Accel-Expires: N` and `Cache-Control: private, max-age=N`, N seconds being at most this,
   * and never past the token's expiry. A refusal is never cached (`no-store`). Refused with
   * `replay`, where every request must be counted; a revocation reaches a cached grant only once
   * it expires. @default undefined (off: every answer `no-store`)
   */
  decisionCacheMax?: number
}

/** The two ways a proxy names the original request: method header and target header. */
const PAIRS = Object.freeze([
  { method: 'x-forwarded-method', target: 'x-forwarded-uri', names: 'X-Forwarded-Method and X-Forwarded-Uri' },
  { method: 'x-original-method', target: 'x-original-uri', names: 'X-Original-Method and X-Original-URI' }
] as const)

/** How forward-auth treats a header of the original request, by folded name. */
type Watch = 'pair' | 'identity' | 'rewrite' | 'forwarding' | 'override'

/** A watched header: its folded name, its spelling, and what it is. */
interface WatchedHeader {
  readonly folded: string
  readonly spelled: string
  readonly watch: Watch
}

/** Watched headers by folded name (edge.ts: only a name that may fold onto one of them is folded). */
type Watched = FoldedNames<WatchedHeader>

/** The headers every check watches: the pairs, identity, URL rewrite, forwarding and method override headers. */
const WATCHED_HEADERS: ReadonlyArray<readonly [string, WatchedHeader]> = ([
  ['x-forwarded-method', 'X-Forwarded-Method', 'pair'],
  ['x-forwarded-uri', 'X-Forwarded-Uri', 'pair'],
  ['x-original-method', 'X-Original-Method', 'pair'],
  ['x-original-uri', 'X-Original-URI', 'pair'],
  ...Object.values(IDENTITY_HEADERS).map(name => [name, name, 'identity'] as const),
  ...Object.entries(URL_REWRITE_HEADERS).map(([name, spelled]) => [name, spelled, 'rewrite'] as const),
  ...FORWARDING_HEADERS.map(name => [name, name, 'forwarding'] as const),
  ...Object.entries(METHOD_OVERRIDE_HEADERS).map(([name, spelled]) => [name, spelled, 'override'] as const)
] as ReadonlyArray<readonly [string, string, Watch]>).map(([name, spelled, watch]) => [name, { folded: name, spelled, watch }] as const)

/** One scan of a check's headers finds them all, the method overrides of `forUpstream` among them. */
const WATCHED: Watched = new FoldedNames(WATCHED_HEADERS)

/** What one scan of a check's headers found: the pair headers by folded name, and the first method override header. */
interface Scanned {
  readonly pairs: Map<string, string>
  override: { readonly name: string, readonly spelled: string } | undefined
}


/** What the check is about: the original request's method and raw request target. */
interface OriginalRequest {
  readonly method: string
  readonly target: string
}

function invalid (message: string): GuardError {
  return new GuardError('VJG_FORWARD_INVALID', message)
}

/**
 * The pair headers of a request, by folded name (edge.ts: every character that is not a letter or
 * a digit read as `-`, case ignored, as PHP, WSGI and Rack read a name), and its first method
 * override header, in one scan. Refused at once: an identity header in any spelling (only the
 * guard sets it); a URL rewrite header in any spelling (the upstream could serve another URL than
 * the one judged); a pair or forwarding header spelled otherwise than with `-` (a proxy never
 * does, a client does, and the upstream could read it as the proxy's own). A method override is
 * refused after the pairs are read (`forUpstream`'s check, made here in the same scan).
 */
function scanHeaders (raw: IncomingMessage, table: Watched): Scanned {
  const scanned: Scanned = { pairs: new Map(), override: undefined }
  const list = raw.rawHeaders
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i] ?? ''
    const watched = table.get(name)
    if (watched === undefined) continue
    const { folded, spelled, watch } = watched
    if (watch === 'override') {
      scanned.override ??= { name, spelled }
      continue
    }
    if (watch === 'identity') {
      throw new GuardError('VJG_IDENTITY_HEADER', `The request carries "${quoteName(name)}": only the guard sets ${spelled}`)
    }
    if (watch === 'rewrite') {
      throw new GuardError('VJG_URL_REWRITE', `The request carries "${quoteName(name)}" (${spelled}): a server behind the proxy could serve another URL than the one the guard judged`)
    }
    if (name.toLowerCase() !== folded) {
      throw invalid(`"${quoteName(name)}" is spelled with characters a proxy never sends: a server behind the proxy would read it as ${spelled}`)
    }
    if (watch === 'forwarding') continue
    if (scanned.pairs.has(folded)) throw invalid(`${spelled} is given 2 times: send it once`)
    scanned.pairs.set(folded, list[i + 1] ?? '')
  }
  return scanned
}

/**
 * The original request a check is about. `envoy` is the one its request line names (Envoy mode),
 * or null when the header pairs must name it.
 * @throws {GuardError} `VJG_IDENTITY_HEADER` or `VJG_FORWARD_INVALID` (400)
 */
function originalRequest (scanned: Scanned, envoy: OriginalRequest | null): OriginalRequest {
  const found = scanned.pairs
  if (envoy !== null) {
    if (found.size > 0) {
      throw invalid('An Envoy check names the original request in its request line: it must not also carry X-Forwarded-Method/-Uri or X-Original-Method/-URI')
    }
    return envoy
  }
  const named: OriginalRequest[] = []
  for (const pair of PAIRS) {
    const method = found.get(pair.method)
    const target = found.get(pair.target)
    if (method === undefined && target === undefined) continue
    if (method === undefined || target === undefined) throw invalid(`The request carries only one of ${pair.names}: send both`)
    named.push({ method, target })
  }
  if (named.length === 0) {
    throw invalid('The request does not say which request to authorize: send X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and X-Original-URI')
  }
  const [first, second] = named as [OriginalRequest, OriginalRequest | undefined]
  if (second !== undefined && (second.method !== first.method || second.target !== first.target)) {
    throw invalid('X-Forwarded-Method/-Uri and X-Original-Method/-URI name different requests')
  }
  if (!isToken(first.method)) throw invalid('The original method is not an HTTP method')
  return first
}

/** `decisionCacheMax`: 0 when off; whole seconds from 1 to 3600; never with replay. */
function decisionCacheSeconds (value: unknown, replay: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 3600) {
    invalidOption('decisionCacheMax', `must be a whole number of seconds from 1 to 3600 (got ${typeof value === 'number' ? value : typeof value})`)
  }
  if (replay !== undefined && replay !== false) {
    invalidOption('decisionCacheMax', 'cannot be combined with replay: every request must reach the guard to be counted, and a cached grant would let a token through again')
  }
  return value
}

/** A path option: canonical, at least one segment, no query. */
function checkPath (value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined
  if (!isCanonicalRoutePath(value)) {
    invalidOption(option, 'must be a canonical path of at least one segment, such as /envoy (no trailing slash, no query)')
  }
  return value
}

// An async plugin with nothing to await: a bad option thrown here rejects register() and ready().
// eslint-disable-next-line @typescript-eslint/require-await
const plugin: FastifyPluginAsync<ForwardAuthOptions> = async (fastify: FastifyInstance, input) => {
  const { envoyPathPrefix: envoyInput, healthPath: healthInput, decisionCacheMax: cacheInput, ...rest } = input
  const guardOptions = withoutRegisterOptions(rest)
  const envoyPathPrefix = checkPath(envoyInput, 'envoyPathPrefix')
  const healthPath = checkPath(healthInput, 'healthPath')
  if (envoyPathPrefix !== undefined && healthPath !== undefined &&
    (healthPath === envoyPathPrefix || healthPath.startsWith(`${envoyPathPrefix}/`))) {
    invalidOption('healthPath', `must not be under envoyPathPrefix (${envoyPathPrefix}): Envoy checks arrive there`)
  }
  // A grant's identity travels in headers: a claim they cannot carry is refused while verifying.
  // Method overrides and the header count limit (`forUpstream`) are refused here, from the scan
  // that reads the pairs: the pipeline does not scan the headers again.
  const guard = createGuard<FastifyRequest>({ ...guardOptions, identityHeaders: true, forUpstream: false })
  if (guard.options.payloadHash) {
    invalidOption('profile', `${String(guardOptions.profile)} signs the request body (payload_hash), which a forward-auth check never carries: guard such requests with the CLI's proxy, or with the plugin or middleware in the app`)
  }
  addReadinessCheck(fastify.server, guard.readiness)
  const decisionCacheMax = decisionCacheSeconds(cacheInput, guardOptions.replay)
  const { errorFormat, upstreamHeaders, now } = guard.options
  // The operator's claim headers are identity headers too: only the guard sets them.
  const watched: Watched = upstreamHeaders.names.length === 0
    ? WATCHED
    : new FoldedNames([...WATCHED_HEADERS, ...upstreamHeaders.names.map(name => [name, { folded: name, spelled: name, watch: 'identity' as const }] as const)])
  const granting: readonly string[] = [...Object.values(IDENTITY_HEADERS), ...upstreamHeaders.names]
  // The check is about another request: its own body (Envoy may send one) is never read.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, _payload, parsed) => { parsed(null) })

  /** A refusal, already logged and published by the guard: its status, challenge and body, and its code. */
  function refusal (request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
    const coded = error as GuardError
    reply.code(coded.statusCode).headers(coded.headers).header(CODE_HEADER, coded.code).header('cache-control', 'no-store')
    if (errorFormat === 'problem') return reply.type('application/problem+json').send(problemBody(coded, request.id))
    return reply.send(errorBody(coded))
  }

  /**
   * A grant: 200 with the identity headers. The verify stage (`identityHeaders: true`) already
   * refused a token whose claims a header cannot carry unchanged.
   */
  function grant (request: FastifyRequest, reply: FastifyReply, input: GuardRequest<FastifyRequest>, auth: AuthResult | null, envoy: boolean): FastifyReply {
    // The default route is never optional: a grant always carries a verified token.
    if (auth === null) return refusal(request, reply, guard.refuse(input, new GuardError('VJG_TOKEN_MISSING')))
    const headers = identityHeaders(auth.claims)
    if (upstreamHeaders.names.length > 0) Object.assign(headers, upstreamHeaderValues(upstreamHeaders, auth.claims, auth.grantedBy))
    const absent = granting.filter(name => !(name in headers))
    if (envoy) {
      // Envoy sets the headers a grant carries; this asks it to remove a client's copy of the others.
      if (absent.length > 0) reply.header('x-envoy-auth-headers-to-remove', absent.join(', '))
    } else {
      // Present and empty, never absent: Caddy before 2.10 copies an absent header as the
      // literal text of its placeholder ("{http.reverse_proxy.header.X-Vonage-Sub}"); nginx
      // and later Caddy send no header for an empty value, Traefik an empty one.
      for (const name of absent) headers[name] = ''
    }
    if (decisionCacheMax === 0) return reply.code(200).header('cache-control', 'no-store').headers(headers).send()
    // Never past the token's expiry (the clock tolerance left out): a proxy serves this grant
    // again without asking, so it must not outlive the token.
    const seconds = Math.min(decisionCacheMax, Math.floor(auth.expiresAt - now() / 1000))
    if (seconds < 1) return reply.code(200).header('cache-control', 'no-store').headers(headers).send()
    // X-Accel-Expires first: nginx 1.22 reads it before Cache-Control, whose "private" it then
    // leaves alone; a shared cache that honours Cache-Control (and not X-Accel-*) stores nothing.
    return reply.code(200).header('x-accel-expires', String(seconds)).header('cache-control', `private, max-age=${seconds}`).headers(headers).send()
  }

  /** One check through the guard's pipeline, on the original request; a promise only when a stage waits. */
  function check (request: FastifyRequest, reply: FastifyReply, envoy: OriginalRequest | null): FastifyReply | Promise<FastifyReply> {
    const own: GuardRequest<FastifyRequest> = { target: request.raw.url ?? '/', method: request.raw.method ?? 'GET', raw: request.raw, request, log: request.log }
    let input: GuardRequest<FastifyRequest>
    let scanned: Scanned
    let auth: ReturnType<typeof guard.authenticate>
    try {
      scanned = scanHeaders(request.raw, watched)
      const original = originalRequest(scanned, envoy)
      input = { ...own, target: original.target, method: original.method }
    } catch (error) {
      // Not a question the guard can answer: reported as the pipeline reports its own refusals.
      return refusal(request, reply, guard.refuse(own, error))
    }
    try {
      // The pipeline's first stage under `forUpstream`, on the original request, from the scan
      // above: the header count (431), then a method override header or `_method` parameter (400).
      checkHeaderCount(request.raw)
      if (scanned.override !== undefined) throw methodOverrideRefusal(scanned.override.name, scanned.override.spelled)
      checkOverrideParameter(input.target)
    } catch (error) {
      return refusal(request, reply, guard.refuse(input, error))
    }
    try {
      auth = guard.authenticate(input)
    } catch (error) {
      return refusal(request, reply, error)
    }
    if (auth instanceof Promise) {
      return auth.then(found => grant(request, reply, input, found, envoy !== null), (error: unknown) => refusal(request, reply, error))
    }
    return grant(request, reply, input, auth, envoy !== null)
  }

  // Each route opts out of a vonage-jwt-guard plugin registered around this one: the check
  // request's own path is not what is authorized.
  const config = { jwtGuard: false as const }
  fastify.all('/', { config }, (request, reply) => check(request, reply, null))
  fastify.all('/*', { config }, (request, reply) => check(request, reply, null))

  if (envoyPathPrefix !== undefined) {
    const start = `${fastify.prefix}${envoyPathPrefix}/`
    fastify.all(`${envoyPathPrefix}/*`, { config }, (request, reply) => {
      const url = request.raw.url ?? ''
      if (!url.startsWith(start)) {
        const own = { target: url, method: request.raw.method ?? 'GET', raw: request.raw, request, log: request.log }
        return refusal(request, reply, guard.refuse(own, invalid(`An Envoy check must start with ${start}`)))
      }
      return check(request, reply, { method: request.raw.method ?? '', target: url.slice(start.length - 1) })
    })
  }

  if (healthPath !== undefined) {
    fastify.get(healthPath, { config }, (request, reply) => {
      try {
        if (scanHeaders(request.raw, watched).pairs.size > 0) throw invalid(`${healthPath} is the health route, not the check: point the proxy at another path`)
      } catch (error) {
        const own = { target: request.raw.url ?? '/', method: request.raw.method ?? 'GET', raw: request.raw, request, log: request.log }
        return refusal(request, reply, guard.refuse(own, error))
      }
      return reply.code(204).header('cache-control', 'no-store').send()
    })
  }
}

/**
 * The forward-auth plugin. Register it where the proxy sends its checks (Fastify's `prefix`
 * works); it answers every method on `/` and `/*` of its context. Not wrapped to share its
 * context: its routes, body parsing and hooks stay its own.
 */
export const forwardAuth = fp(plugin, { name: 'vonage-jwt-guard-forward-auth', fastify: '5.x', encapsulate: true })
export default forwardAuth
