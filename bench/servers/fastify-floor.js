/**
 * The floor: the least a Fastify plugin can do and still be an RS256 verifier with the ACL.
 * Split, one `crypto.verify` on a KeyObject prepared at startup, JSON.parse, `exp`, precompiled
 * minimatch. None of the strictness of the package (no header, base64url or claim checks).
 * `options.cache`: the verified payloads kept in a Map by token (10,000 at most, the oldest going
 * first), which is what a user would write to serve a token reused: the hand-written cache hit.
 */
import { createPublicKey, verify } from 'node:crypto'
import Fastify from 'fastify'
import { aclGrants, bearerToken, listenFastify, ROUTE_FASTIFY } from './common.js'

const CACHE_MAX = 10_000

export async function start ({ publicKey, options = {} }) {
  const key = createPublicKey(publicKey)
  const cache = options.cache === true ? new Map() : null
  const app = Fastify({ logger: false })
  app.addHook('onRequest', (request, reply, done) => {
    const token = bearerToken(request.headers.authorization)
    let payload = cache?.get(token)
    if (payload === undefined) {
      const second = token === undefined ? -1 : token.lastIndexOf('.')
      if (second === -1) return reply.code(401).send({ error: 'no token' })
      const valid = verify('sha256', Buffer.from(token.slice(0, second)), key, Buffer.from(token.slice(second + 1), 'base64url'))
      if (!valid) return reply.code(401).send({ error: 'invalid signature' })
      payload = JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, second), 'base64url').toString())
      if (cache !== null) {
        if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value)
        cache.set(token, payload)
      }
    }
    if (!(payload.exp > Date.now() / 1000)) return reply.code(401).send({ error: 'expired' })
    if (!aclGrants(payload.acl, request.url)) return reply.code(403).send({ error: 'acl' })
    request.claims = payload
    done()
  })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
