/**
 * `proxy`: the guard in front of a real upstream, through `@fastify/http-proxy`. Only requests
 * the guard passes are forwarded; the path and query go up byte for byte; no header the proxy
 * strips or sets reaches the upstream in any spelling (proxy-headers.ts); the verified identity
 * goes up in `X-Vonage-Application-Id` / `X-Vonage-Sub`. An upstream that fails is 502, one that
 * is too slow 504, in the guard's error shape. `buildProxy()` makes the app; the command runs it.
 */
import { channel } from 'node:diagnostics_channel'
import type { Command } from 'commander'
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify'
import type { GuardOptions } from 'vonage-jwt-guard'
import { addClaimHeaderFlags } from './claim-headers.js'
import { addRateLimitFlags, parseRateLimit, rateLimitSettings } from './rate-limit.js'
import { addGuardFlags, resolveGuard, type GuardFlags } from './guard-options.js'
import { UPSTREAM_ERROR_CHANNEL } from './metrics.js'
import { addServerFlags, newApp, runServer, type ServerFlags } from './server.js'
import { integerFlag, UsageError } from './shared.js'
import { downstreamHeaders, plainAddress, upstreamHeaders } from './proxy-headers.js'
import { upstreamError, upstreamErrorBody } from './upstream-errors.js'

const upstreamErrors = channel(UPSTREAM_ERROR_CHANNEL)

/** Seconds to wait for the upstream's response head, and between two pieces of its body (nginx's proxy_read_timeout). */
const DEFAULT_UPSTREAM_TIMEOUT = 60

interface ProxyConfig {
  /** The upstream origin with an optional path, no trailing slash. */
  upstream: string
  guard: GuardOptions
  /** Seconds; see DEFAULT_UPSTREAM_TIMEOUT. */
  upstreamTimeout: number
  /** `--trust-proxy` compiled: the proxies in front of us whose forwarding headers are kept; null: none. */
  trustProxy: TrustProxy | null
  /** The unguarded health route, or false. */
  healthPath: string | false
  /** Fastify's settings (the logger, the server runner's serverFactory). */
  fastify: FastifyServerOptions
}

interface ProxyFlags extends GuardFlags, ServerFlags {
  upstream: string
  upstreamTimeout: number
  trustProxy?: string[]
  rateLimitBy?: 'sub' | 'app'
}

function upstreamFlag (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--upstream: "${value}" is not a URL (e.g. http://127.0.0.1:8080)`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--upstream must be an http: or https: URL')
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new UsageError('--upstream must be an origin with an optional path: no query, fragment or credentials')
  }
  return url.href.replace(/\/$/, '')
}

/** Each use adds addresses, comma-separated: IPs, CIDR ranges, or loopback / linklocal / uniquelocal. */
function trustProxyFlag (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map(item => item.trim()).filter(item => item !== '')]
}

/** A compiled `--trust-proxy` list: whether the hop at `address` is trusted (proxy-addr's own signature). */
type TrustProxy = (address: string, hop: number) => boolean

/**
 * `--trust-proxy` compiled once (proxy-addr, as Fastify's and Express' trustProxy): null when no
 * proxy is trusted. Fastify takes the same function for `request.ip`. A bad entry is a UsageError.
 */
async function trustFunction (list: string[]): Promise<TrustProxy | null> {
  if (list.length === 0) return null
  const { default: proxyAddr } = await import('@fastify/proxy-addr')
  try {
    return proxyAddr.compile(list)
  } catch (error) {
    throw new UsageError(`--trust-proxy: ${(error as Error).message} (give IP addresses, CIDR ranges, or loopback, linklocal, uniquelocal)`)
  }
}

/** Whether these Fastify settings log every request (`--log-requests`). */
function logsRequests (fastify: FastifyServerOptions): boolean {
  const controller = fastify.logController as { disableRequestLogging?: unknown } | undefined
  if (controller === undefined) return fastify.disableRequestLogging !== true
  return controller.disableRequestLogging === false
}

/** The messages @fastify/reply-from logs at warn, with a stack, for an upstream error that onError logs again. */
const REPLY_FROM_ERROR_LINES = new Set(['response errored', 'response has invalid status code'])

/**
 * The logger settings without @fastify/reply-from's own line for an upstream error: onError
 * logs each one once, at error, without a stack (docs/cli.md, Logs). A pino hook, since
 * reply-from has no option for it. A logger instance, or none, is left as it is.
 */
function withoutReplyFromErrorLines (logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (typeof logger !== 'object' || logger === null || typeof (logger as { info?: unknown }).info === 'function') return logger
  return {
    ...logger,
    hooks: {
      logMethod (args: unknown[], method: (...args: unknown[]) => void, level: number) {
        if (level === 40 && typeof args[1] === 'string' && REPLY_FROM_ERROR_LINES.has(args[1])) return
        method.apply(this, args)
      }
    }
  }
}

/** An upstream error's cause for the log: its code and message (the address, the errno), no stack. */
function causeInLog (error: Error & { cause?: unknown }): { code?: unknown, message: string } {
  const cause = (error.cause ?? error) as { code?: unknown, message?: unknown }
  return { ...(cause.code === undefined ? {} : { code: cause.code }), message: String(cause.message) }
}

