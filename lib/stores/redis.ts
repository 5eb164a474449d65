/**
 * `vonage-jwt-guard/redis`: the store several instances share, on ioredis: one Redis node, a
 * Sentinel-managed primary, or a Redis Cluster, each through ioredis's own support.
 *
 * - Replay: `SET <key> 1 NX PX <ms>`, atomic, so of N concurrent requests with one jti across any
 *   number of instances exactly one wins.
 * - Revocation: `GET`s of the jti and subject entries. On one node (Sentinel included) replay and
 *   revocation of one request go out in one pipeline: one round trip per request at most. On a
 *   cluster no command touches two keys (the keys of one request are in different hash slots), so
 *   each goes to its own slot, all at once: up to three commands in parallel, one round trip of
 *   latency. The key names are the same in every mode, so no hash tag was needed and revocations
 *   written by an earlier version still count.
 * - `replayDurability: 'replica'`: the write is followed by `WAIT 1 <ms>` on the same connection;
 *   a record or revocation no replica acknowledged in time is a failure (503), never an acceptance.
 * - Every call waits at most `timeout` (default 1 s), the wait for a connection included:
 *   commands are never parked in an offline queue, so a request is never hung by a dead Redis
 *   and a jti is not recorded minutes later by a queued command.
 * - TTLs are relative (`PX`) and computed on the guard's clock, so an injected clock and the
 *   Redis server's clock need not agree.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
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

/**
 * When a write counts: `'leader'` once the primary acknowledged it (a failover right after may
 * lose it: the same jti can then be accepted twice), `'replica'` once a replica has it too
 * (`WAIT 1`), at the cost of that wait on every write.
 */
export type ReplayDurability = 'leader' | 'replica'

/** A Sentinel's address. */
export interface SentinelAddress {
  host: string
  port: number
}

/** Where the store reports its failures, once per cause: a Fastify or pino logger, or `console`. */
export interface StoreLogger {
  warn (object: Record<string, unknown>, message: string): void
}

export interface RedisStoreOptions {
  /** An ioredis client you own (you also close it): a `Redis` (one node, or Sentinel) or a `Cluster`. Give one of `client`, `url`, `sentinels`. */
  client?: Redis | Cluster
  /**
   * A Redis URL (`redis://host:port/db`, `rediss://` for TLS), or a list of them: the seed nodes
   * of a Redis Cluster (user and password taken from the first). The store owns the client and
   * `close()` ends it.
   */
  url?: string | readonly string[]
  /** The Sentinels that watch the primary called `name`; the store follows a failover. The store owns the client. */
  sentinels?: readonly SentinelAddress[]
  /** The primary's name in the Sentinels' configuration (with `sentinels`). */
  name?: string
  /** Prefix of every key the store writes. @default 'vjg:' */
  prefix?: string
  /** Longest wait for one call, in ms, connecting included; past it the call rejects (the guard answers 503). @default 1000 */
  timeout?: number
  /** Seconds a subject revocation lasts past its `issuedBefore`: the longest token lifetime accepted. @default 86400 */
  maxLifetime?: number
  /** The clock, in milliseconds, for the TTL of revocations. @default Date.now */
  now?: () => number
  /**
   * When a replay record or a revocation counts: `'leader'` (the primary has it) or `'replica'`
   * (one replica has it too, `WAIT 1`; otherwise the request is refused as unavailable and a
   * revocation call rejects). @default 'leader'
   */
  replayDurability?: ReplayDurability
  /** Where failures are logged at warn, once per cause until the store answers again. @default none */
  logger?: StoreLogger
}

export interface RedisStore extends GuardStore {
  check (query: StoreQuery): Promise<StoreAnswer>
  revokeToken (jti: string, expiresAt: number): Promise<void>
  revokeSubject (sub: string, issuedBefore: number): Promise<void>
  readonly maxLifetime: number
  readonly replayDurability: ReplayDurability
  readonly client: Redis | Cluster
  /** Ends the client when the store created it (`url`, `sentinels`); leaves a given `client` alone. */
  close (): Promise<void>
  /** `PING`, within the store's timeout: rejects when Redis does not answer (readiness). */
  ping (): Promise<void>
}

