/**
 * The verified-token cache's policy (W-TinyLFU, lib/cache.ts), by hit and miss sequences: a
 * token is kept from its second sighting (it hits from its third request), tokens seen once are
 * not stored and do not displace the ones in use, a pool cycling just past the cache keeps its
 * hits, the size never passes the bound, an expired entry makes room first; and through a
 * verifier: never served past the effective expiry or before the token is valid, wherever in
 * the cache it sits.
 */
import fc from 'fast-check'
import t from 'tap'
import { TokenCache, WINDOW_MIN } from '../lib/cache.js'
import { createVerifier } from '../lib/index.js'
import { keys, NOW, NOW_MS, signRaw } from './helpers/keys.js'

/** Keys shaped like tokens: the map keys a token by its last 32 characters, the end of a random signature. */
function tokenKey (i: number): string {
  return `h.p.${i.toString(36).padStart(8, '0')}${'x'.repeat(24)}${(i * 2654435761 >>> 0).toString(36).padStart(8, '0')}`
}

/** A request for a verified token, as verify() makes it: a hit, or a sighting that stores it when seen before. True: a hit. */
function request<V> (cache: TokenCache<V>, key: string, value: V, now = 0): boolean {
  if (cache.get(key) !== undefined) return true
  if (cache.seen(key)) cache.set(key, value, now)
  return false
}

/** WINDOW_MIN other tokens, from key `from` on, seen twice: they push the window's entries toward the main space. */
function pushWindow<V> (cache: TokenCache<V>, from: number, value: V, now = 0): void {
  for (let pass = 0; pass < 2; pass++) for (let i = 0; i < WINDOW_MIN; i++) request(cache, tokenKey(from + i), value, now)
}

/** Hits over `rounds` passes of `pool` keys in order, after `warm` passes. */
function cycle (cache: TokenCache<number>, pool: number, warm: number, rounds: number): number {
  let hits = 0
  for (let pass = 0; pass < warm + rounds; pass++) {
    for (let i = 0; i < pool; i++) {
      if (request(cache, tokenKey(i), i) && pass >= warm) hits++
    }
  }
  return hits / (pool * rounds)
}

t.test('a token is kept from its second sighting, and hits from its third request', async t => {
  const cache = new TokenCache<number>(10_000)
  const key = tokenKey(1)
  t.equal(cache.seen(key), false, 'first sighting: not worth keeping')
  t.equal(cache.get(key), undefined)
  t.equal(cache.seen(key), true, 'second sighting: seen before')
  cache.set(key, 1)
  t.equal(cache.get(key), 1)
  for (let i = 2; i < 50; i++) request(cache, tokenKey(i), i)
  t.equal(cache.size, 1, 'tokens seen once are not stored')
  t.equal(cache.get(key), 1, 'still there after other new tokens')
})

t.test('no cliff: a pool cycling just past the cache keeps most of its hits', async t => {
  const max = 2000
  t.equal(cycle(new TokenCache<number>(max), 1900, 2, 3), 1, 'a pool that fits: every request after the second pass hits (a token enters the main space once seen again)')
  const past = cycle(new TokenCache<number>(max), 2100, 2, 3)
  t.ok(past >= 0.9, `5% past the bound: ${(past * 100).toFixed(1)}% hits (an LRU hits none)`)
  const double = cycle(new TokenCache<number>(max), 4000, 2, 3)
  t.ok(double >= 0.4, `twice the bound: ${(double * 100).toFixed(1)}% hits (an LRU hits none)`)
})

t.test('tokens seen once pass through the window without displacing the ones in use', async t => {
  const cache = new TokenCache<number>(1000)
  const inUse = (): number => {
    let hits = 0
    for (let i = 0; i < 500; i++) if (request(cache, tokenKey(i), i)) hits++
    return hits
  }
  inUse()
  inUse()
  // 20,000 tokens seen once, the 500 in use asked for again after every 2,000 of them (an LRU
  // of 1,000 would have lost them all each time).
  let kept = 0
  for (let i = 0; i < 20_000; i++) {
    request(cache, tokenKey(100_000 + i), i)
    if (i % 2000 === 1999) kept += inUse()
  }
  t.equal(kept, 500 * 10, 'every request for a token in use hit')
  t.ok(cache.size <= 500 + 2 * WINDOW_MIN, `the tokens seen once were not stored, but for a few false positives of the doorkeeper (size ${cache.size})`)
})

