/**
 * Real Redis topologies for the failover tests, from Debian's `redis-server`, `redis-sentinel`
 * and `redis-cli`: a three-primary, three-replica cluster (`redis-cli --cluster create`), and a
 * primary with one replica watched by a Sentinel. Every process listens on a free loopback port,
 * in a scratch folder of its own, and is killed by `stop()` (or when the test process exits).
 * Failure detection is tuned down (cluster-node-timeout, down-after-milliseconds) so that a
 * failover takes a second or two instead of the defaults' 15 to 30 s.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import t from 'tap'
import { freePort } from './http.js'

const has = (binary: string): boolean => spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0

/**
 * Why the tests that start nodes cannot run (a binary is missing), or false. On CI (CI=true) a
 * missing binary must not turn into a quiet skip: the tests then fail with this reason instead.
 */
export function skipWithout (binaries: readonly string[]): string | false {
  const missing = binaries.filter(binary => !has(binary))
  if (missing.length === 0) return false
  const reason = `${missing.join(', ')} not on PATH (Debian: apt-get install -y redis-server redis-sentinel)`
  // On CI a skip would hide a whole group behind a green run.
  if (process.env.CI === 'true') t.fail(`CI=true runs every test: ${reason}`)
  return reason
}

const CLUSTER_NODE_TIMEOUT = 500
const SENTINEL_DOWN_AFTER = 400

const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })
// tap ends a test past its timeout with SIGTERM, which skips 'exit': kill the nodes, then end as SIGTERM would.
process.once('SIGTERM', () => {
  for (const child of children) child.kill('SIGKILL')
  process.kill(process.pid, 'SIGTERM')
})

/** Every node still running: `stop()` of a topology kills them all, restarted ones included. */
async function killAll (): Promise<void> {
  await Promise.all([...children].map(child => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  })))
}

/** Redis Cluster's hash slot of a key (CRC16/XMODEM of the key, or of its {hash tag}, mod 16384). */
export function keySlot (key: string): number {
  let part = Buffer.from(key)
  const open = part.indexOf(0x7b)
  if (open !== -1) {
    const close = part.indexOf(0x7d, open + 1)
    if (close > open + 1) part = part.subarray(open + 1, close)
  }
  let crc = 0
  for (const byte of part) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

export interface Node {
  readonly port: number
  readonly host: '127.0.0.1'
  /** A client of its own, for set-up and inspection. */
  readonly admin: Redis
  /** SIGKILL (or `signal`) and wait for the exit. */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** SIGSTOP / SIGCONT: a node that is alive but reads nothing. */
  pause (): void
  resume (): void
  /** Start it again, same port, same arguments and `extra` (a killed cluster node rejoins from its nodes.conf). */
  restart (extra?: readonly string[]): Promise<Node>
}

async function answering (port: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      return
    } catch (error) {
      if (attempt >= 100) throw error
      await new Promise(resolve => setTimeout(resolve, 50))
    } finally {
      probe.disconnect()
    }
  }
}

async function start (binary: string, args: readonly string[], port: number): Promise<Node> {
  const child = spawn(binary, args, { stdio: 'ignore' })
  children.add(child)
  let exited = false
  child.once('exit', () => {
    exited = true
    children.delete(child)
  })
  await answering(port)
  const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => null })
  admin.on('error', () => {})
  return {
    port,
    host: '127.0.0.1',
    admin,
    kill: (signal = 'SIGKILL') => new Promise<void>((resolve) => {
      admin.disconnect()
      if (exited) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGCONT')
      child.kill(signal)
    }),
    pause: () => { child.kill('SIGSTOP') },
    resume: () => { child.kill('SIGCONT') },
    restart: (extra = []) => start(binary, [...args, ...extra], port)
  }
}

function serverArgs (port: number, dir: string, extra: readonly string[]): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extra]
}

async function waitFor (what: string, condition: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await condition().catch(() => false))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** `INFO replication` of a node as a map. */
async function replication (node: Node): Promise<Record<string, string>> {
  const text = await node.admin.info('replication')
  return Object.fromEntries(text.split('\r\n').filter(line => line.includes(':')).map(line => line.split(':', 2) as [string, string]))
}

export interface ClusterNodes {
  readonly nodes: readonly Node[]
  /** `redis://127.0.0.1:PORT` of every node, for `createRedisStore({ url: [...] })`. */
  readonly urls: string[]
  /** The node that is the primary of `key`'s slot now, its replica, and the slot ranges it serves. */
  primaryOf (key: string): Promise<{ primary: Node, replica: Node, slots: Array<[number, number]> }>
  stop (): Promise<void>
}

