/** The floor plugin with `crypto.verify` given a callback (RSA on the libuv thread pool): the experiment of issue 5. */
import { createPublicKey, verify } from 'node:crypto'
import Fastify from 'fastify'
import { aclGrants, bearerToken, listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start ({ publicKey }) {
  const key = createPublicKey(publicKey)
  const app = Fastify({ logger: false })
  app.addHook('onRequest', (request, reply, done) => {
    const token = bearerToken(request.headers.authorization)
    const second = token === undefined ? -1 : token.lastIndexOf('.')
    if (second === -1) return reply.code(401).send({ error: 'no token' })
    verify('sha256', Buffer.from(token.slice(0, second)), key, Buffer.from(token.slice(second + 1), 'base64url'), (error, valid) => {
      if (error !== null || !valid) return reply.code(401).send({ error: 'invalid signature' })
      const payload = JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, second), 'base64url').toString())
      if (!(payload.exp > Date.now() / 1000)) return reply.code(401).send({ error: 'expired' })
      if (!aclGrants(payload.acl, request.url)) return reply.code(403).send({ error: 'acl' })
      request.claims = payload
      done()
    })
  })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
