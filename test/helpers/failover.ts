/**
 * A primary killed under load, for the Cluster and Sentinel tests: distinct tokens keep arriving
 * at two guard instances while the primary is SIGKILLed (its replica optionally stalled first, so
 * that it misses the last writes, as a lagging replica does), then every token accepted is sent
 * again once the guard recovered. A token accepted twice is a replay the failover let through.
 */
import type { FastifyInstance } from 'fastify'
import { bearer } from './app.js'

interface FailoverPlan {
  /** The instances, each with its own store. */
  readonly apps: readonly FastifyInstance[]
  /** A new token with a new jti (whose keys the killed primary serves). */
  readonly token: () => Promise<string>
  /** SIGSTOP the replica that will be promoted, or nothing (then the kill alone). */
  readonly stall?: () => Promise<void>
  readonly resume?: () => void
  /** SIGKILL the primary. */
  readonly kill: () => Promise<void>
  /** Resolves once the replica was promoted (the topology says so). */
  readonly promoted: () => Promise<void>
  /** Start the killed node again (it comes back as a replica of the new primary). */
  readonly restart: () => Promise<void>
}

interface FailoverResult {
  /** Requests by status. */
  readonly statuses: Record<number, number>
  /** The longest request, in ms. */
  readonly slowest: number
  /** Ms from the kill to the first 200 for a request sent after it; null if none came. */
  readonly recoveredAfter: number | null
  /** Ms from the kill until the topology reported the failover done (Sentinel: its configuration updated, which comes after the promotion itself). */
  readonly promotedAfter: number
  /** Tokens accepted during the run. */
  readonly accepted: number
  /** Of those, accepted a second time when sent again after the failover. */
  readonly acceptedTwice: number
  /** The answers to sending them again, by status: 401 (replayed), or 200 (accepted twice). */
  readonly resent: Record<number, number>
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function send (app: FastifyInstance, jwt: string): Promise<{ status: number, sentAt: number, elapsed: number }> {
  const sentAt = Date.now()
  const res = await app.inject({ url: '/v1/users', headers: bearer(jwt) })
  return { status: res.statusCode, sentAt, elapsed: Date.now() - sentAt }
}

export async function failoverUnderLoad (plan: FailoverPlan, { workers = 4, pause = 10, settle = 800, limit = 25_000 } = {}): Promise<FailoverResult> {
  const statuses: Record<number, number> = {}
  const accepted: string[] = []
  let slowest = 0
  let killedAt = Infinity
  let firstAfter: number | null = null
  let running = true

  async function worker (index: number): Promise<void> {
    for (let i = index; running; i++) {
      const jwt = await plan.token()
      const answer = await send(plan.apps[i % plan.apps.length]!, jwt)
      statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
      slowest = Math.max(slowest, answer.elapsed)
      if (answer.status === 200) {
        accepted.push(jwt)
        if (answer.sentAt > killedAt && firstAfter === null) firstAfter = answer.sentAt + answer.elapsed - killedAt
      }
      await sleep(pause)
    }
  }

  const load = Promise.all(Array.from({ length: workers }, (_, i) => worker(i)))
  let promotedAfter = 0
  try {
    await sleep(400)
    await plan.stall?.()
    await sleep(300)
    await plan.kill()
    killedAt = Date.now()
    plan.resume?.()
    await plan.promoted()
    promotedAfter = Date.now() - killedAt
    // Only now: a primary restarted before its replica took over would come back empty, and own its slots again.
    await plan.restart()
    const until = killedAt + limit
    while (firstAfter === null && Date.now() < until) await sleep(50)
    await sleep(settle)
  } finally {
    running = false
    await load
  }

  const resent: Record<number, number> = {}
  for (let i = 0; i < accepted.length; i += 8) {
    const again = await Promise.all(accepted.slice(i, i + 8).map((jwt, j) => send(plan.apps[j % plan.apps.length]!, jwt)))
    for (const answer of again) resent[answer.status] = (resent[answer.status] ?? 0) + 1
  }
  return { statuses, slowest, recoveredAfter: firstAfter, promotedAfter, accepted: accepted.length, acceptedTwice: resent[200] ?? 0, resent }
}
