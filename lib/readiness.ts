/**
 * Readiness beside liveness: `/readyz` answers 200 only when the guard can decide requests: its
 * keys are loaded (a remote key set fetched at least once, an empty key directory is not), and
 * the replay or revocation store, when it has a `ping` (the Redis store), answers within
 * `stateTimeout`. Otherwise 503 with a body naming what is not ready, in words that never hold a
 * key, a URL or a store's own error (which could name a host or a credential).
 *
 * Every guard registers its check under what serves it (the Fastify plugins: the app's
 * `server`; the Express middleware: the middleware function), so one route answers for all the
 * guards of an app: `readiness(app)`.
 */
import type { Awaitable } from './awaitable.js'
import { withTimeout, type GuardStore } from './stores/store.js'

/** What `/readyz` answers: each check `ok`, or why it is not. */
export interface ReadinessReport {
  readonly status: 'ready' | 'not ready'
  readonly checks: Readonly<Record<string, string>>
}

/** One guard's checks, by name: `ok` or the reason. */
export type ReadinessCheck = () => Promise<Record<string, string>>

const registered = new WeakMap<object, ReadinessCheck[]>()

/** Register a guard's check under what serves it (an http.Server, a middleware function). */
export function addReadinessCheck (owner: object, check: ReadinessCheck): void {
  const list = registered.get(owner)
  if (list === undefined) registered.set(owner, [check])
  else list.push(check)
}

const OK = 'ok'

/** The checks of one guard: keys, and each store that can be pinged. */
export function guardReadiness (keysLoaded: () => Awaitable<boolean>, stores: ReadonlyArray<GuardStore | null>, timeout: number): ReadinessCheck {
  const pinged = [...new Set(stores.filter((store): store is GuardStore & { ping (): Promise<void> } => typeof store?.ping === 'function'))]
  return async () => {
    const checks: Record<string, string> = {}
    const [keys, ...answers] = await Promise.all([
      Promise.resolve().then(keysLoaded).catch(() => false),
      ...pinged.map(store => withTimeout(store.ping(), timeout, 'The store').then(() => OK, () => `no answer to PING within ${timeout} ms`))
    ])
    checks.keys = keys ? OK : 'no key is loaded (an empty key set, or the key set URL not fetched yet)'
    if (answers.length > 0) checks.store = answers.find(answer => answer !== OK) ?? OK
    return checks
  }
}

/** A report from checks: ready when every one is `ok`. */
function readinessReport (checks: Readonly<Record<string, string>>): ReadinessReport {
  return { status: Object.values(checks).every(value => value === OK) ? 'ready' : 'not ready', checks }
}

/**
 * The readiness of every guard registered on `owner`: a Fastify app (or its `server`), or an
 * Express middleware made by `expressVonageJwt`. No guard there: not ready (`guard` names it).
 */
export async function readiness (owner: object): Promise<ReadinessReport> {
  const server = (owner as { server?: unknown }).server
  const list = registered.get(owner) ?? (typeof server === 'object' && server !== null ? registered.get(server) : undefined)
  if (list === undefined) return readinessReport({ guard: 'no vonage-jwt-guard is registered here' })
  const checks: Record<string, string> = {}
  for (const found of await Promise.all(list.map(check => check()))) {
    for (const [name, value] of Object.entries(found)) {
      // Several guards: a check is ok only when it is for each of them.
      if (checks[name] === undefined || checks[name] === OK) checks[name] = value
    }
  }
  return readinessReport(checks)
}

/** The answer to a readiness probe: 200 (or `readyStatus`) with the report, else 503 with it. */
export function readinessAnswer (report: ReadinessReport, readyStatus = 200): { statusCode: number, body: string } {
  const ready = report.status === 'ready'
  return { statusCode: ready ? readyStatus : 503, body: ready && readyStatus === 204 ? '' : JSON.stringify(report) }
}

/** What `readyz` needs of a Fastify request and reply (no import of Fastify here). */
interface FastifyLike {
  request: { server: object }
  reply: { code (statusCode: number): unknown, header (name: string, value: string): unknown, type (type: string): unknown, send (body?: string): unknown }
}

/**
 * A Fastify route handler for `/readyz`: 200 with the report when every guard of the app is
 * ready, else 503 with it. Declare the route unguarded:
 * `app.get('/readyz', { config: { jwtGuard: false } }, readyz)`.
 */
export async function readyz (request: FastifyLike['request'], reply: FastifyLike['reply']): Promise<void> {
  const { statusCode, body } = readinessAnswer(await readiness(request.server))
  reply.code(statusCode)
  reply.header('cache-control', 'no-store')
  reply.type('application/json; charset=utf-8')
  reply.send(body)
}
