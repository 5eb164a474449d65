/**
 * --metrics-port: Prometheus text format on a listener of its own; the counters move as requests
 * are granted and refused, the cache is hit, a store fails (closed and open), an upstream fails.
 */
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys, otherKeys } from '../../test/helpers/keys.js'
import { freePort, liveToken, metricsOf, portOf, run, sample, scrape, start, stop } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

t.test('proxy: decisions, verification time, cache, upstream errors and process metrics', async t => {
  const up = await recordingUpstream(t)
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', join(dir, 'public.key'), '--metrics-port', '0', '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const url = metricsOf(proxy)
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'on 127.0.0.1 by default')
  t.not(new URL(url).port, String(port), 'never on the guarded port')

  const before = await scrape(url)
  t.equal(before.status, 200)
  t.match(before.type, /^text\/plain; version=0\.0\.4/, 'the Prometheus text format')
  t.match(before.body, /^# HELP vjg_decisions_total /m)
  t.match(before.body, /^# TYPE vjg_verification_duration_seconds histogram$/m)
  t.match(before.body, /^process_cpu_user_seconds_total \d/m, 'prom-client\'s default process metrics')
  t.equal(sample(before.body, 'vjg_decisions_total', { result: 'granted', code: '', status: '' }), undefined, 'no decision counted before the first request')

  const jwt = await liveToken()
  for (let i = 0; i < 3; i++) t.equal((await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })).status, 200)
  t.equal((await rawRequest(port, '/v1/users/abc', {})).status, 401)
  t.equal((await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken({}, otherKeys.privateKey)}` })).status, 401)
  t.equal((await rawRequest(port, '/v1/calls', { authorization: `Bearer ${jwt}` })).status, 403)

  const after = (await scrape(url)).body
  t.equal(sample(after, 'vjg_decisions_total', { result: 'granted', code: '', status: '' }), 3, 'three grants')
  t.equal(sample(after, 'vjg_decisions_total', { result: 'refused', code: 'VJG_TOKEN_MISSING', status: '401' }), 1)
  t.equal(sample(after, 'vjg_decisions_total', { result: 'refused', code: 'VJG_SIGNATURE_INVALID', status: '401' }), 1)
  t.equal(sample(after, 'vjg_decisions_total', { result: 'refused', code: 'VJG_ACL_DENIED', status: '403' }), 1)
  t.equal(sample(after, 'vjg_cache_lookups_total', { outcome: 'miss' }), 3, 'the forged token, and the good one twice: it is kept from its second sighting')
  t.equal(sample(after, 'vjg_cache_lookups_total', { outcome: 'hit' }), 2, 'its third use and the 403 came from the cache')
  t.equal(sample(after, 'vjg_verification_duration_seconds_count', { result: 'granted', cache: 'hit' }), 1)
  t.equal(sample(after, 'vjg_verification_duration_seconds_bucket', { result: 'granted', cache: 'miss', le: '1' }), 2)
  t.equal(sample(after, 'vjg_verification_duration_seconds_bucket', { result: 'granted', cache: 'miss', le: '+Inf' }), 2)
  t.match(after, /vjg_verification_duration_seconds_bucket\{le="0\.00005",result="granted",cache="hit"\}/, 'sub-millisecond buckets')

  t.equal((await rawRequest(port, '/metrics', {})).status, 401, 'the guarded port has no metrics route: it is guarded like any path')
  t.equal(await stop(proxy), 0)
})

t.test('proxy: an upstream that is down counts as VJG_UPSTREAM_FAILED, 502', async t => {
  const down = await freePort()
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${down}`, '--port', '0', '--public-key', join(dir, 'public.key'), '--metrics-port', '0', '--log-level', 'silent'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  t.equal((await rawRequest(portOf(proxy.base), '/v1/users', { authorization: `Bearer ${await liveToken()}` })).status, 502)
  const body = (await scrape(metricsOf(proxy))).body
  t.equal(sample(body, 'vjg_upstream_errors_total', { code: 'VJG_UPSTREAM_FAILED', status: '502' }), 1)
  t.equal(sample(body, 'vjg_decisions_total', { result: 'granted', code: '', status: '' }), 1, 'the guard granted it')
  t.equal(await stop(proxy), 0)
})

t.test('forward-auth: a replay store that cannot be reached counts, failed closed and failed open', async t => {
  const dead = `redis://127.0.0.1:${await freePort()}`
  const dir = t.testdir({ 'public.key': keys.publicPem, 'open.json': JSON.stringify({ publicKey: { file: 'public.key' }, replay: true, failOpen: true, stateTimeout: 200, redisUrl: dead }) })
  const closed = await start(['forward-auth', '--port', '0', '--public-key', join(dir, 'public.key'), '--replay', '--redis-url', dead, '--metrics-port', '0', '--log-level', 'silent'])
  t.teardown(() => { closed.child.kill('SIGKILL') })
  const check = { 'x-original-method': 'GET', 'x-original-uri': '/v1/users' }
  const refused = await rawRequest(portOf(closed.base), '/auth', { ...check, authorization: `Bearer ${await liveToken()}` })
  t.equal(refused.status, 503)
  t.equal(sample((await scrape(metricsOf(closed))).body, 'vjg_state_failures_total', { failed_open: 'false' }), 1, 'failed closed: 503')
  t.equal(await stop(closed), 0)

  const open = await start(['forward-auth', '--port', '0', '--config', join(dir, 'open.json'), '--metrics-port', '0', '--log-level', 'silent'])
  t.teardown(() => { open.child.kill('SIGKILL') })
  const granted = await rawRequest(portOf(open.base), '/auth', { ...check, authorization: `Bearer ${await liveToken()}` })
  t.equal(granted.status, 200, 'failOpen from the config file')
  t.equal(sample((await scrape(metricsOf(open))).body, 'vjg_state_failures_total', { failed_open: 'true' }), 1, 'failed open: skipped')
  t.equal(await stop(open), 0)
})

t.test('--metrics-port is refused on the guarded port', async t => {
  const port = String(await freePort())
  const result = await run(['serve', '--port', port, '--metrics-port', port, '--public-key', keys.publicPem])
  t.equal(result.code, 2)
  t.match(result.stderr, /--metrics-port: the metrics have their own listener, never the guarded port/)
})
