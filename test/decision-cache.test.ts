/**
 * forwardAuth's `decisionCacheMax`: how long a proxy may keep a grant (X-Accel-Expires and
 * Cache-Control: private, max-age), at most the option and never past the token's expiry;
 * refusals never; refused at registration with replay.
 */
import Fastify from 'fastify'
import t from 'tap'
import { forwardAuth, type ForwardAuthOptions } from '../lib/forward-auth.js'
import { keys, NOW, NOW_MS, token } from './helpers/keys.js'

async function app (options: Partial<ForwardAuthOptions>): Promise<ReturnType<typeof Fastify>> {
  const fastify = Fastify({ logger: false })
  await fastify.register(forwardAuth, { publicKey: keys.publicPem, now: () => NOW_MS, ...options })
  return fastify
}

t.test('the cache time of a grant: the option, or less when the token expires sooner', async t => {
  const fastify = await app({ decisionCacheMax: 60 })
  t.teardown(() => fastify.close())
  const table: Array<[string, Record<string, unknown>, string, string]> = [
    ['a token with 890 s left', {}, '60', 'private, max-age=60'],
    ['a token with 20 s left', { exp: NOW + 20 }, '20', 'private, max-age=20'],
    ['a token in its last second', { exp: NOW }, '', 'no-store'],
    ['a token inside the clock tolerance only', { exp: NOW - 10 }, '', 'no-store']
  ]
  for (const [name, over, accel, cacheControl] of table) {
    const res = await fastify.inject({ url: '/', headers: { authorization: `Bearer ${await token(over)}`, 'x-original-method': 'GET', 'x-original-uri': '/v1/users/abc' } })
    t.equal(res.statusCode, 200, name)
    t.equal(res.headers['x-accel-expires'], accel === '' ? undefined : accel, `${name}: X-Accel-Expires`)
    t.equal(res.headers['cache-control'], cacheControl, `${name}: Cache-Control`)
  }
  const refused = await fastify.inject({ url: '/', headers: { 'x-original-method': 'GET', 'x-original-uri': '/v1/users/abc' } })
  t.equal(refused.statusCode, 401)
  t.equal(refused.headers['cache-control'], 'no-store')
  t.equal(refused.headers['x-accel-expires'], undefined)
})

t.test('refused at registration: with replay, and out of range', async t => {
  for (const [name, options, message] of [
    ['replay: true', { decisionCacheMax: 10, replay: true }, /decisionCacheMax.*cannot be combined with replay/],
    ['0', { decisionCacheMax: 0 }, /from 1 to 3600/],
    ['a fraction', { decisionCacheMax: 1.5 }, /from 1 to 3600/],
    ['a string', { decisionCacheMax: '10' }, /from 1 to 3600/]
  ] as const) {
    await t.rejects(app(options as Partial<ForwardAuthOptions>), { name: 'TypeError', message }, name)
  }
})
