/** A guarded Fastify app for tests: every route echoes request.auth. */
import Fastify, { type FastifyInstance } from 'fastify'
import vonageJwtGuard, { type FastifyGuardOptions } from '../../lib/index.js'
import { keys, NOW_MS } from './keys.js'

export async function buildApp (options: Partial<FastifyGuardOptions> = {}, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS, ...options })
  if (routes !== undefined) {
    routes(app)
  } else {
    app.all('/*', async (request) => ({ auth: request.auth }))
  }
  await app.ready()
  return app
}

/** buildApp, closed when the test ends. */
export async function appFor (t: { teardown: (fn: () => unknown) => void }, options: Partial<FastifyGuardOptions> = {}): Promise<FastifyInstance> {
  const app = await buildApp(options)
  t.teardown(() => app.close())
  return app
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}
