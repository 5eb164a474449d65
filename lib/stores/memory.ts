/**
 * The in-memory store: replay records and revocations for one process, bounded and expiring.
 * `replay: true` uses one; share one object between `replay: { store }` and `revocation` to
 * keep a single store. Several instances need the Redis store instead.
 */
import { invalidOption } from '../errors.js'
import { checkEntry, DEFAULT_STORE_MAX_LIFETIME, EXPIRY_MARGIN, type GuardStore, type StoreAnswer, type StoreQuery } from './store.js'

export interface MemoryStoreOptions {
  /** Most entries of each kind (used jtis, revoked jtis, revoked subjects). @default 100000 */
  max?: number
  /** Seconds a subject revocation lasts past its `issuedBefore`: the longest token lifetime accepted. @default 86400 */
  maxLifetime?: number
  /** The clock, in milliseconds, for expiring revocations (replay checks use the guard's clock). @default Date.now */
  now?: () => number
}

export interface MemoryStore extends GuardStore {
  readonly maxLifetime: number
  /** Entries currently held, expired ones not yet pruned included. */
  readonly size: number
}

/** A full store refuses new entries rather than forget unexpired ones (which would re-open a replay). */
class StoreFullError extends Error {
  override readonly name = 'StoreFullError'
}

/**
 * A Map of entries that expire at `until` (ms). Bounded: when full, expired entries are swept;
 * when none has expired, `set` throws. `earliest` (a lower bound of every `until`) spares the
 * O(n) sweep while nothing can have expired, so a full store cannot be made to sweep per request.
 */
class ExpiringMap {
  readonly #max: number
  readonly #what: string
  readonly #map = new Map<string, { until: number, value: number }>()
  #earliest = Infinity

  constructor (max: number, what: string) {
    this.#max = max
    this.#what = what
  }

  get size (): number {
    return this.#map.size
  }

  /** The live value of `key`, or undefined. */
  get (key: string, now: number): number | undefined {
    const entry = this.#map.get(key)
    if (entry === undefined) return undefined
    if (entry.until <= now) {
      this.#map.delete(key)
      return undefined
    }
    return entry.value
  }

  set (key: string, value: number, until: number, now: number): void {
    this.#pruneOldest(now)
    if (!this.#map.has(key) && this.#map.size >= this.#max) {
      if (now >= this.#earliest) this.#sweep(now)
      if (this.#map.size >= this.#max) throw new StoreFullError(`The ${this.#what} store is full (${this.#max} unexpired entries)`)
    }
    this.#map.delete(key)
    this.#map.set(key, { until, value })
    if (until < this.#earliest) this.#earliest = until
  }

  /** Insertion order is roughly expiry order: drop a few expired entries from the front. */
  #pruneOldest (now: number): void {
    let budget = 4
    for (const [key, entry] of this.#map) {
      if (budget-- === 0 || entry.until > now) return
      this.#map.delete(key)
    }
  }

  #sweep (now: number): void {
    let earliest = Infinity
    for (const [key, entry] of this.#map) {
      if (entry.until <= now) this.#map.delete(key)
      else if (entry.until < earliest) earliest = entry.until
    }
    this.#earliest = earliest
  }
}

function positiveInteger (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalidOption(name, 'of createMemoryStore must be a positive integer')
  }
  return value
}

/**
 * The replay record of one jti of one application. The scope's length goes first, so the pair
 * reads back one way only: with a separator alone, `app\0x` + `y` and `app` + `x\0y` would be
 * one key, and one application could burn another's jti. (The Redis store percent-encodes the
 * scope instead, which its key names need to stay readable.)
 */
function usedKey (scope: string, jti: string): string {
  return `${scope.length}:${scope}${jti}`
}

/** A bounded, expiring in-memory store for replay protection and revocation. */
export function createMemoryStore (options: MemoryStoreOptions = {}): MemoryStore {
  const max = positiveInteger(options.max, 'max', 100_000)
  const maxLifetime = positiveInteger(options.maxLifetime, 'maxLifetime', DEFAULT_STORE_MAX_LIFETIME)
  const now = options.now ?? Date.now
  if (typeof now !== 'function') invalidOption('now', 'of createMemoryStore must be a function')
  const used = new ExpiringMap(max, 'replay')
  const revokedTokens = new ExpiringMap(max, 'revoked token')
  const revokedSubjects = new ExpiringMap(max, 'revoked subject')

  function check (query: StoreQuery): StoreAnswer {
    let revoked = false
    if (query.revoked !== undefined) {
      const { jti, sub, iat } = query.revoked
      if (jti !== undefined && revokedTokens.get(jti, query.now) !== undefined) revoked = true
      if (!revoked && sub !== undefined) {
        const issuedBefore = revokedSubjects.get(sub, query.now)
        revoked = issuedBefore !== undefined && (iat === undefined || iat < issuedBefore)
      }
    }
    let replayed = false
    if (query.consume !== undefined) {
      const { scope, jti, until } = query.consume
      const key = usedKey(scope, jti)
      replayed = used.get(key, query.now) !== undefined
      if (!replayed) used.set(key, 1, until, query.now)
    }
    return { replayed, revoked }
  }

  function revokeToken (jti: string, expiresAt: number): void {
    checkEntry(jti, 'revokeToken(jti)', expiresAt, 'revokeToken(expiresAt)')
    const at = now()
    const current = revokedTokens.get(jti, at)
    if (current !== undefined && current >= expiresAt) return
    revokedTokens.set(jti, expiresAt, (expiresAt + EXPIRY_MARGIN) * 1000, at)
  }

  function revokeSubject (sub: string, issuedBefore: number): void {
    checkEntry(sub, 'revokeSubject(sub)', issuedBefore, 'revokeSubject(issuedBefore)')
    const at = now()
    const current = revokedSubjects.get(sub, at)
    if (current !== undefined && current >= issuedBefore) return
    revokedSubjects.set(sub, issuedBefore, (issuedBefore + maxLifetime + EXPIRY_MARGIN) * 1000, at)
  }

  return Object.freeze({
    check,
    revokeToken,
    revokeSubject,
    maxLifetime,
    shared: false,
    get size () {
      return used.size + revokedTokens.size + revokedSubjects.size
    }
  })
}
