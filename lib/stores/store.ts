/**
 * The one small interface behind replay protection and revocation, so that the memory store,
 * the Redis store and a user's own store are interchangeable. One `check()` answers both
 * questions for a request, so a shared store (Redis) costs one round trip, not two.
 */

/** What the guard asks a store about one verified token. */
export interface StoreQuery {
  /**
   * Replay protection: record this jti as used and say whether it already was. `scope` is the
   * token's `application_id` ('' without one): a jti is unique per issuer, so one application
   * cannot burn another's jti.
   */
  readonly consume?: {
    readonly scope: string
    readonly jti: string
    /** Keep the record until this instant (ms since the epoch, on the guard's clock). */
    readonly until: number
  }
  /** Revocation: is this jti listed, or was this subject revoked for tokens issued before `iat`? */
  readonly revoked?: {
    readonly jti: string | undefined
    readonly sub: string | undefined
    /** NumericDate seconds; undefined when the token has no `iat` (then a revoked subject revokes it). */
    readonly iat: number | undefined
  }
  /** The guard's clock, ms since the epoch. */
  readonly now: number
}

export interface StoreAnswer {
  /** The jti of `consume` had been recorded already. */
  readonly replayed: boolean
  /** The token of `revoked` is revoked. */
  readonly revoked: boolean
}

/**
 * A replay and revocation store. `replay: { store }` needs `check`; `revocation: store` needs all
 * three. Time values are NumericDate seconds, as in the claims.
 */
export interface GuardStore {
  /** Answer one query; reject when the store cannot be reached (the guard then answers 503). */
  check (query: StoreQuery): Promise<StoreAnswer> | StoreAnswer
  /** Revoke one token by its `jti` until `expiresAt` (its effective expiry; the entry then expires on its own). */
  revokeToken (jti: string, expiresAt: number): Promise<void> | void
  /**
   * Revoke every token of `sub` whose `iat` is before `issuedBefore`. The entry expires on its
   * own at `issuedBefore + maxLifetime`, when no such token can be valid any more. A later call
   * with an earlier `issuedBefore` does not shorten an existing revocation.
   */
  revokeSubject (sub: string, issuedBefore: number): Promise<void> | void
  /**
   * The longest token lifetime (seconds) the store's subject entries cover. The guard refuses a
   * store whose `maxLifetime` is shorter than its own, since a revoked subject's token could
   * outlive the entry.
   */
  readonly maxLifetime?: number
  /**
   * Whether every process that uses this store sees the same records: `true` for the Redis store,
   * `false` for the memory store. The CLI's `--workers` refuses a store that does not say `true`
   * (each worker would accept a token once).
   */
  readonly shared?: boolean
  /**
   * Readiness (`/readyz`): resolves when the store answers, rejects when it cannot be reached.
   * The Redis store sends `PING`; a store without it is taken as always ready.
   */
  ping? (): Promise<void>
}

/**
 * Entries stay this many seconds past the instant they cover: the largest clock tolerance the
 * guard allows (it accepts a token until expiry + tolerance).
 */
export const EXPIRY_MARGIN = 300

/** The default `maxLifetime` of the stores: the `vonage` profile's default (24 h). */
export const DEFAULT_STORE_MAX_LIFETIME = 86_400

/**
 * The arguments of `revokeToken(jti, expiresAt)` and `revokeSubject(sub, issuedBefore)`, as
 * every store checks them: a non-empty id and a NumericDate. A TypeError naming the argument.
 */
export function checkEntry (id: unknown, idName: string, time: unknown, timeName: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError(`vonage-jwt-guard: ${idName} must be a non-empty string`)
  if (typeof time !== 'number' || !Number.isFinite(time) || time <= 0) {
    throw new TypeError(`vonage-jwt-guard: ${timeName} must be a NumericDate (seconds since the epoch)`)
  }
}

/** A plain rejection, not a GuardError: the guard maps any store failure to 503 (or fails open). */
export class StoreTimeoutError extends Error {
  override readonly name = 'StoreTimeoutError'
  constructor (what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`)
  }
}

/**
 * `value` (a promise or a plain value) or a rejection after `ms`. The timer is cleared as soon as
 * the value settles.
 */
export function withTimeout<T> (value: PromiseLike<T> | T, ms: number, what: string): Promise<T> {
  if (typeof (value as PromiseLike<T> | undefined)?.then !== 'function') return Promise.resolve(value)
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new StoreTimeoutError(what, ms)) }, ms)
  })
  return Promise.race([Promise.resolve(value), timeout]).finally(() => { clearTimeout(timer) })
}
