/**
 * The proxy's own refusals, when the upstream fails rather than the request: stable codes in the
 * guard's error shapes, with a message that names no internal address, port or errno (those go
 * to the log). The codes live in the command line's package: the library never proxies.
 */
import { STATUS_CODES } from 'node:http'
import createError, { type FastifyError } from '@fastify/error'

/** 502: the upstream refused the connection, could not be resolved, reset it, or sent no valid response. */
const UpstreamFailedError = createError('VJG_UPSTREAM_FAILED', 'The upstream could not be reached or did not answer with a valid response', 502)
/** 504: no connection, response head or next piece of body within --upstream-timeout. */
const UpstreamTimeoutError = createError('VJG_UPSTREAM_TIMEOUT', 'The upstream did not answer within %d s', 504)

/**
 * Ours for an error of @fastify/reply-from: its timeouts (504 family) are ours, anything else
 * (ECONNREFUSED, ENOTFOUND, a reset, a bad status line) is 502.
 */
export function upstreamError (error: { statusCode?: number }, timeoutSeconds: number): FastifyError {
  return error.statusCode === 504 ? new UpstreamTimeoutError(timeoutSeconds) : new UpstreamFailedError()
}

/** The body of an upstream error, as the guard writes its own refusals (`errorFormat`). */
export function upstreamErrorBody (error: FastifyError, format: 'fastify' | 'problem', instance: string): Record<string, unknown> {
  const status = error.statusCode ?? 502
  const title = STATUS_CODES[status] ?? 'Error'
  if (format === 'problem') return { type: 'about:blank', title, detail: error.message, instance, code: error.code }
  return { statusCode: status, code: error.code, error: title, message: error.message }
}
