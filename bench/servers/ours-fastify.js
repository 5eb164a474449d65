/**
 * vonage-jwt-guard's Fastify plugin, as a user registers it (ACL enforced). `options.cache`: false
 * turns the cache off; `options.keys`: that many public keys, the signer's last (key rotation);
 * `options.dist`: another build (the baseline).
 */
import Fastify from 'fastify'
import { load } from '../dist.js'
import { listenFastify, otherPublicKeys, ROUTE_FASTIFY } from './common.js'

export async function start ({ publicKey, options }) {
  const { default: vonageJwtGuard } = await load('index.js', options.dist)
  const app = Fastify({ logger: false })
  const keys = options.keys === undefined ? publicKey : [...otherPublicKeys(options.keys - 1), publicKey]
  await app.register(vonageJwtGuard, { publicKey: keys, ...(options.cache === false ? { cache: false } : {}) })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
