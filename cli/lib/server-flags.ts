/**
 * The flags every long-running server command shares (`serve`, `proxy`, `forward-auth`), in a
 * module of their own: server.ts reads them to listen, workers.ts to start its processes, and
 * neither imports the other for them.
 */

/** The flags of a long-running server. */
export interface ServerFlags {
  port: number
  host: string
  /** The unguarded health route, or false for none. */
  healthPath: string | false
  /** The unguarded readiness route (readiness.ts), or false for none. */
  readyPath: string | false
  /** Seconds the requests in flight get after SIGTERM. */
  gracePeriod: number
  /** Seconds a client may take to send a whole request, head and body. */
  requestTimeout: number
  logLevel: string
  /** Log every request (Fastify's incoming / completed lines), not only refusals. */
  logRequests: boolean
  metricsPort?: number
  metricsHost: string
  /** Processes answering requests; 1: this one. */
  workers: number
  /** A span per decision through the OTel SDK and OTLP (otel.ts). */
  otel?: boolean
}
