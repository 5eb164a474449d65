/**
 * The replay and revocation stage of the request pipeline (docs/several-instances.md, "Replay protection" and "Revocation"):
 * after the token verified
 * (cache hits included) and before the ACL. Its options are validated here, once, for
 * `normalizeOptions()`. One store serving both replay and revocation is asked once per request.
 * A store or hook that fails or does not answer within `stateTimeout` is reported to the pipeline,
 * which refuses 503 `VJG_UNAVAILABLE` unless `failOpen`; a definite answer (revoked, replayed)
 * from another check still wins.
 */
import { isThenable, type Awaitable } from './awaitable.js'
import { GuardError, invalidOption } from './errors.js'
import { isPlainObject } from './is-plain-object.js'
import { consumeQuery } from './replay.js'
import { revocationQuery } from './revocation.js'
import { createMemoryStore } from './stores/memory.js'
import { withTimeout, type GuardStore, type StoreAnswer, type StoreQuery } from './stores/store.js'
import type { RevocationHook, StateCheck, VerifiedToken } from './types.js'

export type { RevocationHook } from './types.js'

export interface StateOptions<Request = unknown> {
  readonly replayStore: GuardStore | null
  readonly revocationStore: GuardStore | null
  readonly isRevoked: RevocationHook<Request> | null
  readonly failOpen: boolean
  /** Ms to wait for a store or the hook. */
  readonly timeout: number
}

/** Checks whose store or hook failed or did not answer in time, with the first failure. */
export interface StateFailure {
  readonly checks: readonly StateCheck[]
  readonly cause: unknown
}

/**
 * Runs the stage for one request: null when every check passed, the checks that could not be
 * made (the pipeline refuses or skips them as `failOpen` says), or a thrown GuardError (401
 * replayed / revoked). A promise only when a store or the hook answers with one.
 */
type StateStage<Request = unknown> = (token: VerifiedToken, request: Request) => Awaitable<StateFailure | null>

function isStore (value: unknown, methods: readonly string[]): value is GuardStore {
  return typeof value === 'object' && value !== null && methods.every(m => typeof (value as Record<string, unknown>)[m] === 'function')
}

/** Validate `replay`, `revocation`, `isRevoked`, `failOpen` and `stateTimeout`. */
export function stateOptions<Request> (options: Record<string, unknown>, maxLifetime: number): StateOptions<Request> {
  const { replay, revocation, isRevoked, failOpen = false, stateTimeout = 1000 } = options
  let replayStore: GuardStore | null = null
  if (replay === true) {
    const now = typeof options.now === 'function' ? options.now as () => number : Date.now
    replayStore = createMemoryStore({ now, maxLifetime })
  } else if (replay !== undefined && replay !== false) {
    if (!isPlainObject(replay) || !isStore(replay.store, ['check']) || Object.keys(replay).length !== 1) {
      invalidOption('replay', 'must be true, false or { store } with a store from createMemoryStore() or createRedisStore()')
    }
    replayStore = replay.store
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
    isRevoked: (isRevoked as RevocationHook<Request> | undefined) ?? null,
    failOpen,
    timeout: stateTimeout
  })
}

/** What one store or the hook answered, for the checks it stands for. */
type Outcome = { readonly checks: readonly StateCheck[] } & (StoreAnswer | { readonly failure: unknown })

const REVOKED: StoreAnswer = Object.freeze({ replayed: false, revoked: true })
const NOT_REVOKED: StoreAnswer = Object.freeze({ replayed: false, revoked: false })

/** The stage for these options, or null when replay and revocation are both off. */
export function createStateStage<Request> (state: StateOptions<Request>, clock: { now: () => number, clockTolerance: number }): StateStage<Request> | null {
  const { replayStore, revocationStore, isRevoked, timeout } = state
  if (replayStore === null && revocationStore === null && isRevoked === null) return null
  const shared = replayStore !== null && replayStore === revocationStore
  const sharedChecks: readonly StateCheck[] = Object.freeze(['replay', 'revocation'])
  const replayChecks: readonly StateCheck[] = Object.freeze(['replay'])
  const revocationChecks: readonly StateCheck[] = Object.freeze(['revocation'])
  const hookChecks: readonly StateCheck[] = Object.freeze(['isRevoked'])

  /**
   * One answer, waited for only when it is a promise (the memory store answers at once, so it
   * costs no timer and no promise); a throw, a rejection or no answer within `timeout` is a failure.
   */
  function settle (checks: readonly StateCheck[], what: string, answer: () => unknown, read: (value: unknown) => StoreAnswer | { failure: unknown }): Awaitable<Outcome> {
    let value: unknown
    try {
      value = answer()
    } catch (failure) {
      return { checks, failure }
    }
    if (!isThenable(value)) return { checks, ...read(value) }
    return withTimeout(value, timeout, what).then((settled): Outcome => ({ checks, ...read(settled) }), (failure: unknown): Outcome => ({ checks, failure }))
  }

  const storeAnswer = (value: unknown): StoreAnswer => value as StoreAnswer
  const hookAnswer = (value: unknown): StoreAnswer | { failure: unknown } => typeof value === 'boolean'
    ? (value ? REVOKED : NOT_REVOKED)
    : { failure: new TypeError(`isRevoked returned ${typeof value}, not a boolean`) }

  /** A definite answer (revoked, replayed) wins over a failure. */
  function decide (outcomes: readonly Outcome[]): StateFailure | null {
    let failed: StateCheck[] | undefined
    let cause: unknown
    let replayed = false
    for (const outcome of outcomes) {
      if ('failure' in outcome) {
        if (failed === undefined) {
          failed = []
          cause = outcome.failure
        }
        failed.push(...outcome.checks)
      } else {
        if (outcome.revoked) throw new GuardError('VJG_TOKEN_REVOKED')
        replayed ||= outcome.replayed
      }
    }
    if (replayed) throw new GuardError('VJG_TOKEN_REPLAYED')
    if (failed === undefined) return null
    return { checks: Object.freeze(failed), cause }
  }

  return (token, request) => {
    const now = clock.now()
    const consume = replayStore === null ? undefined : consumeQuery(token, clock.clockTolerance)
    const revoked = revocationStore === null ? undefined : revocationQuery(token)
    const answers: Array<Awaitable<Outcome>> = []
    const ask = (store: GuardStore, checks: readonly StateCheck[], query: StoreQuery): void => {
      answers.push(settle(checks, 'The replay or revocation store', () => store.check(query), storeAnswer))
    }
    if (shared) {
      ask(replayStore, sharedChecks, { consume, revoked, now })
    } else {
      if (replayStore !== null) ask(replayStore, replayChecks, { consume, now })
      if (revocationStore !== null) ask(revocationStore, revocationChecks, { revoked, now })
    }
    if (isRevoked !== null) answers.push(settle(hookChecks, 'isRevoked', () => isRevoked(token.claims, request), hookAnswer))
    if (answers.some(isThenable)) return Promise.all(answers.map(answer => Promise.resolve(answer))).then(decide)
    return decide(answers as Outcome[])
  }
}
