/**
 * `vonage-jwt-guard/redis`: the store several instances share, on ioredis.
 *
 * - Replay: `SET <key> 1 NX PX <ms>`, atomic, so of N concurrent requests with one jti across any
 *   number of instances exactly one wins.
 * - Revocation: `GET`s of the jti and subject entries. Replay and revocation of one request go
 *   out in one pipeline: one round trip per request at most.
 * - Every call waits at most `timeout` (default 1 s), the wait for a connection included:
 *   commands are never parked in an offline queue, so a request is never hung by a dead Redis
 *   and a jti is not recorded minutes later by a queued command.
 * - TTLs are relative (`PX`) and computed on the guard's clock, so an injected clock and the
 *   Redis server's clock need not agree.
 */
import { Redis } from 'ioredis'
import { invalidOption } from '../errors.js'
import { checkEntry, DEFAULT_STORE_MAX_LIFETIME, EXPIRY_MARGIN, StoreTimeoutError, withTimeout, type GuardStore, type StoreAnswer, type StoreQuery } from './store.js'

/** One UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/**
 * A replay scope (the token's application_id) as a key segment, percent-encoded so that a ':' in
 * it cannot run into the jti. A JSON string may hold a lone surrogate (`"\ud800"`), which has no
 * UTF-8 form: encodeURIComponent throws on it (a token that verified would get a 503), and Redis
 * would store U+FFFD anyway (as it does for such a jti or sub). So it is written as U+FFFD here;
 * two scopes that differ only there share their replay records, which can refuse a token as
 * replayed, never let one through twice.
 */
function scopeSegment (scope: string): string {
  return encodeURIComponent(scope.replace(LONE_SURROGATE, '\ufffd'))
}

export interface RedisStoreOptions {
  /** An ioredis client you own (you also close it). Give `client` or `url`. */
  client?: Redis
  /** A Redis URL (`redis://host:port/db`, `rediss://` for TLS); the store owns the client and `close()` ends it. */
  url?: string
  /** Prefix of every key the store writes. @default 'vjg:' */
  prefix?: string
  /** Longest wait for one call, in ms, connecting included; past it the call rejects (the guard answers 503). @default 1000 */
  timeout?: number
  /** Seconds a subject revocation lasts past its `issuedBefore`: the longest token lifetime accepted. @default 86400 */
  maxLifetime?: number
  /** The clock, in milliseconds, for the TTL of revocations. @default Date.now */
  now?: () => number
}

export interface RedisStore extends GuardStore {
  check (query: StoreQuery): Promise<StoreAnswer>
  revokeToken (jti: string, expiresAt: number): Promise<void>
  revokeSubject (sub: string, issuedBefore: number): Promise<void>
  readonly maxLifetime: number
  readonly client: Redis
  /** Ends the client when the store created it from `url`; leaves a given `client` alone. */
  close (): Promise<void>
}

