/**
 * The Redis flags that are not a URL: `--redis-cluster` and `--redis-sentinels` take
 * `host:port,...` (also from a config file), and a Sentinel primary name is checked at start-up,
 * so that a typo is one line and exit 1 rather than a server answering 503 to every request.
 */
import { InvalidArgumentError } from 'commander'
import { Redis } from 'ioredis'
import { CommandFailed } from './shared.js'

export interface RedisAddress {
  host: string
  port: number
}

/** `host:port` (`[::1]:port` for IPv6), or undefined. */
function address (text: string): RedisAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):([0-9]{1,5})$/.exec(text.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65_535) return undefined
  return { host: match[1] ?? match[2]!, port }
}

/** A list of addresses, `host:port,host:port`; undefined when one of them is not an address. */
export function parseAddresses (value: string | readonly unknown[]): RedisAddress[] | undefined {
  const parts = typeof value === 'string' ? value.split(',') : value
  const addresses = parts.map(part => typeof part === 'string' ? address(part) : undefined)
  if (addresses.length === 0 || addresses.some(entry => entry === undefined)) return undefined
  return addresses as RedisAddress[]
}

/** The commander parser of `--redis-cluster` and `--redis-sentinels`. */
export function redisAddresses (value: string): RedisAddress[] {
  const addresses = parseAddresses(value)
  if (addresses === undefined) throw new InvalidArgumentError('Expected host:port,host:port (e.g. 10.0.0.1:26379,10.0.0.2:26379).')
  return addresses
}

/** One Sentinel's answer for `name`: its primary's address, null when it knows no such primary, undefined when it did not answer within `ms`. */
async function askSentinel (sentinel: RedisAddress, name: string, ms: number): Promise<unknown> {
  const client = new Redis({ ...sentinel, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: ms })
  client.on('error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      client.connect().then(() => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)),
      new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined) }, ms) })
    ])
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}

/**
 * Ask the Sentinels for `name` (at most `ms`, in parallel): a name that every Sentinel that
 * answered does not know is a CommandFailed (exit 1). Sentinels that answer nothing do not stop
 * the start: the store answers 503 until one does.
 */
export async function checkSentinelName (sentinels: readonly RedisAddress[], name: string, ms = 1000): Promise<void> {
  const answers = await Promise.all(sentinels.map(sentinel => askSentinel(sentinel, name, ms)))
  const answered = answers.filter(answer => answer !== undefined)
  if (answered.length > 0 && answered.every(answer => answer === null)) {
    throw new CommandFailed(`--redis-name ${JSON.stringify(name)}: no Sentinel knows a primary of that name (asked ${answered.length} of ${sentinels.length})`)
  }
}
