/**
 * A value now, or a promise of it only when something has to wait (a remote key set, RSA on the
 * thread pool, a store, a user hook): how the pipeline stays free of promises, and of their
 * microtask hops, for a request that needs none (fast-jwt's `createVerifier` model).
 */
export type Awaitable<T> = T | Promise<T>

/**
 * Whether `value` is something to wait for. What a user's hook returns is awaited when it is
 * any thenable, as `await` would; the guard's own stages return native promises.
 */
export function isThenable<T> (value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null | undefined)?.then === 'function'
}
