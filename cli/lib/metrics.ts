/**
 * `--metrics-port`: Prometheus metrics (prom-client), on a listener of their own, never on the
 * guarded port. The guard's numbers come from the decisions it publishes on the
 * `node:diagnostics_channel` channel `vonage-jwt-guard:decision` (one per decision), the proxy's
 * upstream failures from `UPSTREAM_ERROR_CHANNEL`. Under `--workers` each worker counts into its
 * own registry and the primary serves the sum (prom-client's `AggregatorRegistry`).
 */
import { subscribe } from 'node:diagnostics_channel'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { DECISION_CHANNEL, type GuardDecision } from 'vonage-jwt-guard'
import { CommandFailed, reachableHost } from './shared.js'

/** Where `proxy` publishes an upstream failure: `{ code, statusCode }` (upstream-errors.ts). */
export const UPSTREAM_ERROR_CHANNEL = 'vonage-jwt-guard-cli:upstream-error'

/** From 50 us (a cached token) to 1 s (a slow store or key set), in seconds. */
const DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** The metrics of one process, counted into `registry`. */
async function collectMetrics (registry: Registry): Promise<void> {
  const { Counter, Histogram, collectDefaultMetrics } = await import('prom-client')
  collectDefaultMetrics({ register: registry })
  const decisions = new Counter({
    name: 'vjg_decisions_total',
    help: 'Decisions of the guard: result granted or refused, the refusal\'s code and HTTP status (empty when granted)',
    labelNames: ['result', 'code', 'status'] as const,
    registers: [registry]
  })
  const duration = new Histogram({
    name: 'vjg_verification_duration_seconds',
    help: 'Time the guard took to decide one request (path, token, signature or cache, replay and revocation, ACL), by result and cache outcome',
    labelNames: ['result', 'cache'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  const cache = new Counter({
    name: 'vjg_cache_lookups_total',
    help: 'Lookups of the verified-token cache, by outcome (hit or miss)',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  const stateFailures = new Counter({
    name: 'vjg_state_failures_total',
    help: 'Replay or revocation checks whose store (or isRevoked hook) failed or timed out; failed_open="true": skipped under failOpen, else refused with 503',
    labelNames: ['failed_open'] as const,
    registers: [registry]
  })
  const upstream = new Counter({
    name: 'vjg_upstream_errors_total',
    help: 'proxy: requests the upstream failed, by code (VJG_UPSTREAM_FAILED, VJG_UPSTREAM_TIMEOUT) and status (502, 504)',
    labelNames: ['code', 'status'] as const,
    registers: [registry]
  })

  subscribe(DECISION_CHANNEL, (message) => {
    const decision = message as GuardDecision
    const result = decision.granted ? 'granted' : 'refused'
    decisions.inc({ result, code: decision.code ?? '', status: decision.statusCode === null ? '' : String(decision.statusCode) })
    duration.observe({ result, cache: decision.cache }, decision.duration / 1000)
    if (decision.cache === 'hit' || decision.cache === 'miss') cache.inc({ outcome: decision.cache })
    if (decision.failedChecks.length > 0) stateFailures.inc({ failed_open: decision.failedOpen.length > 0 ? 'true' : 'false' })
  })
  subscribe(UPSTREAM_ERROR_CHANNEL, (message) => {
    const { code, statusCode } = message as { code: string, statusCode: number }
    upstream.inc({ code, status: String(statusCode) })
  })
}

/** A registry of this process's metrics. */
async function processRegistry (): Promise<Registry> {
  const { Registry } = await import('prom-client')
  const registry = new Registry()
  await collectMetrics(registry)
  return registry
}

/**
 * A worker of `--workers`: its metrics answer the primary's requests (the primary serves the sum).
 */
export async function workerMetrics (): Promise<void> {
  const { AggregatorRegistry } = await import('prom-client')
  const registry = await processRegistry()
  AggregatorRegistry.setRegistries([registry])
  // Constructing one installs the listener that answers the primary.
  void new AggregatorRegistry()
}

/** `GET /metrics` on its own listener: what `text()` returns, in the Prometheus text format. */
async function serveMetrics (host: string, port: number, text: () => Promise<string>, contentType: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the metrics are at GET /metrics\n')
      return
    }
    text().then((body) => {
      response.writeHead(200, { 'content-type': contentType }).end(request.method === 'HEAD' ? undefined : body)
    }, (error: unknown) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => { reject(new CommandFailed(`cannot listen on ${host}:${port} for --metrics-port (${error.message})`)) })
    server.listen({ host, port }, resolve)
  })
  // The metrics listener never holds the process open on its own.
  server.unref()
  return server
}

/** Metrics of this one process (no --workers), served on `host:port`. */
export async function singleProcessMetrics (host: string, port: number): Promise<Server> {
  const registry = await processRegistry()
  return serveMetrics(host, port, () => registry.metrics(), registry.contentType)
}

/** The primary of `--workers`: the sum of the workers' metrics on `host:port`. */
export async function primaryMetrics (host: string, port: number): Promise<Server> {
  const { AggregatorRegistry } = await import('prom-client')
  const aggregator = new AggregatorRegistry()
  return serveMetrics(host, port, () => aggregator.clusterMetrics(), aggregator.contentType)
}

/** Where a metrics listener answers, for the banner. */
export function metricsUrl (host: string, server: Server): string {
  return `http://${reachableHost(host)}:${(server.address() as AddressInfo).port}/metrics`
}
