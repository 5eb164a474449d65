/**
 * The thread pool the command starts (lib/threadpool.cts): a core each left to the event loops,
 * at least one thread, unless UV_THREADPOOL_SIZE says otherwise; with --workers, the cores
 * shared out among the workers. Observed from outside, as the threads of the real processes
 * (Linux: /proc), against a run whose size the user set: only the pool's threads differ.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { keys } from '../../test/helpers/keys.js'
import threadpool from '../lib/threadpool.cjs'
import { start, stop, waitFor } from './helpers/bin.js'

t.test('threadPoolSize: a core per process left to its event loop, at least one thread', async t => {
  const cases: Array<[processes: number, cores: number, threads: number]> = [
    [1, 1, 1], [1, 2, 1], [1, 4, 3], [1, 16, 15], [2, 2, 1], [2, 8, 3], [8, 8, 1], [3, 2, 1]
  ]
  for (const [processes, cores, threads] of cases) {
    t.equal(threadpool.threadPoolSize(processes, cores), threads, `${processes} process(es) on ${cores} core(s): ${threads}`)
  }
})

const LINUX = process.platform === 'linux'

function threads (pid: number): number {
  return readdirSync(`/proc/${pid}/task`).length
}

function workerPids (primary: number): number[] {
  return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
}

t.test('serve starts libuv\'s pool with the chosen size, or the one the user set', { skip: LINUX ? false : 'reads /proc' }, async t => {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return t.skip('UV_THREADPOOL_SIZE is set for the tests')
  const chosen = threadpool.threadPoolSize(1)
  const args = ['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn']
  // Without tap's --import hook, which loads through the ES module loader and so starts the pool
  // before the command runs (a user with such hooks sets UV_THREADPOOL_SIZE themselves).
  const own = await start(args, { noHooks: true })
  const set = await start(args, { noHooks: true, env: { UV_THREADPOOL_SIZE: String(chosen + 3) } })
  t.equal(threads(set.child.pid!) - threads(own.child.pid!), 3, `unset: ${chosen} pool thread(s) on ${availableParallelism()} core(s); set: the user's ${chosen + 3}`)
  t.equal(await stop(own), 0)
  t.equal(await stop(set), 0)
})

t.test('--workers 2: each worker\'s pool gets its share of the cores, or the size the user set', { skip: LINUX ? false : 'reads /proc' }, async t => {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return t.skip('UV_THREADPOOL_SIZE is set for the tests')
  const chosen = threadpool.threadPoolSize(2)
  const args = ['serve', '--port', '0', '--public-key', keys.publicPem, '--workers', '2', '--log-level', 'warn']
  const own = await start(args, { noHooks: true })
  const set = await start(args, { noHooks: true, env: { UV_THREADPOOL_SIZE: String(chosen + 3) } })
  await waitFor('two workers each', () => workerPids(own.child.pid!).length === 2 && workerPids(set.child.pid!).length === 2)
  const ownThreads = workerPids(own.child.pid!).map(threads)
  const setThreads = workerPids(set.child.pid!).map(threads)
  t.equal(Math.max(...setThreads) - Math.max(...ownThreads), 3, `unset: ${chosen} pool thread(s) per worker; set: the user's ${chosen + 3} (threads ${ownThreads.join(', ')} against ${setThreads.join(', ')})`)
  t.equal(await stop(own), 0)
  t.equal(await stop(set), 0)
})
