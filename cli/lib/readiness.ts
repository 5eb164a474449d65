/**
 * `/readyz` (`--ready-path`) of `serve`, `mock`, `proxy` and `forward-auth`, beside `/healthz`:
 * the library's readiness of the guard that answers now (keys loaded, the Redis store answering
 * `PING`), and the server's own: no reload of `--public-keys-dir` failing. Answered by the
 * server runner before the app, so it always reflects the app in use. 503 with a body naming
 * what is not ready; never a key, a path's content, a URL or a store's own error.
 *
 * forward-auth answers a ready probe with 204, not 200, as its health route does: Envoy grants
 * only on 200, so an Envoy sent here by mistake is never granted; a request carrying the header
 * pairs of a check (a proxy pointed here) is refused with 400.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { foldHeaderName } from 'vonage-jwt-guard/forward-auth'

export interface ReadyRoute {
  /** Whether this request is a readiness probe (GET or HEAD of the path, any query). */
  matches (request: IncomingMessage): boolean
  /** Answer it from `app`'s guards and the server's own checks (`ok` or why not). */
  answer (request: IncomingMessage, response: ServerResponse, app: FastifyInstance, own: Readonly<Record<string, string>>): void
}

const CHECK_HEADERS = new Set(['x-forwarded-method', 'x-forwarded-uri', 'x-original-method', 'x-original-uri'])

function send (response: ServerResponse, head: boolean, statusCode: number, body: string): void {
  response.writeHead(statusCode, {
    'cache-control': 'no-store',
    ...(body === '' ? {} : { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  })
  response.end(head ? undefined : body)
}

export function readyRoute (path: string | false, { forwardAuth }: { forwardAuth: boolean }): ReadyRoute | null {
  if (path === false) return null
  const withQuery = `${path}?`
  return {
    matches: (request) => {
      const url = request.url ?? ''
      return (url === path || url.startsWith(withQuery)) && (request.method === 'GET' || request.method === 'HEAD')
    },
    answer: (request, response, app, own) => {
      const head = request.method === 'HEAD'
      if (forwardAuth) {
        const list = request.rawHeaders
        for (let i = 0; i < list.length; i += 2) {
          if (CHECK_HEADERS.has(foldHeaderName(list[i] ?? ''))) {
            const message = `${path} is the readiness route, not the check: point the proxy at another path`
            send(response, head, 400, JSON.stringify({ statusCode: 400, code: 'VJG_FORWARD_INVALID', error: 'Bad Request', message }))
            return
          }
        }
      }
      import('vonage-jwt-guard')
        .then(async ({ readiness }) => {
          const report = await readiness(app)
          const checks = { ...report.checks, ...own }
          const ready = Object.values(checks).every(value => value === 'ok')
          const body = JSON.stringify({ status: ready ? 'ready' : 'not ready', checks })
          if (ready && forwardAuth) send(response, head, 204, '')
          else send(response, head, ready ? 200 : 503, body)
        })
        .catch((error: unknown) => {
          app.log.error({ err: error }, 'vonage-jwt-guard: the readiness check failed')
          send(response, head, 503, JSON.stringify({ status: 'not ready', checks: { guard: 'the readiness check failed' } }))
        })
    }
  }
}