/** The guarded proxy, ready to listen. */
async function buildProxy (config: ProxyConfig): Promise<FastifyInstance> {
  const [{ default: httpProxy }, { default: vonageJwtGuard }, { compileUpstreamHeaders, identityHeaders, upstreamHeaderValues }] = await Promise.all([
    import('@fastify/http-proxy'), import('vonage-jwt-guard'), import('vonage-jwt-guard/forward-auth')
  ])
  const trusted = config.trustProxy
  const app = await newApp({
    ...config.fastify,
    logger: withoutReplyFromErrorLines(config.fastify.logger),
    // request.ip in the log is the client's, read through the proxies we trust.
    ...(trusted === null ? {} : { trustProxy: trusted })
  })
  const errorFormat = config.guard.errorFormat ?? 'fastify'
  // The identity travels in headers: a claim they cannot carry unchanged is refused while the
  // token is verified (a 401 like any bad claim), before anything is forwarded. The upstream
  // reads the request after the guard: a method override (a header, `?_method=`) or a request
  // past Node's header limit is refused (forUpstream).
  await app.register(vonageJwtGuard, { ...config.guard, identityHeaders: true, forUpstream: true })
  if (config.healthPath !== false) {
    // Answers without the upstream: the orchestrator checks the upstream on the upstream.
    app.get(config.healthPath, { config: { jwtGuard: false } }, async () => ({ status: 'ok' }))
  }
  // The operator's claim headers (validated by the guard above): set from the verified claims,
  // a client's copy stripped in every spelling.
  const table = compileUpstreamHeaders(config.guard.claimHeaders, config.guard.grantedByHeader, [])
  const stripped: ReadonlySet<string> = new Set(table.names)
  const identity = (auth: FastifyRequest['auth']): Record<string, string> => {
    if (auth === null) return {}
    const headers = identityHeaders(auth.claims)
    return table.names.length === 0 ? headers : Object.assign(headers, upstreamHeaderValues(table, auth.claims, auth.grantedBy))
  }
  const timeout = config.upstreamTimeout * 1000
  await app.register(httpProxy, {
    upstream: config.upstream,
    // @fastify/reply-from logs two lines per granted request at info: those are Fastify's request
    // lines (--log-requests), not the default (docs/cli.md, Logs).
    disableRequestLogging: !logsRequests(config.fastify),
    undici: {
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // @fastify/reply-from turns certificate checks off (its `tls` default) unless told: an https
      // upstream is verified, against Node's CAs (NODE_EXTRA_CA_CERTS adds a private one).
      connect: { timeout: Math.min(timeout, 10_000), rejectUnauthorized: true }
    },
    // The handler gets the path alone; @fastify/reply-from then appends the query exactly as the
    // client sent it (request.raw.url), not re-serialized.
    replyOptions: {
      rewriteRequestHeaders: (request, headers) => {
        const raw = request.raw
        return upstreamHeaders(headers, {
          received: raw.headers,
          peer: plainAddress(raw.socket.remoteAddress),
          trusted: trusted !== null && trusted(raw.socket.remoteAddress ?? '', 0),
          identity: identity((request as FastifyRequest).auth),
          stripped
        })
      },
      rewriteHeaders: (headers) => downstreamHeaders(headers),
      onError: (reply, { error }) => {
        const coded = upstreamError(error as Error & { statusCode?: number }, config.upstreamTimeout)
        reply.log.error({ code: coded.code, statusCode: coded.statusCode ?? 502, upstream: config.upstream, cause: causeInLog(error) }, `vonage-jwt-guard proxy: ${coded.message}`)
        if (upstreamErrors.hasSubscribers) upstreamErrors.publish({ code: coded.code, statusCode: coded.statusCode ?? 502 })
        const body = upstreamErrorBody(coded, errorFormat, String(reply.request.id))
        if (errorFormat === 'problem') reply.type('application/problem+json')
        reply.code(coded.statusCode ?? 502).send(body)
      }
    }
  })
  return app
}

export function registerProxy (program: Command): void {
  const command = program
    .command('proxy')
    .description('guard a real upstream: forward only the requests the guard passes, with the verified identity')
    .requiredOption('--upstream <url>', 'where granted requests go, e.g. http://127.0.0.1:8080 (a path is prepended)')
    .option('--upstream-timeout <seconds>', 'how long the upstream may take to answer, and between two pieces of its body (then 504)', integerFlag(1, 3600), DEFAULT_UPSTREAM_TIMEOUT)
    .option('--trust-proxy <addresses>', 'the proxies in front (IPs, CIDRs, loopback...; comma-separated or repeated) whose X-Forwarded-* and Forwarded are kept', trustProxyFlag)
  addGuardFlags(command, { state: true })
  addClaimHeaderFlags(command)
  addRateLimitFlags(command)
  addServerFlags(command)
  command.action(async (flags: ProxyFlags) => {
    const upstream = upstreamFlag(flags.upstream)
    // A bad --trust-proxy is found before anything starts.
    const trustProxy = await trustFunction(flags.trustProxy ?? [])
    if (flags.rateLimit !== undefined) parseRateLimit(flags.rateLimit, 'sub')
    const guard = await resolveGuard(flags, { state: true })
    await runServer({
      guard,
      flags,
      rateLimit: rateLimitSettings(flags, guard),
      build: (options, fastify) => buildProxy({
        upstream,
        guard: options,
        upstreamTimeout: flags.upstreamTimeout,
        trustProxy,
        healthPath: flags.healthPath,
        fastify
      }),
      banner: (base) => `vonage-jwt-guard proxy: listening on ${base}, forwarding granted requests to ${upstream} (Ctrl-C to stop)`
    })
  })
}
