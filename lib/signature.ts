/**
 * Signatures and keys: the JWS algorithms, one signature check on one key (node:crypto on a
 * prepared KeyObject, on the calling thread or the libuv thread pool), where the RSA work runs,
 * the order in which several keys are tried, and how a verifier finds a token's keys.
 */
import { constants, createHmac, timingSafeEqual, verify as cryptoVerify } from 'node:crypto'
import type { Awaitable } from './awaitable.js'
import { GuardError } from './errors.js'
import { createRemoteKeySet } from './jwks.js'
import type { PreparedKey } from './keys.js'
import type { KeySource } from './options.js'
import { issuerId } from './profiles.js'
import type { ParsedToken } from './token.js'

/** Hash and padding per JWS algorithm (RFC 7518 section 3). */
export const ALGORITHMS: Readonly<Record<string, { hash: string, kind: 'pkcs1' | 'pss' | 'hmac', bytes: number } | undefined>> = {
  RS256: { hash: 'sha256', kind: 'pkcs1', bytes: 32 },
  RS384: { hash: 'sha384', kind: 'pkcs1', bytes: 48 },
  RS512: { hash: 'sha512', kind: 'pkcs1', bytes: 64 },
  PS256: { hash: 'sha256', kind: 'pss', bytes: 32 },
  PS384: { hash: 'sha384', kind: 'pss', bytes: 48 },
  PS512: { hash: 'sha512', kind: 'pss', bytes: 64 },
  HS256: { hash: 'sha256', kind: 'hmac', bytes: 32 },
  HS384: { hash: 'sha384', kind: 'hmac', bytes: 48 },
  HS512: { hash: 'sha512', kind: 'hmac', bytes: 64 }
}

/**
 * One signature check on one key. Never throws, never rejects: a key that cannot verify is a
 * `false`. With `onPool`, RSA runs on the libuv thread pool (`crypto.verify` with a callback)
 * and the answer is a promise; HMAC, and anything refused before the math, stays on the calling
 * thread and answers at once.
 */
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey): boolean
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey, onPool: boolean): Awaitable<boolean>
export function verifySignature (alg: string, signingInput: Buffer, signature: Buffer, prepared: PreparedKey, onPool = false): Awaitable<boolean> {
  const spec = ALGORITHMS[alg]
  if (spec === undefined || (prepared.alg !== undefined && prepared.alg !== alg)) return false
  const key = prepared.key
  try {
    if (spec.kind === 'hmac') {
      if (key.type !== 'secret' || signature.length !== spec.bytes) return false
      return timingSafeEqual(createHmac(spec.hash, key).update(signingInput).digest(), signature)
    }
    // RSA: the signature is exactly as long as the modulus (RFC 8017 8.2.2 step 1).
    if (key.type !== 'public' || signature.length !== prepared.size) return false
    const keyInput = spec.kind === 'pkcs1' ? key : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.bytes }
    if (!onPool) return cryptoVerify(spec.hash, signingInput, keyInput, signature)
    return new Promise((resolve) => {
      try {
        cryptoVerify(spec.hash, signingInput, keyInput, signature, (error, valid) => { resolve(error === null && valid) })
      } catch {
        resolve(false)
      }
    })
  } catch {
    return false
  }
}


/**
 * How many RSA verifications under way make a server busy: on the thread pool, or already run
 * on the calling thread in this turn of the event loop. Measured in bench/ (connections 1, 2,
 * 10, 100): see `createPoolRule`.
 */
export const BUSY = 2

/** Where the RSA work of one token runs. */
interface PoolRule {
  /** True: on the thread pool; false: on the calling thread. Asked once per token. */
  readonly toPool: () => boolean
  /** A verification went to the pool; `settled` when it answered. */
  readonly started: () => void
  readonly settled: () => void
}

/**
 * RSA on the thread pool only when the server is busy. A hop to the pool costs a request latency
 * (two thread handovers) and saves the event loop the RSA work: worth it when requests queue
 * behind each other, a loss when one is alone or two take turns (the measured costs are in
 * docs/benchmark.md, "Measured choices in the code"). "Busy" is BUSY verifications already under way, counted from two signs that cost
 * nothing to keep: those still on the pool, and those run on the calling thread in this turn of
 * the event loop (the poll phase handed over several requests at once). One or two connections
 * never get there, so every token is verified on the calling thread; under load the pool keeps
 * two or more and every token goes there. (Going to the pool as soon as one verification was on
 * it made the pool hold itself at two connections, a loss in bench/ conn-2.)
 */