/** A write no replica acknowledged within the time left (`replayDurability: 'replica'`): the guard answers 503. */
export class StoreDurabilityError extends Error {
  override readonly name = 'StoreDurabilityError'
  constructor (ms: number) {
    super(`No replica acknowledged the Redis store's write within ${ms} ms`)
  }
}

/** Set KEYS[1] to ARGV[1] for ARGV[2] ms unless it already holds a value at least as large: a revocation is never shortened. */
const EXTEND_ONLY = `local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

function invalid (name: string, message: string): never {
  invalidOption(name, `of createRedisStore ${message}`)
}

const REDIS_URL = /^rediss?:\/\//

/** The seed nodes of a cluster from `url: [...]`, and the connection options they share. */
function clusterSeeds (urls: readonly unknown[]): { nodes: Array<{ host: string, port: number }>, redisOptions: RedisOptions } {
  if (urls.length === 0) invalid('url', 'must be a URL or a non-empty list of cluster node URLs')
  const parsed = urls.map((url) => {
    if (typeof url !== 'string' || !REDIS_URL.test(url)) invalid('url', 'must list redis:// or rediss:// URLs')
    try {
      return new URL(url)
    } catch {
      invalid('url', 'must list valid redis:// or rediss:// URLs')
    }
  })
  const [first] = parsed as [URL, ...URL[]]
  if (parsed.some(url => url.protocol !== first.protocol)) invalid('url', 'must list URLs of one scheme: all redis:// or all rediss://')
  const nodes = parsed.map(url => ({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) }))
  const redisOptions: RedisOptions = {}
  if (first.username !== '') redisOptions.username = decodeURIComponent(first.username)
  if (first.password !== '') redisOptions.password = decodeURIComponent(first.password)
  if (first.protocol === 'rediss:') redisOptions.tls = {}
  return { nodes, redisOptions }
}

function checkSentinels (sentinels: unknown, name: unknown): void {
  if (!Array.isArray(sentinels) || sentinels.length === 0) invalid('sentinels', 'must be a non-empty list of { host, port }')
  for (const sentinel of sentinels as unknown[]) {
    const { host, port } = (sentinel ?? {}) as Record<string, unknown>
    if (typeof host !== 'string' || host === '' || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535) {
      invalid('sentinels', 'must be a non-empty list of { host, port } (port from 1 to 65535)')
    }
  }
  if (typeof name !== 'string' || name === '') invalid('name', 'must be the primary\'s name in the Sentinels\' configuration (a non-empty string)')
}

/** The first word of a Redis error (`READONLY`, `CROSSSLOT`, `MOVED`, `CLUSTERDOWN`), else the error's name or message: what "once per cause" counts. */
function causeOf (error: unknown): string {
  if (!(error instanceof Error)) return typeof error
  const code = /^([A-Z][A-Z_]{2,})\b/.exec(error.message)?.[1]
  if (code !== undefined) return code
  // ioredis's own errors are plain Errors whose message may end in an address: its first clause names the cause.
  return error.name === 'Error' ? (error.message.split(/[.:]/)[0] ?? '').slice(0, 80) : error.name
}

/** A Redis-backed store for replay protection and revocation, shared by every instance that uses the same Redis and prefix. */
export function createRedisStore (options: RedisStoreOptions): RedisStore {
  if (typeof (options as unknown) !== 'object' || (options as unknown) === null) invalid('options', 'must be { client }, { url } or { sentinels, name }')
  const { prefix = 'vjg:', timeout = 1000, maxLifetime = DEFAULT_STORE_MAX_LIFETIME, now = Date.now, replayDurability = 'leader', logger } = options
  const given = (['client', 'url', 'sentinels'] as const).filter(name => options[name] !== undefined)
  const [one, other] = given
  if (one !== undefined && other !== undefined) invalid(other, `cannot be combined with "${one}": give exactly one of client, url and sentinels`)
  if (one === undefined) invalid('client', '(or "url", or "sentinels" with "name") is required: give exactly one of them')
  if (options.client !== undefined && !(options.client instanceof Redis) && !(options.client instanceof Cluster)) invalid('client', 'must be an ioredis Redis or Cluster client')
  if (options.url !== undefined && !Array.isArray(options.url) && (typeof options.url !== 'string' || !REDIS_URL.test(options.url))) invalid('url', 'must be a redis:// or rediss:// URL, or a list of them (cluster nodes)')
  if (options.sentinels !== undefined) checkSentinels(options.sentinels, options.name)
  else if (options.name !== undefined) invalid('name', 'goes with "sentinels"')
  if (typeof prefix !== 'string') invalid('prefix', 'must be a string')
  if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > 60_000) invalid('timeout', 'must be an integer number of ms from 1 to 60000')
  if (!Number.isSafeInteger(maxLifetime) || maxLifetime < 1) invalid('maxLifetime', 'must be a positive integer (seconds)')
  if (typeof now !== 'function') invalid('now', 'must be a function')
  if (!['leader', 'replica'].includes(replayDurability)) invalid('replayDurability', 'must be \'leader\' or \'replica\'')
  if (logger !== undefined && typeof (logger as Partial<StoreLogger> | null)?.warn !== 'function') invalid('logger', 'must have a warn(object, message) method (a Fastify or pino logger, or console)')

  const owned = options.client === undefined
  // Never queue a command while disconnected: the caller waits for `ready` within its timeout instead.
  const connection = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(timeout, 1000),
    retryStrategy: (times: number) => Math.min(times * 100, 1000)
  } satisfies RedisOptions
  let client: Redis | Cluster
  if (options.client !== undefined) {
    client = options.client
  } else if (Array.isArray(options.url)) {
    const { nodes, redisOptions } = clusterSeeds(options.url as readonly unknown[])
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: connection.retryStrategy,
      // A slot map older than a failover sends commands to a dead or demoted node until it is refreshed.
      slotsRefreshTimeout: Math.max(Math.min(timeout, 1000), 100),
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      redisOptions: { ...redisOptions, connectTimeout: connection.connectTimeout, maxRetriesPerRequest: 1 }
    }
    client = new Cluster(nodes, clusterOptions)
  } else if (options.sentinels !== undefined) {
    client = new Redis({
      ...connection,
      sentinels: options.sentinels.map(({ host, port }) => ({ host, port })),
      name: options.name,
      sentinelRetryStrategy: connection.retryStrategy,
      // Reconnect as soon as a Sentinel announces a new primary, not at the old one's first error.
      failoverDetector: true,
      // A primary demoted to replica answers writes with READONLY: reconnect, which asks the Sentinels again.
      reconnectOnError: (error: Error) => error.message.startsWith('READONLY') ? 1 : false
    })
  } else {
    client = new Redis(options.url as string, connection)
  }
  // Connection errors surface to requests as timeouts (503); an owned client must not crash the process with them.
  if (owned) client.on('error', () => {})
  const isCluster = client instanceof Cluster
  const replica = replayDurability === 'replica'

  let closed = false
  let pendingReady: Promise<void> | undefined
  function ready (): Promise<void> {
    if (client.status === 'ready') return Promise.resolve()
    // A client that gave up ('end') is started again, unless close() ended it. Our own code
    // because ioredis 5.11 ends a Sentinel client for good when its failover detector fires
    // while the client is still reconnecting (measured: every request 503 after a failover).
    if (client.status === 'wait' || (client.status === 'end' && owned && !closed)) client.connect().catch(() => {})
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

  /**
   * The `WAIT` timeout: half of what is left of the call's time. Redis notices a blocked client's
   * timeout only at its next tick (up to 100 ms late at the default hz 10), and WAIT must answer
   * before the caller gives up, for the refusal to say what failed. Never 0: `WAIT 1 0` blocks forever.
   */
  function waitMs (deadline: number): number {
    return Math.max(1, Math.floor((deadline - Date.now()) / 2))
  }

  /** The replies of a pipeline, each error thrown (the first one). */
  function repliesOf (replies: Array<[Error | null, unknown]> | null): unknown[] {
    if (replies === null) throw new Error('The Redis pipeline was discarded')
    return replies.map(([error, value]) => {
      if (error !== null) throw error
      return value
    })
  }

  /** `WAIT`'s reply: the number of replicas that acknowledged; none is a failure. */
  function acknowledged (reply: unknown, ms: number): void {
    if (typeof reply !== 'number' || reply < 1) throw new StoreDurabilityError(ms)
  }

  /** The answer from the revocation values (`[jti entry, subject entry]`, each present only when asked). */
  function revokedBy (revoked: NonNullable<StoreQuery['revoked']>, values: Array<string | null>): boolean {
    const tokenValue = revoked.jti !== undefined ? values.shift() : null
    const subjectValue = revoked.sub !== undefined ? values.shift() : null
    const iat = revoked.iat
    return (tokenValue !== null && tokenValue !== undefined) ||
      (subjectValue !== null && subjectValue !== undefined && (iat === undefined || iat < Number(subjectValue)))
  }

  /** One node (or Sentinel's primary): everything in one pipeline, one round trip. */
  async function runOnNode (node: Redis, query: StoreQuery, deadline: number): Promise<StoreAnswer> {
    const { revoked, consume } = query
    if (revoked === undefined && consume !== undefined && !replica) {
      // Replay alone is one command: without a pipeline object, which costs ioredis more than the command (measured).
      const reply = await node.set(keys.used(consume.scope, consume.jti), '1', 'PX', Math.max(1, Math.ceil(consume.until - query.now)), 'NX')
      return { replayed: reply === null, revoked: false }
    }
    const pipeline = node.pipeline()
    const revokedKeys: string[] = []
    if (revoked !== undefined) {
      if (revoked.jti !== undefined) revokedKeys.push(keys.token(revoked.jti))
      if (revoked.sub !== undefined) revokedKeys.push(keys.subject(revoked.sub))
      if (revokedKeys.length > 0) pipeline.mget(revokedKeys)
    }
    const ms = waitMs(deadline)
    if (consume !== undefined) {
      const ttl = Math.max(1, Math.ceil(consume.until - query.now))
      pipeline.set(keys.used(consume.scope, consume.jti), '1', 'PX', ttl, 'NX')
      if (replica) pipeline.wait(1, ms)
    }
    if (pipeline.length === 0) return { replayed: false, revoked: false }
    // The replies in the order sent: the MGET of the revocation keys when there were any, then the SET (and WAIT).
    const replies = repliesOf(await pipeline.exec())
    const isRevoked = revoked !== undefined && revokedKeys.length > 0 ? revokedBy(revoked, replies.shift() as Array<string | null>) : false
    let replayed = false
    if (consume !== undefined) {
      replayed = replies.shift() === null
      // A jti already recorded is refused either way; a new record counts only once a replica has it.
      if (replica && !replayed) acknowledged(replies.shift(), ms)
    }
    return { replayed, revoked: isRevoked }
  }

  /**
   * A cluster: the keys of one request hash to different slots, so each command goes to its own
   * slot's primary, all at once (ioredis refuses a pipeline across nodes, Redis a multi-key
   * command across slots). The SET and its WAIT share one pipeline: WAIT must follow the write on
   * the connection that made it.
   */
  async function runOnCluster (cluster: Cluster, query: StoreQuery, deadline: number): Promise<StoreAnswer> {
    const { revoked, consume } = query
    const ms = waitMs(deadline)
    const lookups: Array<Promise<string | null>> = []
    if (revoked !== undefined) {
      if (revoked.jti !== undefined) lookups.push(cluster.get(keys.token(revoked.jti)))
      if (revoked.sub !== undefined) lookups.push(cluster.get(keys.subject(revoked.sub)))
    }
    let record: Promise<boolean> | undefined
    if (consume !== undefined) {
      const ttl = Math.max(1, Math.ceil(consume.until - query.now))
      const key = keys.used(consume.scope, consume.jti)
      if (replica) {
        record = cluster.pipeline().set(key, '1', 'PX', ttl, 'NX').wait(1, ms).exec().then((replies) => {
          const moved = replies?.find(([error]) => error !== null && /^(MOVED|ASK) /.test(error.message))
          // ioredis follows a MOVED itself only for a pipeline of read-only commands, and then
          // refreshes its slot map; after a failover this one would be MOVED on every request.
          if (moved !== undefined) cluster.refreshSlotsCache()
          const [set, wait] = repliesOf(replies)
          const replayed = set === null
          if (!replayed) acknowledged(wait, ms)
          return replayed
        })
      } else {
        record = cluster.set(key, '1', 'PX', ttl, 'NX').then(reply => reply === null)
      }
    }
    const [values, replayed] = await Promise.all([Promise.all(lookups), record])
    return { replayed: replayed ?? false, revoked: revoked !== undefined && values.length > 0 ? revokedBy(revoked, values) : false }
  }

  async function run (query: StoreQuery, deadline: number): Promise<StoreAnswer> {
    await connected(deadline)
    return isCluster ? runOnCluster(client as Cluster, query, deadline) : runOnNode(client as Redis, query, deadline)
  }

  async function extend (key: string, value: number, until: number, deadline: number): Promise<void> {
    const ttl = Math.ceil(until - now())
    if (ttl <= 0) return
    await connected(deadline)
    if (!replica) {
      await client.eval(EXTEND_ONLY, 1, key, String(value), String(ttl))
      return
    }
    const ms = waitMs(deadline)
    const [, wait] = repliesOf(await client.pipeline().eval(EXTEND_ONLY, 1, key, String(value), String(ttl)).wait(1, ms).exec())
    acknowledged(wait, ms)
  }

  /**
   * Failures are logged once per cause (a Redis error's code, else the error's name), so that a
   * storm of MOVED or READONLY answers is one line, not one per request; an answer re-arms them.
   */
  const logged = new Set<string>()
  function bounded<T> (work: Promise<T>): Promise<T> {
    const settled = withTimeout(work, timeout, 'The Redis store')
    if (logger === undefined) return settled
    return settled.then((value) => {
      if (logged.size > 0) logged.clear()
      return value
    }, (error: unknown) => {
      const cause = causeOf(error)
      if (!logged.has(cause)) {
        logged.add(cause)
        // The name and message only: a reply error also carries its command, whose keys hold a jti or a sub.
        const err = error instanceof Error ? { name: error.name, message: error.message } : error
        logger.warn({ cause, err }, `vonage-jwt-guard: the Redis store failed (${cause}); the same cause is not logged again until the store answers`)
      }
      throw error
    })
  }

  return Object.freeze({
    client,
    maxLifetime,
    shared: true,
    replayDurability,
    check: (query: StoreQuery) => bounded(run(query, Date.now() + timeout)),
    revokeToken: async (jti: string, expiresAt: number) => {
      checkEntry(jti, 'revokeToken(jti)', expiresAt, 'revokeToken(expiresAt)')
      const until = (expiresAt + EXPIRY_MARGIN) * 1000
      await bounded(extend(keys.token(jti), expiresAt, until, Date.now() + timeout))
    },
    revokeSubject: async (sub: string, issuedBefore: number) => {
      checkEntry(sub, 'revokeSubject(sub)', issuedBefore, 'revokeSubject(issuedBefore)')
      const until = (issuedBefore + maxLifetime + EXPIRY_MARGIN) * 1000
      await bounded(extend(keys.subject(sub), issuedBefore, until, Date.now() + timeout))
    },
    ping: async () => {
      await bounded(connected(Date.now() + timeout).then(() => client.ping()))
    },
    close: async () => {
      if (!owned) return
      closed = true
      if (client.status === 'ready') await client.quit().catch(() => {})
      // Also after quit(): it leaves a Sentinel client's failover detector connected (ioredis 5.11).
      client.disconnect()
    }
  })
}
