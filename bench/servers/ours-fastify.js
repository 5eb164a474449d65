/** vonage-jwt-guard's Fastify plugin, as a user registers it (ACL enforced). `options.cache`: false turns the cache off; `options.dist`: another build (the baseline). */
import Fastify from 'fastify'
import { load } from '../dist.js'
import { listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start ({ publicKey, options }) {
  const { default: vonageJwtGuard } = await load('index.js', options.dist)
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey, ...(options.cache === false ? { cache: false } : {}) })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