export function createPoolRule (enabled: boolean): PoolRule {
  let onPool = 0
  let onThreadThisTurn = 0
  let turnWatched = false
  const endTurn = (): void => {
    onThreadThisTurn = 0
    turnWatched = false
  }
  return {
    toPool: () => {
      if (!enabled) return false
      if (onPool + onThreadThisTurn >= BUSY) return true
      onThreadThisTurn++
      if (!turnWatched) {
        turnWatched = true
        // Runs in the check phase, after every request this poll phase handed over.
        setImmediate(endTurn)
      }
      return false
    },
    started: () => { onPool++ },
    settled: () => { onPool-- }
  }
}

/**
 * The bytes of a signing input for a verification on the calling thread: written into one
 * buffer kept for that (nothing else runs between the write and the synchronous verify), which
 * saves an allocation and a copy per token. The thread pool gets a buffer of its own.
 */
let scratch = Buffer.allocUnsafeSlow(8192)

export function signingBytes (signingInput: string, onThread: boolean): Buffer {
  if (!onThread) return Buffer.from(signingInput, 'latin1')
  if (signingInput.length > scratch.length) scratch = Buffer.allocUnsafeSlow(signingInput.length)
  return scratch.subarray(0, scratch.write(signingInput, 0, 'latin1'))
}


/**
 * The keys to try, best first: those whose `kid` the token names, then the key that verified
 * last, then the others in their configured order. Only the order changes: a token verifies if
 * any of the candidates verifies it, as before, but rotation with several keys costs one RSA
 * operation, not one per key ahead of the signer.
 */
export function orderedKeys (candidates: readonly PreparedKey[], kid: unknown, last: PreparedKey | undefined): readonly PreparedKey[] {
  if (candidates.length < 2) return candidates
  const named = typeof kid === 'string' && candidates.some(key => key.kid === kid)
  if (!named && (last === undefined || candidates[0] === last || !candidates.includes(last))) return candidates
  const first = named ? candidates.filter(key => key.kid === kid) : []
  if (last !== undefined && !first.includes(last) && candidates.includes(last)) first.push(last)
  for (const key of candidates) if (!first.includes(key)) first.push(key)
  return first
}

/** How one verifier finds the keys of a token, and whether a key that verified one still counts. */
interface KeyLookup {
  /** The keys that may verify this token: configured ones now, a remote key set's once it answered. */
  readonly keysFor: (parsed: ParsedToken, alg: string) => Awaitable<readonly PreparedKey[]>
  /** Whether a cached token's key still verifies: always for configured keys; while listed, for a remote key set. */
  readonly holds: (key: PreparedKey) => Awaitable<boolean>
  /** Readiness: some key is configured, or the remote key set was fetched at least once. */
  readonly loaded: () => Awaitable<boolean>
}

const ALWAYS = (): boolean => true

export function createKeyLookup (source: KeySource, now: () => number): KeyLookup {
  if (source.kind === 'static') return { keysFor: () => source.keys, holds: ALWAYS, loaded: () => source.keys.length > 0 }
  if (source.kind === 'jwks') {
    const remote = createRemoteKeySet(source.jwks, now)
    // A key removed from the JWKS stops verifying cached tokens as soon as the set is refreshed.
    return { keysFor: (parsed, alg) => remote.keysFor(parsed.header, alg), holds: key => remote.holds(key), loaded: () => remote.loaded() }
  }
  return {
    keysFor: (parsed) => {
      const claim = parsed.payload[source.claim]
      // OpenTok SDKs send the API key in `iss` as a string or a JSON integer: the same key.
      const id = source.integerIds === true ? issuerId(claim) : claim
      const keys = typeof id === 'string' ? source.keys.get(id) : undefined
      if (keys === undefined) throw new GuardError('VJG_KEY_UNKNOWN', `No key is configured for the token's "${source.claim}"`, { claim: source.claim })
      return keys
    },
    holds: ALWAYS,
    // An empty --public-keys-dir: every token is refused (KEY_UNKNOWN) until a key arrives.
    loaded: () => source.keys.size > 0
  }
}

