/**
 * @fastify/jwt in verify-only mode with a global onRequest hook, as its README shows. It checks
 * the signature and `exp`, not the ACL. `options.cache`: true turns on its LRU (1000 entries).
 */
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start ({ publicKey, options }) {
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, {
    secret: { public: publicKey },
    verify: { algorithms: ['RS256'], ...(options.cache === true ? { cache: true } : {}) }
  })
  app.addHook('onRequest', async (request) => {
    await request.jwtVerify()
  })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
