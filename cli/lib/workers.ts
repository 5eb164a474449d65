/**
 * `--workers N`: the primary of a `node:cluster`. It answers no request itself: it forks N
 * workers (each runs the same command line, serving one shared port), prints the banner once
 * all listen, replaces a worker that dies (at most `RESTART_LIMIT` times within
 * `RESTART_WINDOW`, so a crash loop ends), serves the sum of their metrics with
 * `--metrics-port`, and on SIGTERM or Ctrl-C asks each to stop gracefully and exits once all
 * have (0 when all exited 0).
 */
import cluster, { type Worker } from 'node:cluster'
import { metricsUrl, primaryMetrics } from './metrics.js'
import type { ServerFlags } from './server-flags.js'
import { EXIT, reachableHost } from './shared.js'
import threadpool from './threadpool.cjs'

/** Replacements allowed within `RESTART_WINDOW` ms; one more and the primary gives up (exit 1). */
const RESTART_LIMIT = 5
const RESTART_WINDOW = 60_000

/** Run the primary; returns once every worker listens (the process then lives on the workers). */
export async function runPrimary (flags: ServerFlags, banner: (base: string) => string): Promise<void> {
  const metrics = flags.metricsPort === undefined ? '' : `metrics: ${metricsUrl(flags.metricsHost, await primaryMetrics(flags.metricsHost, flags.metricsPort))}\n`
  const say = (line: string): void => { process.stderr.write(`vonage-jwt-guard: ${line}\n`) }
  let stopping = false
  let failed = false
  const restarts: number[] = []
  // Each worker has a thread pool of its own: the cores are shared out among them (threadpool.cts).
  const env = threadpool.USER_THREADPOOL_SIZE === undefined ? { UV_THREADPOOL_SIZE: String(threadpool.threadPoolSize(flags.workers)) } : undefined

  const finish = (): void => {
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(failed ? EXIT.FAILED : EXIT.OK)
  }
  const stopAll = (why: string, failure: boolean): void => {
    failed ||= failure
    if (stopping) return
    stopping = true
    say(`${why}: stopping the workers (requests in flight get ${flags.gracePeriod} s to finish)`)
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected() === true) worker.send({ vjg: 'stop' })
      else worker?.kill('SIGTERM')
    }
    // A worker exits 1 once its grace period is over; this is only the backstop.
    setTimeout(() => {
      say('the workers did not stop in time: killing them')
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
      process.exit(EXIT.FAILED)
    }, (flags.gracePeriod + 5) * 1000).unref()
    finish()
  }

  const ready = new Promise<number>((resolve, reject) => {
    const starting = new Set<Worker>()
    for (let i = 0; i < flags.workers; i++) starting.add(cluster.fork(env))
    let port = 0
    cluster.on('listening', (worker, address) => {
      if (!starting.delete(worker)) return
      port = address.port
      if (starting.size === 0) resolve(port)
    })
    cluster.on('exit', (worker, code, signal) => {
      const how = code === null ? `was killed by ${signal}` : `exited with ${code}`
      if (stopping) {
        if (code !== 0) failed = true
        finish()
        return
      }
      if (starting.has(worker)) {
        // A worker that cannot start (a port in use): the others would fail alike.
        reject(new Error(`worker ${worker.process.pid} ${how} before listening`))
        return
      }
      const now = Date.now()
      restarts.push(now)
      while (restarts.length > 0 && restarts[0]! <= now - RESTART_WINDOW) restarts.shift()
      if (restarts.length > RESTART_LIMIT) {
        say(`worker ${worker.process.pid} ${how}; workers died ${restarts.length} times within ${RESTART_WINDOW / 1000} s: giving up`)
        stopAll('crash loop', true)
        return
      }
      const replacement = cluster.fork(env)
      say(`worker ${worker.process.pid} ${how}; worker ${replacement.process.pid} replaces it`)
    })
  })

  const signalled = (signal: NodeJS.Signals): void => {
    if (stopping) killAll()
    stopAll(signal, false)
  }
  process.on('SIGINT', signalled)
  process.on('SIGTERM', signalled)
  let port: number
  try {
    port = await ready
  } catch (error) {
    say(`${(error as Error).message}: stopping`)
    stopAll('start failed', true)
    return
  }
  const pids = Object.values(cluster.workers ?? {}).map(w => w?.process.pid).join(', ')
  process.stdout.write(`${metrics}${flags.workers} workers (pids ${pids})\n${banner(`http://${reachableHost(flags.host)}:${port}`)}\n`)
}

/** A second signal: every worker is killed at once, exit 1. */
function killAll (): never {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
  process.exit(EXIT.FAILED)
}
