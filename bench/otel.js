/**
 * What the OpenTelemetry hook costs a decision, in one process, no HTTP:
 *   off      the guard alone (nobody on the decision channel);
 *   API only `traceDecisions()` called with no SDK registered (it then subscribes nothing);
 *   API only, subscribed: what a subscriber with the API's no-op tracer would cost (the event and
 *            a no-op span per decision), which is why `traceDecisions()` does not subscribe then;
 *   SDK on   the OTel Node SDK registered, every decision a recorded span handed to a
 *            BatchSpanProcessor (its exporter drops the batches: the network is not measured).
 * The pipeline is the guard's own (`createGuard().authenticate`, a cached token, GET
 * /v1/users/abc), as the Fastify plugin and Express middleware call it. Rounds alternate the
 * cases (off / API only, then off / SDK on once the SDK is registered, which cannot be undone);
 * the figure is CPU time (user + system) per decision, the median round.
 *
 *   npm run build && cd bench && node otel.js        (BENCH_OTEL_ROUNDS, BENCH_OTEL_N)
 */
import { generateKeyPairSync } from 'node:crypto'
import { cpus, loadavg } from 'node:os'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { trace } from '@opentelemetry/api'
import { NodeTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-node'
import { createGuard } from '../dist/guard.js'
import { DECISION_CHANNEL } from '../dist/guard.js'
import { traceDecisions } from '../dist/otel.js'
import { CLIENT_SDK_ACL, mintToken } from '../dist/mint.js'
import { median } from './stats.js'

const ROUNDS = Number(process.env.BENCH_OTEL_ROUNDS ?? 15)
const N = Number(process.env.BENCH_OTEL_N ?? 20_000)

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const token = await mintToken({}, privateKey.export({ type: 'pkcs8', format: 'pem' }), { applicationId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', sub: 'alice', acl: CLIENT_SDK_ACL, ttl: 3600 })
const guard = createGuard({ publicKey: publicKey.export({ type: 'spki', format: 'pem' }) })
const raw = { rawHeaders: ['Host', 'api.example.com', 'Authorization', `Bearer ${token}`, 'Accept', '*/*'], headers: { host: 'api.example.com', authorization: `Bearer ${token}`, accept: '*/*' } }
const input = { target: '/v1/users/abc', method: 'GET', raw, request: raw }
// Into the cache (a token is kept from its second sighting).
for (let i = 0; i < 3; i++) await guard.authenticate(input)

/** CPU ns per decision over N decisions. */
function measure () {
  const start = process.cpuUsage()
  for (let i = 0; i < N; i++) {
    const auth = guard.authenticate(input)
    if (auth instanceof Promise || auth === null) throw new Error('not a cached grant')
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000 / N
}

const runs = { off: [], api: [], noop: [], offSdk: [], sdk: [] }
/** A subscriber doing what traceDecisions() would with the no-op tracer. */
const tracer = trace.getTracer('vonage-jwt-guard')
const noopSpan = (decision) => { const span = tracer.startSpan('vonage-jwt-guard decision', { startTime: performance.timeOrigin + performance.now() - decision.duration }); if (span.isRecording()) span.end() }
for (let i = 0; i < 3; i++) measure() // warm-up
for (let round = 0; round < ROUNDS; round++) {
  const stop = traceDecisions()
  if (round % 2 === 0) { runs.api.push(measure()); stop(); runs.off.push(measure()) } else { stop(); runs.off.push(measure()); const again = traceDecisions(); runs.api.push(measure()); again() }
  subscribe(DECISION_CHANNEL, noopSpan)
  runs.noop.push(measure())
  unsubscribe(DECISION_CHANNEL, noopSpan)
}
const dropping = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} }
const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping, { maxQueueSize: 100_000, maxExportBatchSize: 512, scheduledDelayMillis: 50 })] })
provider.register()
for (let round = 0; round < ROUNDS; round++) {
  const stop = traceDecisions()
  // The spans' export work is the SDK's cost too: flushed, and counted, before the clock stops.
  const start = process.cpuUsage()
  measure()
  await provider.forceFlush()
  const used = process.cpuUsage(start)
  runs.sdk.push((used.user + used.system) * 1000 / N)
  stop()
  runs.offSdk.push(measure())
}
await provider.shutdown()

const fmt = (ns) => `${Math.round(ns)} ns`
const off = median(runs.off)
const rows = [
  ['off (no subscriber)', off],
  ['API only (`traceDecisions()`, no SDK)', median(runs.api)],
  ['API only, subscribed anyway (no-op spans)', median(runs.noop)],
  ['SDK on (recorded spans, batch processor, export flushed)', median(runs.sdk)],
  ['off, SDK registered but not subscribed', median(runs.offSdk)]
]
console.log(`${new Date().toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0].model.trim()}, load ${loadavg().map(n => n.toFixed(2)).join(', ')}; ${ROUNDS} rounds of ${N} cached grants, median CPU per decision`)
console.log('')
console.log('| case | CPU per decision | vs off |')
console.log('|---|--:|--:|')
for (const [name, ns] of rows) console.log(`| ${name} | ${fmt(ns)} | ${(ns / off).toFixed(2)}x |`)
