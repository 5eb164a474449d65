/**
 * A small bounded LRU over `Map` (insertion order is recency order). Written here rather than
 * taken from lru-cache because it sits on the per-request path and needs only get / set / delete.
 */
export class LruCache<K, V> {
  readonly #max: number
  readonly #map = new Map<K, V>()

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#map.size
  }

  get (key: K): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined) {
      // Move to the most recent end.
      this.#map.delete(key)
      this.#map.set(key, value)
    }
    return value
  }

  set (key: K, value: V): void {
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next()
      if (oldest.done !== true) this.#map.delete(oldest.value)
    }
  }

  delete (key: K): void {
    this.#map.delete(key)
  }

  clear (): void {
    this.#map.clear()
  }
}

/** How many trailing characters of a token key the map: the end of the signature, which is random. */
const TAIL = 32

interface TokenSlot<V> {
  readonly token: string
  readonly value: V
}

/**
 * The verified-token cache: an LRU keyed by the token string, like `LruCache<string, V>`, but
 * cheap for long keys. Every request brings a new string, and V8 hashes a string in full before a
 * Map lookup: for a 700-character Client SDK token that costs about a microsecond, more than the
 * rest of a cache hit. So the map is keyed by the token's last 32 characters (the end of the
 * signature) and a hit is confirmed by comparing the whole string: the cache is still keyed by
 * the token itself. Two tokens that share a tail share a slot, the newer replacing the older
 * (only tokens with the same signature can, and a forged one never verifies, so it never gets in).
 */
export class TokenCache<V> {
  readonly #max: number
  readonly #map = new Map<string, TokenSlot<V>>()
  /** The most recently used slot: a hit on it need not move it (one token reused is the common case). */
  #newest: TokenSlot<V> | undefined

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#map.size
  }

  get (token: string): V | undefined {
    const key = token.length > TAIL ? token.slice(-TAIL) : token
    const slot = this.#map.get(key)
    if (slot === undefined || slot.token !== token) return undefined
    if (slot !== this.#newest) {
      // Move to the most recent end.
      this.#map.delete(key)
      this.#map.set(key, slot)
      this.#newest = slot
    }
    return slot.value
  }

  set (token: string, value: V): void {
    const key = token.length > TAIL ? token.slice(-TAIL) : token
    const slot = { token, value }
    this.#map.delete(key)
    this.#map.set(key, slot)
    this.#newest = slot
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next()
      if (oldest.done !== true) this.#map.delete(oldest.value)
    }
  }

  delete (token: string): void {
    const key = token.length > TAIL ? token.slice(-TAIL) : token
    const slot = this.#map.get(key)
    if (slot !== undefined && slot.token === token) {
      this.#map.delete(key)
      if (slot === this.#newest) this.#newest = undefined
    }
  }

  clear (): void {
    this.#map.clear()
    this.#newest = undefined
  }
}
