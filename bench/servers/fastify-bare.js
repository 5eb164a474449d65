/** Fastify with no auth at all: the ceiling. */
import Fastify from 'fastify'
import { listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start () {
  const app = Fastify({ logger: false })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
