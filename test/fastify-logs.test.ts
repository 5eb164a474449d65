/**
 * A Fastify app with its own logger (`logger: true`) writes one line per refusal, the guard's,
 * without a stack: Fastify's default error handler would log each one again, at info with its
 * stack. A handler of the user's (setErrorHandler, a route's errorHandler) still gets the error.
 */
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import vonageJwtGuard, { isGuardError } from '../lib/index.js'
import { bearer } from './helpers/app.js'
import { keys, NOW, NOW_MS, token } from './helpers/keys.js'
import { REALM } from './helpers/scenarios.js'

/** An app on Fastify's own logger, at info (what `logger: true` is), its lines kept. */
async function loggedApp (setup: (app: FastifyInstance) => void = () => {}, options: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  setup(app)
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, ...options })
  app.get('/*', async () => 'ok')
  app.get('/manual', { config: { jwtGuard: false }, onRequest: app.jwtGuard.authenticate }, async () => 'ok')
  return { app, lines }
}

/** The lines of one request other than Fastify's `incoming request` and `request completed`. */
const refusalLines = (lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> =>
  lines.filter(line => line.msg !== 'incoming request' && line.msg !== 'request completed')

t.test('a refusal is one line, at info, with its code and no stack; the answer is Fastify\'s default one', async t => {
  const { app, lines } = await loggedApp()
  const expired = await token({ iat: NOW - 5000, exp: NOW - 4000 })
  const cases = [
    { url: '/v1/users', headers: {}, status: 401, code: 'VJG_TOKEN_MISSING' },
    { url: '/v1/users', headers: bearer(expired), status: 401, code: 'VJG_TOKEN_EXPIRED' },
    { url: '/v1/calls', headers: bearer(await token()), status: 403, code: 'VJG_ACL_DENIED' },
    { url: '/manual', headers: {}, status: 401, code: 'VJG_TOKEN_MISSING' }
  ]
  for (const { url, headers, status, code } of cases) {
    lines.length = 0
    const res = await app.inject({ url, headers })
    t.equal(res.statusCode, status, `${url} ${code}`)
    t.equal(res.json().code, code)
    t.same(Object.keys(res.json()), ['statusCode', 'code', 'error', 'message'])
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(res.headers['www-authenticate'], REALM)
    const logged = refusalLines(lines)
    t.equal(logged.length, 1, `one line for ${code}: ${JSON.stringify(logged)}`)
    t.match(logged[0], { level: 30, code, statusCode: status })
    t.notOk(JSON.stringify(lines).includes('"stack"'), 'no stack in any line')
  }
  await app.close()
})

t.test('a handler of the user\'s still gets the refusal', async t => {
  const { app } = await loggedApp((app) => {
    app.setErrorHandler((error, _request, reply) => {
      reply.code(isGuardError(error) ? error.statusCode : 500).send({ mine: isGuardError(error) ? error.code : 'other' })
    })
  })
  t.same((await app.inject({ url: '/v1/users' })).json(), { mine: 'VJG_TOKEN_MISSING' })
  t.same((await app.inject({ url: '/manual' })).json(), { mine: 'VJG_TOKEN_MISSING' }, 'from the decorator too')
  await app.close()

  const routed = await loggedApp()
  routed.app.get('/own', { errorHandler: (error, _request, reply) => { reply.code(418).send({ route: (error as { code?: string }).code }) } }, async () => 'ok')
  t.same((await routed.app.inject({ url: '/own' })).json(), { route: 'VJG_TOKEN_MISSING' }, 'a route\'s own errorHandler')
  await routed.app.close()
})