t.test('a token seen once is not stored; seen again, it enters the main space once seen more often than the victim', async t => {
  const cache = new TokenCache<number>(1000)
  for (let i = 0; i < 1000; i++) request(cache, tokenKey(i), i)
  t.equal(cache.size, 0, '1,000 tokens seen once: none stored')
  // Fill the cache with tokens seen twice: the window, and the main space behind it.
  for (let i = 0; i < 1000; i++) request(cache, tokenKey(i), i)
  t.equal(cache.size, 1000, 'seen twice: stored, and admitted into free room')
  const key = tokenKey(50_000)
  for (let seen = 1; seen <= 3; seen++) {
    request(cache, key, seen)
    pushWindow(cache, 60_000 + seen * 1000, 0)
    if (seen < 3) t.equal(cache.get(key), undefined, `seen ${seen === 1 ? 'once' : 'twice, as often as the victim'}: not admitted`)
  }
  t.equal(cache.get(key), 3, 'seen three times: admitted over a victim seen twice')
})

t.test('an expired entry makes room before a live one is turned away', async t => {
  let now = 0
  const cache = new TokenCache<{ expires: number }>(1000, { expired: (value, at) => at >= value.expires })
  // Main space full of tokens seen three times, expiring at 100.
  for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 1000; i++) request(cache, tokenKey(i), { expires: 100 }, now)
  const fresh = tokenKey(99_999)
  request(cache, fresh, { expires: 1000 }, now)
  request(cache, fresh, { expires: 1000 }, now)
  pushWindow(cache, 80_000, { expires: 1000 }, now)
  t.equal(cache.get(fresh), undefined, 'all live: a token seen twice is turned away by victims seen three times')
  now = 200
  request(cache, fresh, { expires: 1000 }, now)
  pushWindow(cache, 90_000, { expires: 1000 }, now)
  t.same(cache.get(fresh), { expires: 1000 }, 'the victims expired: admitted')
})

t.test('bounded: the size never passes max, and get answers only what set stored', async t => {
  const ops = fc.array(fc.tuple(fc.constantFrom('get', 'seen', 'set', 'delete'), fc.nat(300)), { maxLength: 2000 })
  fc.assert(fc.property(fc.constantFrom(1, 2, 3, 99, 100, 101, 150, 250), ops, (max, sequence) => {
    const cache = new TokenCache<number>(max)
    const stored = new Map<string, number>()
    let version = 0
    for (const [op, n] of sequence) {
      const key = tokenKey(n)
      if (op === 'set') {
        cache.set(key, ++version)
        stored.set(key, version)
      } else if (op === 'delete') {
        cache.delete(key)
        stored.delete(key)
      } else if (op === 'seen') {
        cache.seen(key)
      } else {
        const got = cache.get(key)
        if (got !== undefined && got !== stored.get(key)) throw new Error(`get(${n}) answered ${got}, stored ${String(stored.get(key))}`)
      }
      if (cache.size > max) throw new Error(`size ${cache.size} > ${max}`)
    }
  }), { numRuns: 200 })
  t.pass('no counterexample')
})

t.test('through a verifier: never served past the effective expiry, nor before it is valid, from the main space too', async t => {
  let clock = NOW_MS
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => clock, cache: { max: 200 } })
  const payload = (jti: string, exp: number): string => JSON.stringify({ application_id: 'app', iat: NOW - 10, jti, exp })
  const mine = signRaw({ alg: 'RS256', typ: 'JWT' }, payload('mine', NOW + 100))
  t.not(await verifier.verify(mine), await verifier.verify(mine), 'seen once, then twice: two verifications')
  const kept = await verifier.verify(mine)
  t.equal(await verifier.verify(mine), kept, 'kept from the second: a hit')
  // Push it out of the window into the main space: more tokens seen twice than the window holds.
  for (let i = 0; i < WINDOW_MIN + 5; i++) {
    const other = signRaw({ alg: 'RS256', typ: 'JWT' }, payload(`other-${i}`, NOW + 900))
    await verifier.verify(other)
    await verifier.verify(other)
  }
  t.equal(await verifier.verify(mine), kept, 'still a hit, from the main space')
  clock = (NOW + 130) * 1000
  await t.rejects(verifier.verify(mine), { code: 'VJG_TOKEN_EXPIRED' }, 'never past the effective expiry (with the 30 s tolerance)')
  clock = (NOW - 60) * 1000
  await t.rejects(verifier.verify(mine), { code: 'VJG_TOKEN_NOT_YET_VALID' }, 'nor before it is valid')
})
