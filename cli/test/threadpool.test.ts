/**
 * The thread pool the command starts (lib/threadpool.cts): a core each left to the event loops,
 * at least one thread, unless UV_THREADPOOL_SIZE says otherwise; with --workers, the cores
 * shared out among the workers. Observed from outside (Linux: /proc): the threads of a real
 * process against a run whose size the user set, and the environment each worker started with.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import t from 'tap'
import { keys } from '../../test/helpers/keys.js'
import threadpool from '../lib/threadpool.cjs'
import { rawRequest } from '../../test/helpers/http.js'
import { liveToken, portOf, start, stop, waitFor, type Server } from './helpers/bin.js'

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

/** The environment a process started with (a worker's is what the primary forked it with). */
function startEnv (pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
}

function workerPids (primary: number): number[] {
  return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
}

/** Twenty requests at once with tokens of their own: more than one RSA verification under way, so the thread pool is used (and started). */
async function busy (server: Server): Promise<void> {
  const port = portOf(server.base)
  const tokens = await Promise.all(Array.from({ length: 20 }, async (_, i) => await liveToken({ jti: `busy-${i}-${Math.random()}` })))
  await Promise.all(tokens.map(async token => await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${token}` })))
}

t.test('serve starts libuv\'s pool with the chosen size, or the one the user set', { skip: LINUX ? false : 'reads /proc' }, async t => {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return t.skip('UV_THREADPOOL_SIZE is set for the tests')
  const chosen = threadpool.threadPoolSize(1)
  const args = ['serve', '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn']
  // Without tap's --import hook, which loads through the ES module loader and so, on Node 20,
  // starts the pool before the command runs (a user with such hooks sets UV_THREADPOOL_SIZE).
  const own = await start(args, { noHooks: true })
  const set = await start(args, { noHooks: true, env: { UV_THREADPOOL_SIZE: String(chosen + 3) } })
  // libuv starts every thread of its pool on first use (Node 22 and later: the first
  // verification sent there); the two servers then differ by their pools alone.
  await waitFor(`the pools of ${chosen} and ${chosen + 3} threads`, async () => {
    await Promise.all([busy(own), busy(set)])
    return threads(set.child.pid!) - threads(own.child.pid!) === 3
  })
  t.pass(`unset: ${chosen} pool thread(s) on ${availableParallelism()} core(s); set: the user's ${chosen + 3}`)
  t.equal(await stop(own), 0)
  t.equal(await stop(set), 0)
})

t.test('--workers 2: each worker is started with its share of the cores, or the size the user set', { skip: LINUX ? false : 'reads /proc' }, async t => {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return t.skip('UV_THREADPOOL_SIZE is set for the tests')
  const args = ['serve', '--port', '0', '--public-key', keys.publicPem, '--workers', '2', '--log-level', 'warn']
  const own = await start(args)
  const set = await start(args, { env: { UV_THREADPOOL_SIZE: '7' } })
  await waitFor('two workers each', () => workerPids(own.child.pid!).length === 2 && workerPids(set.child.pid!).length === 2)
  for (const pid of workerPids(own.child.pid!)) {
    t.ok(startEnv(pid).includes(`UV_THREADPOOL_SIZE=${threadpool.threadPoolSize(2)}`), `a worker of 2 on ${availableParallelism()} core(s): ${threadpool.threadPoolSize(2)} thread(s)`)
  }
  for (const pid of workerPids(set.child.pid!)) t.ok(startEnv(pid).includes('UV_THREADPOOL_SIZE=7'), 'the user\'s size')
  t.equal(await stop(own), 0)
  t.equal(await stop(set), 0)
})
