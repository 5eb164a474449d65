/**
 * Fastify + jose's jwtVerify (key imported once) + the ACL with precompiled minimatch: what a
 * careful user would write by hand with the usual libraries.
 */
import Fastify from 'fastify'
import { importSPKI, jwtVerify } from 'jose'
import { aclGrants, bearerToken, listenFastify, ROUTE_FASTIFY } from './common.js'

export async function start ({ publicKey }) {
  const key = await importSPKI(publicKey, 'RS256')
  const app = Fastify({ logger: false })
  app.addHook('onRequest', async (request, reply) => {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) return reply.code(401).send({ error: 'no token' })
    let payload
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: ['RS256'] }))
    } catch {
      return reply.code(401).send({ error: 'invalid token' })
    }
    if (!aclGrants(payload.acl, request.url)) return reply.code(403).send({ error: 'acl' })
    request.claims = payload
  })
  app.get(ROUTE_FASTIFY, async (request) => ({ id: request.params.id }))
  return listenFastify(app)
}
