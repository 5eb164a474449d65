/**
 * `--otel`: OpenTelemetry traces of the guard's decisions, one span each
 * (`vonage-jwt-guard/otel`), through the OTel Node SDK (`@opentelemetry/sdk-trace-node`) and the
 * OTLP HTTP exporter, both configured by the standard variables: `OTEL_EXPORTER_OTLP_ENDPOINT`
 * (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME` (default `vonage-jwt-guard`),
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`. A request's `traceparent`
 * (W3C Trace Context, as nginx's and Envoy's tracing send it) makes its decision a child of the
 * proxy's span. Spans are exported in batches, off the request path: an endpoint that is down
 * or slow never slows or fails a request (a full queue drops spans).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

export interface Otel {
  /** Stop tracing and send what is queued (at most `timeout` ms: shutting down never waits on a dead endpoint). */
  shutdown (timeout?: number): Promise<void>
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void

/** Start the SDK and trace every decision of this process. */
export async function startOtel (): Promise<Otel> {
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }, { traceDecisions }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('vonage-jwt-guard/otel')
  ])
  const resource = resourceFromAttributes({ 'service.name': 'vonage-jwt-guard' }).merge(detectResources({ detectors: [envDetector] }))
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] })
  // The global provider, the W3C propagator, and the AsyncLocalStorage context of each request.
  provider.register()
  const stop = traceDecisions()
  return {
    shutdown: async (timeout = 2000) => {
      stop()
      await Promise.race([provider.shutdown().catch(() => {}), new Promise(resolve => setTimeout(resolve, timeout).unref())])
    }
  }
}

/**
 * Each request of `server` runs in the trace context its `traceparent` names (none: a new
 * trace), so the decision's span is a child of the caller's.
 */
export async function tracedRequests (server: Server): Promise<void> {
  const { context, propagation, ROOT_CONTEXT } = await import('@opentelemetry/api')
  const listeners = server.listeners('request') as RequestListener[]
  server.removeAllListeners('request')
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    context.with(propagation.extract(ROOT_CONTEXT, request.headers), () => {
      for (const listener of listeners) listener(request, response)
    })
  })
}
