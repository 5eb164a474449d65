/**
 * The size of libuv's thread pool, where the guard verifies RSA signatures while the server is
 * busy. libuv starts 4 threads unless `UV_THREADPOOL_SIZE` says otherwise, and reads it once,
 * when the pool is first used; Node 20's ES module loader uses the pool to read modules, so the
 * command's entry point (bin.cts) is CommonJS and chooses the size before its first `import`.
 * A value the user set is never changed. CommonJS here too, so that the entry point can load it.
 *
 * Why: 4 threads verifying RSA beside the event loop oversubscribe a small machine (measured:
 * docs/benchmark.md, "Measured choices in the code"). One thread per core beside each event
 * loop's keeps the cores busy without making them take turns.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- CommonJS on purpose: see above
import os = require('node:os')

/** `UV_THREADPOOL_SIZE` as this process found it: undefined when the user did not set it. */
const USER_THREADPOOL_SIZE: string | undefined = process.env.UV_THREADPOOL_SIZE

/** The threads of each of `processes` processes sharing the machine: a core each is left to their event loops, at least one thread. */
function threadPoolSize (processes: number, cores: number = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / processes) - 1)
}

/** Size the pool of this process, unless the user did: called before anything uses the pool. */
function chooseThreadPoolSize (): void {
  if (USER_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(threadPoolSize(1))
}

export = { USER_THREADPOOL_SIZE, threadPoolSize, chooseThreadPoolSize }
