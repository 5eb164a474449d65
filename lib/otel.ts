/**
 * `vonage-jwt-guard/otel`: one OpenTelemetry span per guard decision, fed from the decision
 * channel (`vonage-jwt-guard:decision`), on `@opentelemetry/api` (an optional peer: only this
 * entry point imports it). The span is made where the decision is published, so it is a child
 * of the active span (the request's, with an HTTP instrumentation or a context the caller set),
 * and it covers the pipeline: it starts `duration` ms before the decision and ends with it.
 *
 * Attributes: OTel's semantic-convention names where they exist (`http.request.method`,
 * `url.path`, `http.response.status_code`, `error.type`), ours under `vonage_jwt_guard.*`
 * for the rest. Never the token, never a claim beyond `application_id` and `sub`.
 *
 * Cost: nothing with no SDK registered: `traceDecisions()` then subscribes nothing, so the guard
 * builds no decision event (a subscriber costs each decision about 1.3 us even for the API's
 * no-op tracer, bench/otel.js). Register the SDK first, then call it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type TracerProvider } from '@opentelemetry/api'
import { DECISION_CHANNEL } from './guard.js'
import type { GuardDecision } from './types.js'

export interface TraceDecisionsOptions {
  /** The provider to make spans with. @default the global one (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider
}

/** The span name of a decision. */
export const DECISION_SPAN = 'vonage-jwt-guard decision'

/** The attributes of a decision's span. */
export function decisionAttributes (decision: GuardDecision): Attributes {
  const attributes: Attributes = {
    'http.request.method': decision.method,
    'vonage_jwt_guard.phase': decision.phase,
    'vonage_jwt_guard.granted': decision.granted,
    'vonage_jwt_guard.cache': decision.cache
  }
  if (decision.path !== null) attributes['url.path'] = decision.path
  if (decision.code !== null) {
    attributes['vonage_jwt_guard.code'] = decision.code
    attributes['error.type'] = decision.code
  }
  if (decision.statusCode !== null) attributes['http.response.status_code'] = decision.statusCode
  if (decision.applicationId !== null) attributes['vonage_jwt_guard.application_id'] = decision.applicationId
  if (decision.sub !== null) attributes['vonage_jwt_guard.sub'] = decision.sub
  if (decision.grantedBy !== null) attributes['vonage_jwt_guard.granted_by'] = decision.grantedBy
  if (decision.failedChecks.length > 0) attributes['vonage_jwt_guard.failed_checks'] = [...decision.failedChecks]
  if (decision.failedOpen.length > 0) attributes['vonage_jwt_guard.failed_open'] = [...decision.failedOpen]
  return attributes
}

/**
 * Make a span of every decision from now on; returns the function that stops. A refusal is a
 * span with `error.type` (its code); one answered 5xx (the guard could not decide) also has the
 * status ERROR, as OTel's HTTP conventions mark a server's 5xx and not its 4xx.
 */
export function traceDecisions (options: TraceDecisionsOptions = {}): () => void {
  const provider = options.tracerProvider ?? trace.getTracerProvider()
  const tracer = provider.getTracer('vonage-jwt-guard')
  // The API without an SDK makes spans with an invalid context (all zeros) outside a trace: then
  // nothing would be recorded, and nothing is subscribed. (The probe is never ended, so an SDK
  // exports nothing of it.)
  if (!isSpanContextValid(tracer.startSpan('vonage-jwt-guard probe', {}, ROOT_CONTEXT).spanContext())) return () => {}
  const onDecision = (message: unknown): void => {
    const decision = message as GuardDecision
    const end = performance.timeOrigin + performance.now()
    const span = tracer.startSpan(DECISION_SPAN, { kind: SpanKind.INTERNAL, startTime: end - decision.duration })
    // No SDK (or not sampled): a no-op span, and no attribute is built.
    if (!span.isRecording()) return
    span.setAttributes(decisionAttributes(decision))
    if (decision.statusCode !== null && decision.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: decision.code ?? undefined })
    span.end(end)
  }
  subscribe(DECISION_CHANNEL, onDecision)
  return () => { unsubscribe(DECISION_CHANNEL, onDecision) }
}
