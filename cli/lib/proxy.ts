/**
 * `proxy`: the guard in front of a real upstream, through `@fastify/http-proxy`. Only requests
 * the guard passes are forwarded; the path and query go up byte for byte; headers that would let
 * a client re-route the request behind the guard are stripped; the verified identity goes up in
 * `X-Vonage-Application-Id` / `X-Vonage-Sub`, never a client's copy of them.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { Option, type Command } from 'commander'
import type { FastifyRequest } from 'fastify'
import { GuardError, type GuardOptions } from 'vonage-jwt-guard'
import { closeOnSignals, listen, loggerOptions, logLevelFlag, portFlag, readKeyText, repeatable, UsageError } from './shared.js'

/**
 * Stripped from every forwarded request: each asks some server or framework to use another URL,
 * path prefix or method than the one the guard authorized.
 */
export const STRIPPED_HEADERS = Object.freeze(['x-original-url', 'x-rewrite-url', 'x-forwarded-prefix', 'x-http-method-override'])

/** Set from the verified claims only; a client's copies are removed. */
export const IDENTITY_HEADERS = Object.freeze({
  application_id: 'x-vonage-application-id',
  sub: 'x-vonage-sub'
} as const)

/** A header value we pass on: printable ASCII. Control characters would split or smuggle headers. */
const HEADER_SAFE = /^[\x20-\x7e]*$/

interface ProxyFlags {
  upstream: string
  port: number
  host: string
  publicKey?: string
  jwksUrl?: string
  appId?: string[]
  aclPath?: string
  requireAcl: boolean
  logLevel: string
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

/** The identity headers for a verified request; throws 401 when a claim cannot travel in a header. */
function identityHeaders (request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {}
  const claims = request.auth?.claims
  if (claims === undefined) return headers
  for (const [claim, header] of Object.entries(IDENTITY_HEADERS)) {
    const value = claims[claim]
    if (value === undefined) continue
    if (typeof value !== 'string' || !HEADER_SAFE.test(value)) {
      throw new GuardError('VJG_CLAIM_INVALID', `The "${claim}" claim cannot be passed to the upstream: it must be printable ASCII, without control characters`)
    }
    headers[header] = value
  }
  return headers
}

/** The headers sent upstream: the client's, minus the stripped and identity ones, plus the verified identity. */
export function upstreamHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...headers }
  for (const name of STRIPPED_HEADERS) delete out[name]
  for (const name of Object.values(IDENTITY_HEADERS)) delete out[name]
  return { ...out, ...identityHeaders(request) }
}

/**
 * The upstream's hop-by-hop headers (RFC 9110 7.6.1) describe its connection to us, not ours to
 * the client: passed on, `connection: keep-alive` would hold open a connection the client asked
 * to close.
 */
export function downstreamHeaders<Headers extends Record<string, unknown>> (headers: Headers): Headers {
  const out: Record<string, unknown> = { ...headers }
  const listed = typeof out.connection === 'string' ? out.connection.split(',').map(name => name.trim().toLowerCase()) : []
  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'upgrade', ...listed]) delete out[name]
  return out as Headers
}

export function registerProxy (program: Command): void {
  program
    .command('proxy')
    .description('guard a real upstream: forward only the requests the guard passes, with the verified identity')
    .requiredOption('--upstream <url>', 'where granted requests go, e.g. http://127.0.0.1:8080 (a path is prepended)')
    .addOption(new Option('-p, --port <port>', 'port to listen on (0: any free port)').env('PORT').default(3000).argParser(portFlag))
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--public-key <path|pem>', 'the application public key: a path to public.key, or the PEM itself')
    .option('--jwks-url <url>', 'verify with the keys of a remote JWKS instead (chosen by kid; https, or http on localhost)')
    .option('--app-id <id>', 'accept only this application_id (repeat the flag for several)', repeatable)
    .option('--acl-path <prefix>', 'strip this prefix from the path before the ACL sees it (e.g. /api)')
    .option('--require-acl', 'refuse tokens without an acl claim', false)
    .option('--log-level <level>', 'Fastify log level (fatal, error, warn, info, debug, trace, silent)', logLevelFlag, 'info')
    .action(async (flags: ProxyFlags) => {
      const upstream = upstreamFlag(flags.upstream)
      if ((flags.publicKey === undefined) === (flags.jwksUrl === undefined)) {
        throw new UsageError('give exactly one of --public-key and --jwks-url')
      }
      const options: GuardOptions = { requireAcl: flags.requireAcl }
      if (flags.publicKey !== undefined) options.publicKey = readKeyText(flags.publicKey, '--public-key')
      if (flags.jwksUrl !== undefined) options.jwksUrl = flags.jwksUrl
      if (flags.appId !== undefined) options.applicationId = flags.appId
      if (flags.aclPath !== undefined) options.aclPath = flags.aclPath

      const [{ default: Fastify }, { default: httpProxy }, { default: vonageJwtGuard }] =
        await Promise.all([import('fastify'), import('@fastify/http-proxy'), import('vonage-jwt-guard')])
      const app = Fastify({ logger: loggerOptions(flags.logLevel) })
      await app.register(vonageJwtGuard, options)
      // After the guard's own onRequest hook: refuse, before anything is forwarded, an identity
      // that could not travel in a header unharmed.
      app.addHook('onRequest', async (request) => {
        identityHeaders(request)
      })
      await app.register(httpProxy, {
        upstream,
        // The handler gets the path alone; @fastify/reply-from then appends the query exactly as
        // the client sent it (request.raw.url), not re-serialized.
        replyOptions: {
          rewriteRequestHeaders: (request, headers) => upstreamHeaders(request as FastifyRequest, headers),
          rewriteHeaders: (headers) => downstreamHeaders(headers)
        }
      })

      const base = await listen(app, flags.host, flags.port)
      closeOnSignals(app)
      process.stdout.write(`vonage-jwt-guard proxy: listening on ${base}, forwarding granted requests to ${upstream} (Ctrl-C to stop)\n`)
    })
}
