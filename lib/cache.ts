/**
 * The verified-token cache of a verifier (SPEC 6): bounded, least recently used first.
 */

/** How many trailing characters of a token key the map: the end of the signature, which is random. */
const TAIL = 32

function tailOf (token: string): string {
  return token.length > TAIL ? token.slice(-TAIL) : token
}

interface TokenSlot<V> {
  readonly key: string
  readonly token: string
  readonly value: V
  /** Toward the most recently used end. */
  newer: TokenSlot<V> | null
  /** Toward the least recently used end. */
  older: TokenSlot<V> | null
}

/**
 * The verified-token cache: an LRU keyed by the token string, cheap for long keys and for churn.
 * Written here rather than taken from lru-cache because it sits on the per-request path and needs
 * only get / set / delete, and because of the two points below.
 *
 * - Every request brings a new string, and V8 hashes a string in full before a Map lookup: for a
 *   700-character Client SDK token that costs about a microsecond, more than the rest of a cache
 *   hit. So the map is keyed by the token's last 32 characters (the end of the signature) and a
 *   hit is confirmed by comparing the whole string: the cache is still keyed by the token itself.
 *   Two tokens that share a tail share a slot, the newer replacing the older (only tokens with the
 *   same signature can, and a forged one never verifies, so it never gets in).
 * - Recency is a linked list, not the Map's insertion order: finding the oldest entry of a Map
 *   that has seen many deletions walks over their holes, which made each insertion of a full
 *   cache cost several microseconds.
 */
export class TokenCache<V> {
  readonly #max: number
  readonly #map = new Map<string, TokenSlot<V>>()
  #newest: TokenSlot<V> | null = null
  #oldest: TokenSlot<V> | null = null

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#map.size
  }

  get (token: string): V | undefined {
    const newest = this.#newest
    // One token reused is the common case: no slice, no hash.
    if (newest !== null && newest.token === token) return newest.value
    const slot = this.#map.get(tailOf(token))
    if (slot === undefined || slot.token !== token) return undefined
    this.#unlink(slot)
    this.#pushNewest(slot)
    return slot.value
  }

  set (token: string, value: V): void {
    const key = tailOf(token)
    const old = this.#map.get(key)
    if (old !== undefined) this.#unlink(old)
    const slot: TokenSlot<V> = { key, token, value, newer: null, older: null }
    this.#map.set(key, slot)
    this.#pushNewest(slot)
    const oldest = this.#oldest
    if (this.#map.size > this.#max && oldest !== null) {
      this.#unlink(oldest)
      this.#map.delete(oldest.key)
    }
  }

  delete (token: string): void {
    const key = tailOf(token)
    const slot = this.#map.get(key)
    if (slot !== undefined && slot.token === token) {
      this.#unlink(slot)
      this.#map.delete(key)
    }
  }

  clear (): void {
    this.#map.clear()
    this.#newest = null
    this.#oldest = null
  }

  #unlink (slot: TokenSlot<V>): void {
    if (slot.newer === null) this.#newest = slot.older
    else slot.newer.older = slot.older
    if (slot.older === null) this.#oldest = slot.newer
    else slot.older.newer = slot.newer
    slot.newer = null
    slot.older = null
  }

  #pushNewest (slot: TokenSlot<V>): void {
    slot.older = this.#newest
    if (this.#newest !== null) this.#newest.newer = slot
    this.#newest = slot
    if (this.#oldest === null) this.#oldest = slot
  }
}
