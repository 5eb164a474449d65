/** Redis for the tests: the server CI starts (VJG_REDIS_URL), a throwaway one we can stop, key clean-up. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../../lib/stores/redis.js'
import { freePort } from './http.js'

export const REDIS_URL = process.env.VJG_REDIS_URL

/** Why the Redis tests are skipped, or false when they run. */
export const SKIP_REDIS: string | false = REDIS_URL === undefined || REDIS_URL === ''
  ? 'VJG_REDIS_URL is not set: start redis-server and export VJG_REDIS_URL=redis://127.0.0.1:PORT (bash .ci/run does both)'
  : false

/** A key prefix no other run shares. */
export function uniquePrefix (): string {
  return `vjg-test:${randomUUID()}:`
}

export { freePort }

/** Delete every key under `prefix`. */
export async function deleteKeys (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (found.length > 0) await client.del(...found)
  } while (cursor !== '0')
}

/** Whether a redis-server binary is on PATH (CI installs one). */
export const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0

interface OwnRedis {
  url: string
  process: ChildProcess
  /** SIGKILL, and wait for the exit. */
  stop (): Promise<void>
}

/** A redis-server of our own (on a free port unless told), for tests that stop it. */
export async function startOwnRedis (port?: number): Promise<OwnRedis> {
  port ??= await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  // Wait until it answers (it starts in a few ms; give up after 5 s).
  for (let attempt = 0; ; attempt++) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch (error) {
      if (attempt >= 100) throw error
      await new Promise(resolve => setTimeout(resolve, 50))
    } finally {
      probe.disconnect()
    }
  }
  let exited = false
  child.once('exit', () => { exited = true })
  return {
    url,
    process: child,
    stop: () => new Promise<void>((resolve) => {
      if (exited) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }
}

/** The part of a tap test the helpers need. */
interface Teardown { teardown: (fn: () => unknown) => void }

/**
 * A maker of stores over `defaults`: each call gives a store of its own (its own connection, as
 * each instance of a deployment has), closed when the test ends.
 */
export function storeMaker (defaults: RedisStoreOptions): (t: Teardown, options?: RedisStoreOptions) => RedisStore {
  return (t, options = {}) => {
    const created = createRedisStore({ ...defaults, ...options })
    t.teardown(() => created.close())
    return created
  }
}