/** Set KEYS[1] to ARGV[1] for ARGV[2] ms unless it already holds a value at least as large: a revocation is never shortened. */
const EXTEND_ONLY = `local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

function invalid (name: string, message: string): never {
  invalidOption(name, `of createRedisStore ${message}`)
}

/** A Redis-backed store for replay protection and revocation, shared by every instance that uses the same Redis and prefix. */
export function createRedisStore (options: RedisStoreOptions): RedisStore {
  if (typeof (options as unknown) !== 'object' || (options as unknown) === null) invalid('options', 'must be { client } or { url }')
  const { prefix = 'vjg:', timeout = 1000, maxLifetime = DEFAULT_STORE_MAX_LIFETIME, now = Date.now } = options
  if (options.client !== undefined && options.url !== undefined) invalid('client', 'cannot be combined with "url": give exactly one of them')
  if (options.client !== undefined && !(options.client instanceof Redis)) invalid('client', 'must be an ioredis Redis client')
  if (options.url !== undefined && (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url))) invalid('url', 'must be a redis:// or rediss:// URL')
  if (typeof prefix !== 'string') invalid('prefix', 'must be a string')
  if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > 60_000) invalid('timeout', 'must be an integer number of ms from 1 to 60000')
  if (!Number.isSafeInteger(maxLifetime) || maxLifetime < 1) invalid('maxLifetime', 'must be a positive integer (seconds)')
  if (typeof now !== 'function') invalid('now', 'must be a function')

  const owned = options.client === undefined
  let client: Redis
  if (options.client !== undefined) {
    client = options.client
  } else if (options.url !== undefined) {
    client = new Redis(options.url, {
      // Never queue a command while disconnected: the caller waits for `ready` within its timeout instead.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(timeout, 1000),
      retryStrategy: (times: number) => Math.min(times * 100, 2000)
    })
  } else {
    invalid('client', '(or "url") is required: give exactly one of them')
  }
  // Connection errors surface to requests as timeouts (503); an owned client must not crash the process with them.
  if (owned) client.on('error', () => {})

  let pendingReady: Promise<void> | undefined
  function ready (): Promise<void> {
    if (client.status === 'ready') return Promise.resolve()
    if (client.status === 'wait') client.connect().catch(() => {})
    pendingReady ??= new Promise<void>((resolve) => {
      client.once('ready', () => {
        pendingReady = undefined
        resolve()
      })
    })
    return pendingReady
  }

  const keys = {
    used: (scope: string, jti: string) => `${prefix}used:${scopeSegment(scope)}:${jti}`,
    token: (jti: string) => `${prefix}revoked:jti:${jti}`,
    subject: (sub: string) => `${prefix}revoked:sub:${sub}`
  }

  /** Wait for the connection, but send nothing once the caller has given up (`deadline`, real ms). */
  async function connected (deadline: number): Promise<void> {
    await ready()
    if (Date.now() >= deadline) throw new StoreTimeoutError('The Redis store', timeout)
  }

  async function run (query: StoreQuery, deadline: number): Promise<StoreAnswer> {
    await connected(deadline)
    const pipeline = client.pipeline()
    const revokedKeys: string[] = []
    const { revoked, consume } = query
    if (revoked !== undefined) {
      if (revoked.jti !== undefined) revokedKeys.push(keys.token(revoked.jti))
      if (revoked.sub !== undefined) revokedKeys.push(keys.subject(revoked.sub))
      if (revokedKeys.length > 0) pipeline.mget(revokedKeys)
    }
    if (consume !== undefined) {
      const ttl = Math.max(1, Math.ceil(consume.until - query.now))
      pipeline.set(keys.used(consume.scope, consume.jti), '1', 'PX', ttl, 'NX')
    }
    if (pipeline.length === 0) return { replayed: false, revoked: false }
    const replies = await pipeline.exec()
    if (replies === null) throw new Error('The Redis pipeline was discarded')
    for (const [error] of replies) if (error !== null) throw error
    // The replies in the order sent: the MGET of the revocation keys when there were any, then the SET.
    const [first, second] = replies
    let isRevoked = false
    if (revoked !== undefined && revokedKeys.length > 0) {
      const values = first?.[1] as Array<string | null>
      const tokenValue = revoked.jti !== undefined ? values.shift() : null
      const subjectValue = revoked.sub !== undefined ? values.shift() : null
      const iat = revoked.iat
      isRevoked = (tokenValue !== null && tokenValue !== undefined) ||
        (subjectValue !== null && subjectValue !== undefined && (iat === undefined || iat < Number(subjectValue)))
    }
    const setReply = revokedKeys.length > 0 ? second : first
    const replayed = consume !== undefined && setReply?.[1] === null
    return { replayed, revoked: isRevoked }
  }

  async function extend (key: string, value: number, until: number, deadline: number): Promise<void> {
    const ttl = Math.ceil(until - now())
    if (ttl <= 0) return
    await connected(deadline)
    await client.eval(EXTEND_ONLY, 1, key, String(value), String(ttl))
  }

  return Object.freeze({
    client,
    maxLifetime,
    shared: true,
    check: (query: StoreQuery) => withTimeout(run(query, Date.now() + timeout), timeout, 'The Redis store'),
    revokeToken: async (jti: string, expiresAt: number) => {
      checkEntry(jti, 'revokeToken(jti)', expiresAt, 'revokeToken(expiresAt)')
      const until = (expiresAt + EXPIRY_MARGIN) * 1000
      await withTimeout(extend(keys.token(jti), expiresAt, until, Date.now() + timeout), timeout, 'The Redis store')
    },
    revokeSubject: async (sub: string, issuedBefore: number) => {
      checkEntry(sub, 'revokeSubject(sub)', issuedBefore, 'revokeSubject(issuedBefore)')
      const until = (issuedBefore + maxLifetime + EXPIRY_MARGIN) * 1000
      await withTimeout(extend(keys.subject(sub), issuedBefore, until, Date.now() + timeout), timeout, 'The Redis store')
    },
    close: async () => {
      if (!owned) return
      if (client.status === 'ready') await client.quit().catch(() => { client.disconnect() })
      else client.disconnect()
    }
  })
}