/** Three primaries, three replicas, each primary's slots replicated once; resolves when the cluster is ok and every replica is in sync. */
export async function startCluster (): Promise<ClusterNodes> {
  const dir = mkdtempSync(join(tmpdir(), 'vjg-cluster-'))
  const nodes: Node[] = []
  const stop = async (): Promise<void> => {
    for (const node of nodes) node.admin.disconnect()
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort()
      nodes.push(await start('redis-server', serverArgs(port, dir, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT),
        // A replica that lost its primary a while ago still takes over (the tests stall replicas on purpose).
        '--cluster-replica-validity-factor', '0'
      ]), port))
    }
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map(node => `127.0.0.1:${node.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`)
    await waitFor('cluster_state:ok on every node', async () => {
      const infos = await Promise.all(nodes.map(node => node.admin.cluster('INFO') as Promise<string>))
      return infos.every(info => info.includes('cluster_state:ok'))
    })
    await waitFor('every replica in sync', async () => {
      const roles = await Promise.all(nodes.map(replication))
      return roles.filter(role => role.role === 'slave' && role.master_link_status === 'up').length === 3
    })
  } catch (error) {
    await stop()
    throw error
  }

  async function primaryOf (key: string): Promise<{ primary: Node, replica: Node, slots: Array<[number, number]> }> {
    const slot = keySlot(key)
    await waitFor(`a primary with a replica for slot ${slot}`, async () => {
      const ranges = await nodes.find(node => node.admin.status === 'ready')!.admin.cluster('SLOTS') as Array<[number, number, [string, number], [string, number]?]>
      const range = ranges.find(([from, to]) => slot >= from && slot <= to)
      return range?.[3] !== undefined
    })
    const ranges = await nodes.find(node => node.admin.status === 'ready')!.admin.cluster('SLOTS') as Array<[number, number, [string, number], [string, number]]>
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)!
    const byPort = (port: number): Node => nodes.find(node => node.port === port)!
    const slots = ranges.filter(other => other[2][1] === range[2][1]).map(([from, to]): [number, number] => [from, to])
    return { primary: byPort(range[2][1]), replica: byPort(range[3][1]), slots }
  }

  return { nodes, urls: nodes.map(node => `redis://127.0.0.1:${node.port}`), primaryOf, stop }
}

export interface SentinelNodes {
  readonly primary: Node
  readonly replica: Node
  readonly sentinel: Node
  readonly name: string
  /** The address the Sentinel gives for the primary now (during a failover: the replica being promoted). */
  primaryPort (): Promise<number>
  /** The failover to `port` is over: the Sentinel's configuration names it, and no failover is in progress. */
  failedOverTo (port: number): Promise<boolean>
  stop (): Promise<void>
}

/** A primary, one replica in sync, and one Sentinel (quorum 1) watching them as `name`. */
export async function startSentinel (name = 'vjg-primary'): Promise<SentinelNodes> {
  const dir = mkdtempSync(join(tmpdir(), 'vjg-sentinel-'))
  const started: Node[] = []
  const stop = async (): Promise<void> => {
    for (const node of started) node.admin.disconnect()
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const primaryPort = await freePort()
    const primary = await start('redis-server', serverArgs(primaryPort, dir, []), primaryPort)
    started.push(primary)
    const replicaPort = await freePort()
    const replica = await start('redis-server', serverArgs(replicaPort, dir, ['--replicaof', '127.0.0.1', String(primaryPort)]), replicaPort)
    started.push(replica)
    await waitFor('the replica in sync', async () => (await replication(replica)).master_link_status === 'up')
    const sentinelPort = await freePort()
    const config = join(dir, 'sentinel.conf')
    // The Sentinel rewrites its configuration file as it learns: it must be writable.
    writeFileSync(config, [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 1`,
      `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER}`,
      `sentinel failover-timeout ${name} 3000`,
      `sentinel parallel-syncs ${name} 1`,
      ''
    ].join('\n'))
    const sentinel = await start('redis-sentinel', [config], sentinelPort)
    started.push(sentinel)
    await waitFor('the Sentinel to know the replica', async () => {
      const replicas = await sentinel.admin.call('SENTINEL', 'REPLICAS', name) as unknown[]
      return replicas.length === 1
    })
    return {
      primary,
      replica,
      sentinel,
      name,
      primaryPort: async () => Number((await sentinel.admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as [string, string])[1]),
      failedOverTo: async (port: number) => {
        const fields = await sentinel.admin.call('SENTINEL', 'MASTER', name) as string[]
        const field = (key: string): string | undefined => fields[fields.indexOf(key) + 1]
        return field('port') === String(port) && field('flags') === 'master'
      },
      stop
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * What `work` sends to the Redis nodes on `ports`: each write on a socket to one of them is one
 * request the client then waits on (a pipeline is one write). Counted on the client's sockets,
 * so the number is what a request costs in round trips, whatever the server does with it.
 */
export async function countWrites (ports: ReadonlySet<number>, work: () => Promise<void>): Promise<{ writes: number, sockets: number }> {
  const { Socket } = await import('node:net')
  const original = Socket.prototype.write
  let writes = 0
  const sockets = new Set<unknown>()
  Socket.prototype.write = function (this: InstanceType<typeof Socket>, ...args: unknown[]) {
    if (this.remotePort !== undefined && ports.has(this.remotePort)) {
      writes++
      sockets.add(this)
    }
    return (original as (...a: unknown[]) => boolean).apply(this, args)
  } as typeof original
  try {
    await work()
  } finally {
    Socket.prototype.write = original
  }
  return { writes, sockets: sockets.size }
}
