/**
 * `--otel`: a span per decision through the real OTLP HTTP exporter to a local receiver this
 * test starts; a child of the caller's `traceparent`; the token never sent; an endpoint that is
 * down or never answers slows and fails no request.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createTcpServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys } from '../../test/helpers/keys.js'
import { freePort, liveToken, portOf, start, stop, waitFor } from './helpers/bin.js'

interface OtlpValue { stringValue?: string, intValue?: string | number, boolValue?: boolean, arrayValue?: unknown }
interface OtlpSpan { traceId: string, spanId: string, parentSpanId?: string, name: string, attributes: Array<{ key: string, value: OtlpValue }> }

/** An OTLP/HTTP receiver (JSON, as the exporter sends by default): every body received. */
async function receiver (t: Tap.Test): Promise<{ endpoint: string, bodies: string[], spans: () => Array<OtlpSpan & { service: string }> }> {
  const bodies: string[] = []
  const server = createHttpServer((request: IncomingMessage, response) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { body += chunk })
    request.on('end', () => {
      if (request.url === '/v1/traces') bodies.push(body)
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const spans = (): Array<OtlpSpan & { service: string }> => bodies.flatMap((body) => {
    const parsed = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }, scopeSpans: Array<{ spans: OtlpSpan[] }> }> }
    return parsed.resourceSpans.flatMap(rs => {
      const service = rs.resource.attributes.find(a => a.key === 'service.name')?.value.stringValue ?? ''
      return rs.scopeSpans.flatMap(ss => ss.spans.map(span => ({ ...span, service })))
    })
  })
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, spans }
}

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes.find(a => a.key === key)?.value
  return value === undefined ? undefined : value.stringValue ?? value.boolValue ?? (value.intValue === undefined ? value.arrayValue : Number(value.intValue))
}

t.test('serve --otel: decisions reach the OTLP receiver as spans, children of the caller\'s traceparent', async t => {
  const otlp = await receiver(t)
  const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--otel'], {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'guard-under-test' }
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const jwt = await liveToken({ sub: 'alice' })
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const parentId = '00f067aa0ba902b7'
  t.equal((await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}`, traceparent: `00-${traceId}-${parentId}-01` })).status, 200)
  t.equal((await rawRequest(port, '/v1/calls/abc', { authorization: `Bearer ${jwt}` })).status, 403)
  await waitFor('two spans at the receiver', () => otlp.spans().length >= 2)
  const [granted, refused] = otlp.spans().sort((a, b) => String(attribute(a, 'url.path')).localeCompare(String(attribute(b, 'url.path')))).reverse()
  t.equal(granted!.name, 'vonage-jwt-guard decision')
  t.equal(granted!.service, 'guard-under-test', 'OTEL_SERVICE_NAME')
  t.equal(granted!.traceId, traceId, 'in the caller\'s trace')
  t.equal(granted!.parentSpanId, parentId, 'a child of the caller\'s span')
  t.equal(attribute(granted!, 'http.request.method'), 'GET')
  t.equal(attribute(granted!, 'url.path'), '/v1/users/abc')
  t.equal(attribute(granted!, 'vonage_jwt_guard.granted'), true)
  t.equal(attribute(granted!, 'vonage_jwt_guard.application_id'), APP_ID)
  t.equal(attribute(granted!, 'vonage_jwt_guard.sub'), 'alice')
  t.equal(attribute(granted!, 'vonage_jwt_guard.granted_by'), '/*/users/**')
  t.equal(attribute(granted!, 'vonage_jwt_guard.cache'), 'miss')
  t.equal(attribute(refused!, 'vonage_jwt_guard.code'), 'VJG_ACL_DENIED')
  t.equal(attribute(refused!, 'error.type'), 'VJG_ACL_DENIED')
  t.equal(attribute(refused!, 'http.response.status_code'), 403)
  t.not(refused!.traceId, traceId, 'no traceparent: a trace of its own')
  for (const body of otlp.bodies) t.notOk(body.includes(jwt.split('.')[1]!), 'the token is never sent')
  t.equal(await stop(server), 0, 'a clean stop')
})

t.test('an OTLP endpoint that is down, or never answers, slows and fails no request', async t => {
  const sockets = new Set<Socket>()
  const silent = createTcpServer((socket) => { sockets.add(socket) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const socket of sockets) socket.destroy(); silent.close() })
  const endpoints: Array<[string, string]> = [
    ['down (connection refused)', `http://127.0.0.1:${await freePort()}`],
    ['never answers', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`]
  ]
  for (const [name, endpoint] of endpoints) {
    const server = await start(['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn', '--otel'], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '10', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1' }
    })
    t.teardown(() => { server.child.kill('SIGKILL') })
    const port = portOf(server.base)
    const jwt = await liveToken({ sub: 'alice' })
    const started = Date.now()
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) statuses.push((await rawRequest(port, i % 3 === 0 ? '/v1/calls/x' : '/v1/users/abc', { authorization: `Bearer ${jwt}` })).status)
    const elapsed = Date.now() - started
    t.same([...new Set(statuses)].sort(), [200, 403], `${name}: every request answered as without tracing`)
    t.ok(elapsed < 10_000, `${name}: 30 requests in ${elapsed} ms (the exporter's 10 s timeout is never waited on)`)
    server.child.kill('SIGKILL')
  }
})
