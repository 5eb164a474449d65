/**
 * A Fastify app that is not ours, shaped like the one issue 27 was measured on from outside: one
 * route, `GET /v1/users/:id`, with a response schema (Fastify compiles it into its serializer),
 * an async handler. `options.guard`: `'ours'` registers the plugin as a user does, with
 * `{ publicKey }` only; `'empty'` adds one callback `onRequest` hook that only calls `done()`
 * (what a hook of the guard's kind costs in Fastify); absent: the app without a guard.
 */
import Fastify from 'fastify'
import { load } from '../dist.js'
import { listenFastify, ROUTE_FASTIFY } from './common.js'

const USER = {
  200: {
    type: 'object',
    properties: { id: { type: 'string' }, name: { type: 'string' }, active: { type: 'boolean' } },
    required: ['id', 'name', 'active']
  }
}

export async function start ({ publicKey, options }) {
  const app = Fastify({ logger: false })
  if (options.guard === 'ours') {
    const { default: vonageJwtGuard } = await load('index.js', options.dist)
    await app.register(vonageJwtGuard, { publicKey })
  } else if (options.guard === 'empty') {
    app.addHook('onRequest', (request, reply, done) => { done() })
  }
  app.get(ROUTE_FASTIFY, { schema: { response: USER } }, async (request) => ({ id: request.params.id, name: 'Alice', active: true }))
  return listenFastify(app)
}
