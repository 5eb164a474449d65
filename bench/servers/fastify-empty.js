/**
 * Fastify with one onRequest hook that only calls done(): what any hook costs (Fastify runs no
 * hook machinery for a request when no hook is registered). The guard is such a hook, so this is
 * the ceiling no onRequest hook passes.
 */
import Fastify from 'fastify'
import { listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start () {
  const app = Fastify({ logger: false })
  app.addHook('onRequest', (request, reply, done) => { done() })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
