/**
 * The verified-token cache of a verifier (docs/options.md, "The verified-token cache"): bounded, keyed by the token string, with a
 * W-TinyLFU policy (a small LRU window in front of a segmented LRU whose door is a frequency
 * sketch), as in Caffeine (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache
 * Admission Policy", 2017).
 */

/** How many trailing characters of a token key the map: the end of the signature, which is random. */
const TAIL = 32

function tailOf (token: string): string {
  return token.length > TAIL ? token.slice(-TAIL) : token
}

/**
 * A 32-bit hash of a token's map key (`tailOf`) for the frequency sketch, read from the token
 * itself (no slice). The key is the end of a signature that verified (only verified tokens are
 * counted), so its last characters are already random: mixing eight of them is enough, and costs
 * a few nanoseconds where hashing the whole key would not.
 */
function hashOf (token: string): number {
  const length = token.length
  let h = 0x811c9dc5 ^ Math.min(length, TAIL)
  for (let i = Math.max(0, length - 8); i < length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  return (h ^ (h >>> 13)) >>> 0
}

/** The widest row of the sketch: 4 rows of 2^22 bytes (16 MiB) for the largest caches. */
const SKETCH_BITS_MAX = 22

/** One seed per row of the sketch: each row indexes by the top bits of its own multiplicative hash. */
const ROW_SEEDS = [0x9e3779b1, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f] as const

/**
 * How often a key was seen: a doorkeeper in front of a count-min sketch of 4-bit counters (four
 * rows), as in TinyLFU. The first sighting of a key only sets its bits in the doorkeeper (a Bloom
 * filter); later ones count in the sketch. So a stream of tokens seen once leaves the sketch
 * untouched, and its collisions cannot lift a one-time token over an entry in use (without the
 * doorkeeper, a stream of distinct tokens made about one in ten of them displace a cached one,
 * each an object moved to the old generation: the GC work the cache was meant to save). Never
 * under-counted, over-counted only by collisions. Every `sample` sightings the counters halve
 * and the doorkeeper empties, so the sketch forgets: a token hot an hour ago does not keep its place.
 */
class FrequencySketch {
  readonly #counters: Uint8Array
  readonly #shift: number
  readonly #width: number
  readonly #door: Uint32Array
  readonly #doorShift: number
  readonly #sample: number
  #additions = 0

  /** Four counters per row per entry of the cache (Caffeine keeps sixteen in all): few collisions, 16 bytes per entry. */
  constructor (max: number) {
    let bits = 4
    while (1 << bits < 4 * max && bits < SKETCH_BITS_MAX) bits++
    this.#width = 1 << bits
    this.#shift = 32 - bits
    this.#counters = new Uint8Array(this.#width * ROW_SEEDS.length)
    // Two bits of 32 per sighting of a sample (10 x max): under 1% false positives at its fullest.
    let doorBits = bits + 5
    if (doorBits > SKETCH_BITS_MAX + 3) doorBits = SKETCH_BITS_MAX + 3
    this.#door = new Uint32Array(2 ** doorBits / 32)
    this.#doorShift = 32 - doorBits
    this.#sample = 10 * max
  }

  /** Whether the doorkeeper holds `hash`; `add`: and put it there. Its two bits: the top bits of two products. */
  #doorkeeper (hash: number, add: boolean): boolean {
    const door = this.#door
    const a = Math.imul(hash, 0x7feb352d) >>> this.#doorShift
    const b = Math.imul(hash, 0x846ca68b) >>> this.#doorShift
    const wordA = a >>> 5
    const wordB = b >>> 5
    const bitA = 1 << (a & 31)
    const bitB = 1 << (b & 31)
    const held = ((door[wordA] ?? 0) & bitA) !== 0 && ((door[wordB] ?? 0) & bitB) !== 0
    if (add && !held) {
      door[wordA] = (door[wordA] ?? 0) | bitA
      door[wordB] = (door[wordB] ?? 0) | bitB
    }
    return held
  }

  /** The counter of `hash` in a row: Fibonacci hashing, the top bits of a product (its low bits would depend on the key's low bits only). */
  #index (hash: number, row: number): number {
    return row * this.#width + (Math.imul(hash, ROW_SEEDS[row] as number) >>> this.#shift)
  }

  /** Count a sighting; true when the key had been seen before (since the sketch last aged). */
  increment (hash: number): boolean {
    if (++this.#additions >= this.#sample) this.#age()
    if (!this.#doorkeeper(hash, true)) return false
    const counters = this.#counters
    for (let row = 0; row < ROW_SEEDS.length; row++) {
      const i = this.#index(hash, row)
      const count = counters[i] ?? 15
      if (count < 15) counters[i] = count + 1
    }
    return true
  }

  frequency (hash: number): number {
    if (!this.#doorkeeper(hash, false)) return 0
    let min = 15
    for (let row = 0; row < ROW_SEEDS.length; row++) {
      const count = this.#counters[this.#index(hash, row)] ?? 0
      if (count < min) min = count
    }
    return min + 1
  }

  #age (): void {
    const counters = this.#counters
    for (let i = 0; i < counters.length; i++) counters[i] = (counters[i] ?? 0) >>> 1
    this.#door.fill(0)
    this.#additions = 0
  }
}

const WINDOW = 0
const PROBATION = 1
const PROTECTED = 2
/** A slot no longer in the cache (evicted, deleted, replaced). */
const GONE = 3
type Segment = typeof WINDOW | typeof PROBATION | typeof PROTECTED | typeof GONE

interface TokenSlot<V> {
  readonly key: string
  readonly hash: number
  readonly token: string
  readonly value: V
  segment: Segment
  /** Toward the most recently used end of its segment. */
  newer: TokenSlot<V> | null
  /** Toward the least recently used end of its segment. */
  older: TokenSlot<V> | null
}

/** One LRU list: a segment of the cache. */
class LruList<V> {
  newest: TokenSlot<V> | null = null
  oldest: TokenSlot<V> | null = null
  size = 0

  push (slot: TokenSlot<V>): void {
    slot.older = this.newest
    slot.newer = null
    if (this.newest !== null) this.newest.newer = slot
    this.newest = slot
    if (this.oldest === null) this.oldest = slot
    this.size++
  }

  unlink (slot: TokenSlot<V>): void {
    if (slot.newer === null) this.newest = slot.older
    else slot.newer.older = slot.older
    if (slot.older === null) this.oldest = slot.newer
    else slot.older.newer = slot.newer
    slot.newer = null
    slot.older = null
    this.size--
  }

  clear (): void {
    this.newest = null
    this.oldest = null
    this.size = 0
  }
}

/**
 * Below this many entries the whole cache is the window, an LRU: a frequency sketch that small
 * cannot tell a token seen twice from a collision. Above it the window is 1% of the cache, and
 * never under this.
 */
export const WINDOW_MIN = 100
/** Share of the main space kept for entries hit since they entered it (Caffeine's 80%). */
const PROTECTED_SHARE = 0.8

interface TokenCacheOptions<V> {
  /**
   * Whether a value is dead at `now` (the number given to `set`): a dead entry is evicted before
   * any live one is turned away, so expired tokens with a history of hits do not hold the space.
   */
  readonly expired?: (value: V, now: number) => boolean
}

/**
 * The verified-token cache: W-TinyLFU keyed by the token string. Written here rather than taken
 * from a cache package because it sits on the per-request path (a hit is one string compare
 * when the token is the one seen last), and because of the points below; bench/ measures it.
 *
 * - Misses do not pay for the cache. A token is kept from its second sighting (`seen`): the
 *   first costs a hash and two bits of the sketch's doorkeeper. Storing every miss cost a share
 *   of each verification (an entry, the deep freeze of its claims, an eviction, and the garbage
 *   collection of entries that died in the window; see docs/benchmark.md, "Measured choices in the code"), so with distinct tokens the
 *   cache made a server slower than no cache (bench/, issue 16). A Client SDK reusing one token
 *   pays a second RSA verification for it, then hits.
 * - Scan resistance. A token seen again enters a small LRU window (1%, at least WINDOW_MIN
 *   entries), then the main space only if the sketch counts it more often than the entry it
 *   would evict: a pool of tokens cycling slightly beyond the cache keeps almost all of its hits
 *   (an LRU evicts each entry just before it is needed, and hits nothing).
 * - Every request brings a new string, and V8 hashes a string in full before a Map lookup: for a
 *   700-character Client SDK token that costs about a microsecond, more than the rest of a hit.
 *   So the map is keyed by the token's last 32 characters (the end of the signature) and a hit is
 *   confirmed by comparing the whole string: the cache is still keyed by the token itself. Two
 *   tokens that share a tail share a slot, the newer replacing the older (only tokens with the
 *   same signature can, and a forged one never verifies, so it never gets in).
 * - Recency is kept in linked lists, not a Map's insertion order: finding the oldest entry of a
 *   Map that has seen many deletions walks over their holes.
 */
export class TokenCache<V> {
  readonly #windowMax: number
  /** The main space: probation and protected together. */
  readonly #mainMax: number
  readonly #protectedMax: number
  readonly #map = new Map<string, TokenSlot<V>>()
  readonly #window = new LruList<V>()
  readonly #probation = new LruList<V>()
  readonly #protected = new LruList<V>()
  readonly #sketch: FrequencySketch
  readonly #expired: ((value: V, now: number) => boolean) | undefined
  /**
   * The slot a `get` returned last: one token reused is answered without a slice or a hash. Not
   * set by `set`: a token's first hit must reach the frequency sketch. Cleared on `#drop`.
   */
  #last: TokenSlot<V> | null = null

  constructor (max: number, options: TokenCacheOptions<V> = {}) {
    this.#windowMax = Math.min(max, Math.max(WINDOW_MIN, Math.ceil(max / 100)))
    this.#mainMax = max - this.#windowMax
    this.#protectedMax = Math.floor(this.#mainMax * PROTECTED_SHARE)
    this.#sketch = new FrequencySketch(max)
    this.#expired = options.expired
  }

  get size (): number {
    return this.#map.size
  }

  get (token: string): V | undefined {
    const last = this.#last
    // The token asked for last, again: one string compare. The run of requests it belongs to was
    // counted (and its slot moved up) on its first hit, so a client sending one token in a loop
    // counts as one sighting per run, not one per request.
    if (last !== null && last.token === token) return last.value
    const slot = this.#map.get(tailOf(token))
    if (slot === undefined || slot.token !== token) return undefined
    this.#last = slot
    this.#sketch.increment(slot.hash)
    this.#touch(slot)
    return slot.value
  }

  /**
   * A verified token the cache does not hold (`get` missed): count this sighting, and answer
   * whether the token was seen before, the cue to keep its verification (`set`). A token is kept
   * from its second sighting on: one seen once (a stream of distinct tokens, nearly every miss)
   * costs the cache a hash and two bits, not an entry, a freeze of its claims and an eviction.
   * Only verified tokens are counted, so a client cannot choose what the sketch counts.
   */
  seen (token: string): boolean {
    return this.#sketch.increment(hashOf(token))
  }

  /**
   * Store a value, into the window (`now` is handed to the `expired` option when space must be
   * made). Counts nothing: the sighting that led here was counted by `seen`.
   */
  set (token: string, value: V, now = 0): void {
    const key = tailOf(token)
    const old = this.#map.get(key)
    if (old !== undefined) this.#remove(old)
    const slot: TokenSlot<V> = { key, hash: hashOf(token), token, value, segment: WINDOW, newer: null, older: null }
    this.#map.set(key, slot)
    this.#window.push(slot)
    if (this.#window.size > this.#windowMax) this.#admit(this.#window.oldest as TokenSlot<V>, now)
  }

  delete (token: string): void {
    const slot = this.#map.get(tailOf(token))
    if (slot !== undefined && slot.token === token) this.#remove(slot)
  }

  clear (): void {
    for (const slot of this.#map.values()) slot.segment = GONE
    this.#map.clear()
    this.#window.clear()
    this.#probation.clear()
    this.#protected.clear()
    this.#last = null
  }

  /** A hit: the most recent of its segment; a second hit in probation earns protection. */
  #touch (slot: TokenSlot<V>): void {
    switch (slot.segment) {
      case WINDOW:
        if (slot.newer !== null) {
          this.#window.unlink(slot)
          this.#window.push(slot)
        }
        break
      case PROBATION:
        this.#probation.unlink(slot)
        slot.segment = PROTECTED
        this.#protected.push(slot)
        if (this.#protected.size > this.#protectedMax) {
          const demoted = this.#protected.oldest as TokenSlot<V>
          this.#protected.unlink(demoted)
          demoted.segment = PROBATION
          this.#probation.push(demoted)
        }
        break
      case PROTECTED:
        if (slot.newer !== null) {
          this.#protected.unlink(slot)
          this.#protected.push(slot)
        }
        break
    }
  }

  /**
   * The window's oldest entry leaves it. It enters the main space only if the sketch still
   * counts it as seen again (it entered the window on its second sighting, but the sketch may
   * have aged since): a token the sketch saw once never does, so the main space does not turn
   * over each time the sketch ages, and misses move nothing to the old generation. Into free
   * room it goes at once; into a full main space only if the sketch saw it more often than the
   * next victim (TinyLFU). A tie keeps the victim: that is what keeps a cycling pool's hits. An
   * expired victim makes room for any live candidate.
   */
  #admit (candidate: TokenSlot<V>, now: number): void {
    this.#window.unlink(candidate)
    const expired = this.#expired
    if (expired?.(candidate.value, now) === true) {
      this.#drop(candidate)
      return
    }
    const frequency = this.#sketch.frequency(candidate.hash)
    const seenAgain = frequency >= 2
    if (this.#probation.size + this.#protected.size < this.#mainMax) {
      if (seenAgain) this.#enterMain(candidate)
      else this.#drop(candidate)
      return
    }
    const victim = this.#probation.oldest ?? this.#protected.oldest
    if (victim !== null && (expired?.(victim.value, now) === true || (seenAgain && frequency > this.#sketch.frequency(victim.hash)))) {
      this.#remove(victim)
      this.#enterMain(candidate)
    } else {
      this.#drop(candidate)
    }
  }

  #enterMain (slot: TokenSlot<V>): void {
    slot.segment = PROBATION
    this.#probation.push(slot)
  }

  #remove (slot: TokenSlot<V>): void {
    if (slot.segment === WINDOW) this.#window.unlink(slot)
    else if (slot.segment === PROBATION) this.#probation.unlink(slot)
    else if (slot.segment === PROTECTED) this.#protected.unlink(slot)
    this.#drop(slot)
  }

  /** Out of the map; the caller has unlinked it. */
  #drop (slot: TokenSlot<V>): void {
    slot.segment = GONE
    this.#map.delete(slot.key)
    if (this.#last === slot) this.#last = null
  }
}
