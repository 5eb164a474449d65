/**
 * `--rate-limit N/window` and `--rate-limit-by sub|app` for `serve`, `mock` and `proxy`: a limit
 * per verified subject (or application), through `@fastify/rate-limit`, counted in Redis when
 * one is configured (`--redis-url` and its kin), so every instance shares the count. Only
 * granted requests count (the guard's hook runs first; a refusal never reaches the limit), and
 * an unguarded route (the health route) is not limited. Over the limit: 429 `VJG_RATE_LIMITED`
 * with `Retry-After`, in the guard's error shape; a count that cannot be made (Redis down) is
 * 503 `VJG_UNAVAILABLE`, unless the guard fails open.
 */
import createError from '@fastify/error'
import type { Command } from 'commander'
import { Option } from 'commander'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AuthResult } from 'vonage-jwt-guard'
import type { ResolvedGuard } from './guard-options.js'
import { UsageError } from './shared.js'
import { upstreamErrorBody } from './upstream-errors.js'

/** 429: the subject or application sent more requests than `--rate-limit` allows in its window. */
const RateLimitedError = createError('VJG_RATE_LIMITED', '%s', 429)
/** 503: the count could not be made (the Redis store did not answer). */
const UncountedError = createError('VJG_UNAVAILABLE', 'The rate limit could not be counted', 503)

const UNITS: Readonly<Record<string, number>> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }

export interface RateLimit {
  readonly max: number
  /** Ms. */
  readonly window: number
  /** The unit as given: `minute`. */
  readonly unit: string
  readonly by: 'sub' | 'app'
}

/**
 * `N/second`, `N/minute`, `N/hour` or `N/day` (`s`, `m`, `h`, `d` too), N from 1 to 1,000,000,000.
 * @throws {UsageError} one line, exit 2
 */
export function parseRateLimit (spec: string, by: 'sub' | 'app'): RateLimit {
  const match = /^([1-9][0-9]{0,9})\/(second|minute|hour|day|s|m|h|d)$/.exec(spec)
  const max = match === null ? Number.NaN : Number(match[1])
  if (match === null || max > 1_000_000_000) {
    throw new UsageError(`--rate-limit: "${spec.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)}" is not N/window: give e.g. 100/minute or 10/second (second, minute, hour, day)`)
  }
  const short: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day' }
  const unit = short[match[2]!] ?? match[2]!
  return { max, window: UNITS[unit]!, unit, by }
}

export function addRateLimitFlags (command: Command): Command {
  return command
    .option('--rate-limit <n/window>', 'at most N granted requests per window (second, minute, hour, day) for each verified sub (or application: --rate-limit-by app); counted in Redis when one is configured')
    .addOption(new Option('--rate-limit-by <key>', 'what --rate-limit counts by: the token\'s sub (a token without one counts for its application), or its application').choices(['sub', 'app']).default('sub'))
}

/** The bucket of a granted request; undefined: not limited (an unguarded route). */
function bucketOf (auth: AuthResult | null, by: 'sub' | 'app'): string | undefined {
  if (auth === null) return undefined
  const claims = auth.claims as Record<string, unknown>
  const app = claims.application_id ?? claims.iss ?? claims.api_key
  const appKey = `app:${typeof app === 'string' || typeof app === 'number' ? String(app) : ''}`
  if (by === 'app') return appKey
  return typeof claims.sub === 'string' ? `sub:${claims.sub}` : appKey
}

export interface RateLimitSettings {
  readonly limit: RateLimit
  /** The Redis client of the guard's store and its key prefix; undefined: counted in this process. */
  readonly redis?: { readonly client: unknown, readonly prefix: string, ping (): Promise<void> }
  readonly errorFormat: 'fastify' | 'problem'
  /** The guard's failOpen: a count that cannot be made lets the request through (logged at warn). */
  readonly failOpen: boolean
}

/**
 * The limit on `app`, whose guard is registered: a hook after the guard's, on every route
 * (Fastify builds a route's hooks when the app is readied, so routes already declared get it).
 */
export async function installRateLimit (app: FastifyInstance, settings: RateLimitSettings): Promise<void> {
  const { default: rateLimit } = await import('@fastify/rate-limit')
  const { limit, redis, errorFormat, failOpen } = settings
  const what = limit.by === 'app' ? 'application' : 'subject'
  // A store connects on first use: connect now, so the first requests are counted, not refused.
  if (redis !== undefined) await redis.ping().catch(() => {})
  await app.register(rateLimit, {
    global: false,
    max: limit.max,
    timeWindow: limit.window,
    keyGenerator: (request) => bucketOf(request.auth, limit.by) ?? '',
    allowList: (request) => request.auth === null,
    ...(redis === undefined ? {} : { redis: redis.client, nameSpace: `${redis.prefix}rate-limit:` }),
    errorResponseBuilder: (_request, context) => new RateLimitedError(`Too many requests for this ${what}: at most ${limit.max} per ${limit.unit}, try again in ${Math.max(1, Math.ceil(context.ttl / 1000))} s`)
  })
  const limiter = app.rateLimit()
  const refuse = (request: FastifyRequest, reply: FastifyReply, error: Error & { code: string, statusCode: number }): FastifyReply => {
    request.log.info({ code: error.code, statusCode: error.statusCode }, `vonage-jwt-guard: ${error.message}`)
    if (errorFormat === 'problem') reply.type('application/problem+json')
    return reply.code(error.statusCode).send(upstreamErrorBody(error as never, errorFormat, String(request.id)))
  }
  app.addHook('onRequest', async (request, reply) => {
    try {
      await limiter.call(app, request, reply)
    } catch (error) {
      if (error instanceof RateLimitedError) return refuse(request, reply, error as Error & { code: string, statusCode: number })
      if (failOpen) {
        request.log.warn({ err: error }, 'vonage-jwt-guard: the rate limit could not be counted and was skipped (failOpen)')
        return undefined
      }
      request.log.error({ err: error }, 'vonage-jwt-guard: the rate limit could not be counted')
      return refuse(request, reply, new UncountedError() as Error & { code: string, statusCode: number })
    }
    return undefined
  })
}

/**
 * The settings of `--rate-limit` for a server command, or undefined without it. Each worker of
 * `--workers` would count on its own without Redis: refused, as replay on the memory store is.
 * @throws {UsageError}
 */
export function rateLimitSettings (flags: { rateLimit?: string, rateLimitBy?: 'sub' | 'app', workers: number }, guard: ResolvedGuard): RateLimitSettings | undefined {
  if (flags.rateLimit === undefined) return undefined
  const limit = parseRateLimit(flags.rateLimit, flags.rateLimitBy ?? 'sub')
  if (guard.redis === null && flags.workers > 1) {
    throw new UsageError(`--rate-limit with --workers ${flags.workers} needs a shared store (--redis-url, --redis-cluster or --redis-sentinels): each worker would count on its own, allowing ${flags.workers} times the limit`)
  }
  return {
    limit,
    ...(guard.redis === null ? {} : { redis: guard.redis }),
    errorFormat: guard.options.errorFormat ?? 'fastify',
    failOpen: guard.options.failOpen === true
  }
}
