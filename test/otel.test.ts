/**
 * vonage-jwt-guard/otel: one span per decision, through the OTel SDK to an in-memory exporter;
 * a child of the request's span when there is one; semantic-convention attributes and ours;
 * never the token.
 */
import { context, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node'
import Fastify from 'fastify'
import t from 'tap'
import vonageJwtGuard from '../lib/index.js'
import { DECISION_SPAN, traceDecisions } from '../lib/otel.js'
import { APP_ID, keys, NOW_MS, token } from './helpers/keys.js'

const exporter = new InMemorySpanExporter()
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
provider.register()
t.teardown(() => provider.shutdown())

t.test('a span per decision, child of the request span, with the decision\'s attributes', async t => {
  const stop = traceDecisions()
  t.teardown(stop)
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, stateTimeout: 100 })
  app.get('/v1/users/:id', async () => ({ ok: true }))
  t.teardown(() => app.close())
  await app.ready()
  exporter.reset()
  const jwt = await token({ sub: 'alice' })
  const parent = trace.getTracer('test').startSpan('GET /v1/users/:id')
  const granted = await context.with(trace.setSpan(context.active(), parent), async () => await app.inject({ url: '/v1/users/abc', headers: { authorization: `Bearer ${jwt}` } }))
  parent.end()
  t.equal(granted.statusCode, 200)
  await app.inject({ url: '/v1/users/abc', headers: { authorization: `Bearer ${jwt}` } })
  const refused = await app.inject({ url: '/v1/calls/abc', headers: { authorization: `Bearer ${jwt}` } })
  t.equal(refused.statusCode, 403)

  const spans = exporter.getFinishedSpans().filter(span => span.name === DECISION_SPAN)
  t.equal(spans.length, 3, 'one span per decision')
  const [first, second, third] = spans as [typeof spans[0], typeof spans[0], typeof spans[0]]
  t.equal(first.parentSpanContext?.spanId, parent.spanContext().spanId, 'a child of the request span')
  t.equal(first.spanContext().traceId, parent.spanContext().traceId)
  t.same(first.attributes, {
    'http.request.method': 'GET',
    'url.path': '/v1/users/abc',
    'vonage_jwt_guard.phase': 'request',
    'vonage_jwt_guard.granted': true,
    'vonage_jwt_guard.cache': 'miss',
    'vonage_jwt_guard.application_id': APP_ID,
    'vonage_jwt_guard.sub': 'alice',
    'vonage_jwt_guard.granted_by': '/*/users/**'
  })
  t.equal(third.attributes['vonage_jwt_guard.cache'], 'hit', 'the third sighting: a cache hit (the cache keeps a token from its second)')
  t.equal(second.parentSpanContext, undefined, 'no request span: a root span')
  t.match(third.attributes, { 'vonage_jwt_guard.granted': false, 'vonage_jwt_guard.code': 'VJG_ACL_DENIED', 'error.type': 'VJG_ACL_DENIED', 'http.response.status_code': 403 })
  t.equal(third.status.code, 0, 'a 4xx refusal is not a span error')
  for (const span of spans) {
    t.notMatch(JSON.stringify(span.attributes), jwt.slice(0, 40), 'never the token')
    const ms = (span.endTime[0] - span.startTime[0]) * 1e3 + (span.endTime[1] - span.startTime[1]) / 1e6
    t.ok(ms >= 0 && ms < 10_000, `it covers the pipeline (${ms.toFixed(3)} ms)`)
  }
})

t.test('a 503 is a span error; nothing after stop()', async t => {
  const stop = traceDecisions({ tracerProvider: provider })
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, isRevoked: () => { throw new Error('down') } })
  app.get('/v1/users/:id', async () => ({ ok: true }))
  t.teardown(() => app.close())
  exporter.reset()
  const res = await app.inject({ url: '/v1/users/abc', headers: { authorization: `Bearer ${await token()}` } })
  t.equal(res.statusCode, 503)
  const [span] = exporter.getFinishedSpans()
  t.equal(span?.status.code, 2, 'ERROR')
  t.same(span?.attributes['vonage_jwt_guard.failed_checks'], ['isRevoked'])
  stop()
  exporter.reset()
  await app.inject({ url: '/v1/users/abc', headers: { authorization: `Bearer ${await token()}` } })
  t.equal(exporter.getFinishedSpans().length, 0, 'unsubscribed')
})

t.test('with no SDK (the API\'s no-op provider) nothing is subscribed: the guard builds no decision event', async t => {
  const { channel } = await import('node:diagnostics_channel')
  const { ProxyTracerProvider } = await import('@opentelemetry/api')
  const { DECISION_CHANNEL } = await import('../lib/index.js')
  t.notOk(channel(DECISION_CHANNEL).hasSubscribers, 'nobody listens before')
  const stop = traceDecisions({ tracerProvider: new ProxyTracerProvider() })
  t.notOk(channel(DECISION_CHANNEL).hasSubscribers, 'still nobody')
  stop()
  const real = traceDecisions({ tracerProvider: provider })
  t.ok(channel(DECISION_CHANNEL).hasSubscribers, 'with the SDK: subscribed')
  real()
})
