/**
 * docs/fastify.md's limit per subject: `@fastify/rate-limit` with a `keyGenerator` that reads
 * `request.auth`, registered after the guard (its route hooks run after the guard's `onRequest`).
 */
import rateLimit from '@fastify/rate-limit'
import Fastify from 'fastify'
import t from 'tap'
import vonageJwtGuard from '../lib/index.js'
import { NOW_MS, keys, token } from './helpers/keys.js'

t.test('a keyGenerator reading request.auth limits each subject; refusals and unguarded routes do not count', async t => {
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  await app.register(rateLimit, {
    max: 2,
    timeWindow: '1 minute',
    keyGenerator: (request) => request.auth?.claims.sub ?? request.auth?.claims.application_id ?? request.ip,
    allowList: (request) => request.auth === null
  })
  app.get('/healthz', { config: { jwtGuard: false } }, async () => ({ status: 'ok' }))
  app.get('/v1/users/:id', async (request) => ({ sub: request.auth?.claims.sub }))
  t.teardown(() => app.close())
  const as = async (jwt: string | undefined, url = '/v1/users/abc'): Promise<{ statusCode: number, headers: Record<string, unknown>, json: () => unknown }> =>
    await app.inject({ url, headers: jwt === undefined ? {} : { authorization: `Bearer ${jwt}` } })
  const alice = await token({ sub: 'alice' })
  t.equal((await as(undefined)).statusCode, 401, 'refused by the guard first')
  for (let i = 0; i < 3; i++) t.equal((await as(undefined, '/healthz')).statusCode, 200, 'unguarded: not counted')
  t.equal((await as(alice)).statusCode, 200)
  t.equal((await as(await token({ sub: 'alice' }))).statusCode, 200, 'another token, same subject')
  const over = await as(alice)
  t.equal(over.statusCode, 429)
  t.ok(Number(over.headers['retry-after']) > 0, 'Retry-After')
  t.equal((await as(await token({ sub: 'bob' }))).statusCode, 200, 'bob counts on his own')
})
