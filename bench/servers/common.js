/** What every benchmarked server shares: the route, the answer, the Bearer parsing of the peers. */
import { generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:http'
import { Minimatch } from 'minimatch'

export const ROUTE_FASTIFY = '/v1/users/:id'
export const ROUTE_EXPRESS = '/v1/users/:id'

/** Fastify: listen on an ephemeral loopback port. */
export async function listenFastify (app) {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { port: app.server.address().port, close: () => app.close() }
}

/** Express: the same, through node:http. */
export function listenExpress (app) {
  return new Promise((resolve) => {
    const server = createServer(app).listen(0, '127.0.0.1', () => {
      resolve({ port: server.address().port, close: () => new Promise(done => server.close(done)) })
    })
  })
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken (header) {
  if (typeof header !== 'string' || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined
  return header.slice(7)
}

/** `n` RSA-2048 public keys that sign nothing here (key rotation: the signer's comes after them). */
export function otherPublicKeys (n) {
  return Array.from({ length: n }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }))
}

/** The minimatch options the package compiles ACL patterns with (SPEC 3). */
const MINIMATCH_OPTIONS = { dot: true, nobrace: true, noext: true, nonegate: true, nocomment: true, platform: 'linux' }
/**
 * As many compiled patterns as the package keeps (its bound), the oldest going first (a ring of
 * the keys: reading the oldest key from the Map walks over the holes of its deletions): without a
 * bound, tokens with ACLs of their own would fill the heap.
 */
const COMPILED_MAX = 10_000
const compiled = new Map()
const order = []
let oldest = 0

/**
 * The ACL check the jose and floor servers do: each pattern compiled once (precompiled minimatch,
 * in a bounded map), matched against the path without its query. Not the package's strict
 * canonical path, nor its `/**` rule; just what a careful hand-written server would do.
 */
export function aclGrants (acl, url) {
  const paths = acl?.paths
  if (typeof paths !== 'object' || paths === null) return false
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  for (const pattern in paths) {
    let mm = compiled.get(pattern)
    if (mm === undefined) {
      mm = new Minimatch(pattern, MINIMATCH_OPTIONS)
      if (order.length < COMPILED_MAX) {
        order.push(pattern)
      } else {
        compiled.delete(order[oldest])
        order[oldest] = pattern
        oldest = (oldest + 1) % COMPILED_MAX
      }
      compiled.set(pattern, mm)
    }
    if (mm.match(path)) return true
  }
  return false
}
