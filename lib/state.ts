/**
 * The replay and revocation stage of the request pipeline (SPEC 7): after the token verified
 * (cache hits included) and before the ACL. Its options are validated here, once, for
 * `normalizeOptions()`. One store serving both replay and revocation is asked once per request.
 * A store or hook that fails or does not answer within `stateTimeout` is 503 `VJG_UNAVAILABLE`,
 * unless `failOpen`; a definite answer (revoked, replayed) from another check still wins.
 */
import { GuardError, invalidOption } from './errors.js'
import { consumeQuery } from './replay.js'
import { revocationQuery } from './revocation.js'
import { createMemoryStore } from './stores/memory.js'
import { withTimeout, type GuardStore, type StoreAnswer, type StoreQuery } from './stores/store.js'
import type { VonageClaims } from './options.js'

/** `isRevoked(claims, request)`: true revokes; sync or async; a throw or a non-boolean is a failed check. */
export type RevocationHook<Request = unknown> = (claims: Readonly<VonageClaims>, request: Request) => boolean | Promise<boolean>

export interface StateOptions {
  readonly replayStore: GuardStore | null
  readonly revocationStore: GuardStore | null
  readonly isRevoked: RevocationHook<any> | null
  readonly failOpen: boolean
  /** Ms to wait for a store or the hook. */
  readonly timeout: number
}

/** The slice of a verified token the stage reads. */
export interface StateToken {
  readonly claims: Readonly<VonageClaims>
  readonly expiresAt: number
}

/** Runs the stage for one request: resolves, or throws a GuardError (401 replayed / revoked, 503). */
export type StateStage = (token: StateToken, request: unknown) => Promise<void>

function isStore (value: unknown, methods: readonly string[]): value is GuardStore {
  return typeof value === 'object' && value !== null && methods.every(m => typeof (value as Record<string, unknown>)[m] === 'function')
}

/** Validate `replay`, `revocation`, `isRevoked`, `failOpen` and `stateTimeout`. */
export function stateOptions (options: Record<string, unknown>, maxLifetime: number): StateOptions {
  const { replay, revocation, isRevoked, failOpen = false, stateTimeout = 1000 } = options
  let replayStore: GuardStore | null = null
  if (replay === true) {
    const now = typeof options.now === 'function' ? options.now as () => number : Date.now
    replayStore = createMemoryStore({ now, maxLifetime })
  } else if (replay !== undefined && replay !== false) {
    const store = (replay as { store?: unknown } | null)?.store
    if (typeof replay !== 'object' || replay === null || !isStore(store, ['check']) || Object.keys(replay).length !== 1) {
      invalidOption('replay', 'must be true, false or { store } with a store from createMemoryStore() or createRedisStore()')
    }
    replayStore = store
  }
  let revocationStore: GuardStore | null = null
  if (revocation !== undefined) {
    if (!isStore(revocation, ['check', 'revokeToken', 'revokeSubject'])) {
      invalidOption('revocation', 'must be a store with check, revokeToken and revokeSubject (createMemoryStore() or createRedisStore())')
    }
    if (typeof revocation.maxLifetime === 'number' && revocation.maxLifetime < maxLifetime) {
      invalidOption('revocation', `keeps subject revocations for ${revocation.maxLifetime} s, less than maxLifetime (${maxLifetime} s): create the store with maxLifetime >= ${maxLifetime}`)
    }
    revocationStore = revocation
  }
  if (isRevoked !== undefined && typeof isRevoked !== 'function') invalidOption('isRevoked', 'must be a function (claims, request) => boolean | Promise<boolean>')
  if (typeof failOpen !== 'boolean') invalidOption('failOpen', `must be true or false (got ${typeof failOpen})`)
  if (typeof stateTimeout !== 'number' || !Number.isInteger(stateTimeout) || stateTimeout < 1 || stateTimeout > 60_000) {
    invalidOption('stateTimeout', `must be an integer number of ms from 1 to 60000 (got ${String(stateTimeout)})`)
  }
  return Object.freeze({
    replayStore,
    revocationStore,
    isRevoked: (isRevoked as RevocationHook<any> | undefined) ?? null,
    failOpen,
    timeout: stateTimeout
  })
}

type Outcome = StoreAnswer | { readonly failure: unknown }

const NO: StoreAnswer = Object.freeze({ replayed: false, revoked: false })

/** The stage for these options, or null when replay and revocation are both off. */
export function createStateStage (state: StateOptions, clock: { now: () => number, clockTolerance: number }): StateStage | null {
  const { replayStore, revocationStore, isRevoked, failOpen, timeout } = state
  if (replayStore === null && revocationStore === null && isRevoked === null) return null
  const shared = replayStore !== null && replayStore === revocationStore

  // Called directly, so a synchronous store or hook (the memory store) costs no timer.
  function ask (store: GuardStore, query: StoreQuery): Promise<Outcome> {
    let answer: ReturnType<GuardStore['check']>
    try {
      answer = store.check(query)
    } catch (failure) {
      return Promise.resolve({ failure })
    }
    return withTimeout(answer, timeout, 'The replay or revocation store')
      .then((answer): Outcome => answer, (failure: unknown): Outcome => ({ failure }))
  }

  function hook (claims: Readonly<VonageClaims>, request: unknown): Promise<Outcome> {
    let result: ReturnType<RevocationHook>
    try {
      result = isRevoked!(claims, request)
    } catch (failure) {
      return Promise.resolve({ failure })
    }
    return withTimeout(result, timeout, 'isRevoked')
      .then((result): Outcome => typeof result === 'boolean'
        ? (result ? { replayed: false, revoked: true } : NO)
        : { failure: new TypeError(`isRevoked returned ${typeof result}, not a boolean`) },
      (failure: unknown): Outcome => ({ failure }))
  }

  return async (token, request) => {
    const now = clock.now()
    const consume = replayStore === null ? undefined : consumeQuery(token, clock.clockTolerance)
    const revoked = revocationStore === null ? undefined : revocationQuery(token.claims)
    const pending: Array<Promise<Outcome>> = []
    if (shared) {
      pending.push(ask(replayStore, { consume, revoked, now }))
    } else {
      if (replayStore !== null) pending.push(ask(replayStore, { consume, now }))
      if (revocationStore !== null) pending.push(ask(revocationStore, { revoked, now }))
    }
    if (isRevoked !== null) pending.push(hook(token.claims, request))
    const outcomes = await Promise.all(pending)

    let failure: { failure: unknown } | undefined
    let replayed = false
    for (const outcome of outcomes) {
      if ('failure' in outcome) {
        failure ??= outcome
      } else {
        if (outcome.revoked) throw new GuardError('VJG_TOKEN_REVOKED')
        replayed ||= outcome.replayed
      }
    }
    if (replayed) throw new GuardError('VJG_TOKEN_REPLAYED')
    if (failure !== undefined && !failOpen) {
      throw new GuardError('VJG_UNAVAILABLE', 'The replay or revocation check could not be made', { cause: failure.failure })
    }
  }
}
