/**
 * The guard's options on the command line: one definition of the flags that `verify`, `serve`,
 * `proxy` and `forward-auth` share, and `resolveGuard()`, which merges them over a config file
 * (flags win), reads key material, makes the Redis store, and checks the result with the
 * library's own validation, so that a bad option is one line naming the flag or the file it came
 * from (exit 2).
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import { createVerifier, type GuardOptions } from 'vonage-jwt-guard'
import { loadConfig, type ConfigFile } from './config-file.js'
import { keyFlagValue, publicHalf } from './key-kind.js'
import { publicKeysOf, readKeysDir, type KeySet } from './keys-dir.js'
import { checkSentinelName, redisAddresses, type RedisAddress } from './redis-topology.js'
import { isInvalidOption, readKeyText, readText, repeatable, UsageError } from './shared.js'
import { escapeTerminal } from './terminal.js'

export interface GuardFlags {
  config?: string
  profile?: string
  publicKey?: string[]
  publicKeysDir?: string
  jwksUrl?: string
  secret?: string[]
  secretFile?: string[]
  secretEnv?: string[]
  appId?: string[]
  clockTolerance?: number
  lifetimePolicy?: string
  maxLifetime?: number
  defaultLifetime?: number
  minLifetime?: number
  allowNumericStringDates?: boolean
  requireAcl?: boolean
  defaultAcl?: unknown
  aclPath?: string
  errorFormat?: string
  replay?: boolean
  revocation?: boolean
  redisUrl?: string
  redisCluster?: RedisAddress[]
  redisSentinels?: RedisAddress[]
  redisName?: string
  redisDurability?: 'leader' | 'replica'
  /** `proxy` and `forward-auth` only (claim-headers.ts). */
  claimHeader?: Record<string, string>
  grantedByHeader?: string
  /** `serve`, `mock` and `proxy` only (rate-limit.ts): Redis then serves the count too. */
  rateLimit?: string
}

/** A whole number of seconds; its range is the library's to check (and to name in the error). */
function seconds (value: string): number {
  if (!/^-?[0-9]+$/.test(value)) throw new InvalidArgumentError('Expected a whole number of seconds.')
  return Number(value)
}

function json (value: string): unknown {
  try {
    return JSON.parse(value) as unknown
  } catch {
    throw new InvalidArgumentError('Expected JSON, e.g. \'{"paths":{"/*/users/**":{}}}\'.')
  }
}

/** `ID=VALUE`, repeatable. */
function pair (value: string, previous: string[] | undefined): string[] {
  if (value.indexOf('=') <= 0) throw new InvalidArgumentError('Expected ID=VALUE.')
  return repeatable(value, previous)
}

/**
 * The guard flags. `state`: the replay and revocation flags too (the servers; `verify` checks a
 * token, not a request, and consumes no jti).
 */
export function addGuardFlags (command: Command, { state }: { state: boolean }): Command {
  command
    .option('--config <file>', 'guard options from a file: .json, or a .js/.mjs module whose default export is the options (flags win)')
    .addOption(new Option('--profile <name>', 'the token profile').choices(['vonage', 'vonage-video', 'opentok', 'vonage-webhook']))
    .option('--public-key <path|pem>', 'the application public key: a path to public.key, or the PEM itself (repeat for several: any may verify)', repeatable)
    .option('--public-keys-dir <dir>', 'keys by application: one <application_id>.pem or .key per application, read again when the directory changes')
    .option('--jwks-url <url>', 'verify with the keys of a remote JWKS instead (chosen by kid; https, or http on localhost)')
    .option('--secret <id=secret>', 'HS profiles: a shared secret by iss (opentok) or api_key (vonage-webhook); visible in ps: prefer --secret-file or --secret-env', pair)
    .option('--secret-file <id=path>', 'HS profiles: a shared secret read from a file (one trailing newline dropped)', pair)
    .option('--secret-env <id=NAME>', 'HS profiles: a shared secret read from the environment variable NAME', pair)
    .option('--app-id <id>', 'accept only this application_id (repeat the flag for several)', repeatable)
    .option('--clock-tolerance <seconds>', 'clock skew allowed on every time check (default 30, at most 300)', seconds)
    .addOption(new Option('--lifetime-policy <policy>', 'a lifetime past --max-lifetime: cap it (as Vonage does) or reject the token').choices(['cap', 'reject']))
    .option('--max-lifetime <seconds>', 'the longest lifetime (default 86400)', seconds)
    .option('--default-lifetime <seconds>', 'the lifetime of a token without exp (default 900)', seconds)
    .option('--min-lifetime <seconds>', 'refuse exp - iat below this (default 0, off)', seconds)
    .option('--allow-numeric-string-dates', 'read "exp": "1532179987" as a number (the default under vonage and vonage-video)')
    .option('--no-allow-numeric-string-dates', 'refuse NumericDates written as strings')
    .option('--require-acl', 'refuse tokens without an acl claim')
    .option('--no-require-acl', 'accept tokens without an acl claim (the default)')
    .option('--default-acl <json>', 'the acl of a token without one, e.g. \'{"paths":{"/*/users/**":{}}}\'', json)
    .option('--acl-path <prefix>', 'strip this prefix from the path before the ACL sees it (e.g. /api)')
    .addOption(new Option('--error-format <format>', 'the body of a refusal: Fastify\'s JSON (default), or RFC 7807 problem+json').choices(['fastify', 'problem']))
  if (state) {
    command
      .option('--replay', 'accept each jti once (with --redis-url: across every instance)')
      .option('--revocation', 'refuse the tokens and subjects revoked in the Redis store (needs --redis-url)')
      .addOption(new Option('--redis-url <url>', 'the Redis of the replay and revocation store (redis:// or rediss://)').env('VONAGE_JWT_GUARD_REDIS_URL'))
      .option('--redis-cluster <host:port,...>', 'a Redis Cluster instead: some of its nodes (the rest are discovered)', redisAddresses)
      .option('--redis-sentinels <host:port,...>', 'Redis through Sentinel instead: the Sentinels (with --redis-name); the store follows a failover', redisAddresses)
      .option('--redis-name <name>', 'the primary\'s name in the Sentinels\' configuration')
      .addOption(new Option('--redis-durability <when>', 'a replay record or revocation counts once the primary has it (leader, default) or a replica too (replica: WAIT 1, else 503)').choices(['leader', 'replica']))
  }
  return command
}

/** The options a source of keys is made of: a key flag replaces all of the file's. */
const KEY_OPTIONS = ['publicKey', 'publicKeys', 'jwksUrl', 'jwks', 'secrets']

/** The options about request state, which `verify` leaves out of a shared config file. */
const STATE_OPTIONS = ['replay', 'revocation', 'isRevoked', 'failOpen', 'stateTimeout']

/** `redis://host:port` of each address, for the store's cluster `url` list. */
const clusterUrls = (nodes: readonly RedisAddress[]): string[] => nodes.map(({ host, port }) => `redis://${host.includes(':') ? `[${host}]` : host}:${port}`)

/**
 * Where the Redis store connects, and the flag or file to name in an error. The Redis flags, when
 * any is given, replace the config file's Redis as a whole (as a key flag replaces its keys).
 */
function redisTopology (flags: GuardFlags, file: ConfigFile | undefined): { where: { url?: string | string[], sentinels?: RedisAddress[], name?: string }, source: string } | undefined {
  const flagged = flags.redisUrl !== undefined || flags.redisCluster !== undefined || flags.redisSentinels !== undefined || flags.redisName !== undefined
  if (!flagged && file === undefined) return undefined
  const from = flagged
    ? { url: flags.redisUrl, cluster: flags.redisCluster, sentinels: flags.redisSentinels, name: flags.redisName, names: ['--redis-url', '--redis-cluster', '--redis-sentinels', '--redis-name'], at: '' }
    : { url: file!.redisUrl, cluster: file!.redisCluster, sentinels: file!.redisSentinels, name: file!.redisName, names: ['redisUrl', 'redisCluster', 'redisSentinels', 'redisName'], at: `${file!.path}: ` }
  const [urlName, clusterName, sentinelsName, nameName] = from.names as [string, string, string, string]
  const given = ([[from.url, urlName], [from.cluster, clusterName], [from.sentinels, sentinelsName]] as const).filter(([value]) => value !== undefined).map(([, name]) => name)
  if (given.length > 1) throw new UsageError(`${from.at}give one Redis: ${given.join(' or ')}`)
  if (from.sentinels !== undefined && from.name === undefined) throw new UsageError(`${from.at}${sentinelsName} needs ${nameName}: the primary's name in the Sentinels' configuration`)
  if (from.name !== undefined && from.sentinels === undefined) throw new UsageError(`${from.at}${nameName} goes with ${sentinelsName}`)
  const source = flagged ? given[0] ?? nameName : file!.path
  if (from.sentinels !== undefined) return { where: { sentinels: from.sentinels, name: from.name! }, source }
  if (from.cluster !== undefined) return { where: { url: clusterUrls(from.cluster) }, source }
  if (from.url !== undefined) return { where: { url: from.url }, source }
  return undefined
}

/** Subject revocations are kept this long in Redis: the longest lifetime of any profile (vonage-video's 30 days). */
const REDIS_MAX_LIFETIME = 30 * 86_400

export interface ResolvedGuard {
  /** The guard's options, validated. */
  readonly options: GuardOptions
  /**
   * `--public-keys-dir` (or the file's `publicKeysDir`) and the set read from it, which the
   * options hold: the server re-reads the directory when it changes.
   */
  readonly keysDir: { readonly dir: string, readonly set: KeySet } | null
  /**
   * The option holding state one process keeps to itself (replay on the memory store, a store
   * that does not say `shared: true`), or null: `--workers` refuses it.
   */
  readonly perProcessState: string | null
  /** Where each option came from (a flag, the config file, a key file), to name it in an error. */
  readonly sources: ReadonlyMap<string, string>
  /** Ends what the options hold open (the Redis connection). */
  close (): Promise<void>
  /** The Redis store's client and key prefix (`--rate-limit` counts there too); null: no Redis. */
  readonly redis: { readonly client: unknown, readonly prefix: string, ping (): Promise<void> } | null
}

/** The secrets of `--secret`, `--secret-file` and `--secret-env`, by id. */
function secretsOf (flags: GuardFlags): Record<string, string> | undefined {
  const secrets: Record<string, string> = {}
  const split = (value: string): [string, string] => {
    const eq = value.indexOf('=')
    return [value.slice(0, eq), value.slice(eq + 1)]
  }
  for (const value of flags.secret ?? []) {
    const [id, secret] = split(value)
    secrets[id] = secret
  }
  for (const value of flags.secretFile ?? []) {
    const [id, path] = split(value)
    secrets[id] = readText(path).replace(/\r?\n$/, '')
  }
  for (const value of flags.secretEnv ?? []) {
    const [id, name] = split(value)
    const secret = process.env[name]
    if (secret === undefined || secret === '') throw new UsageError(`--secret-env ${id}=${name}: the environment variable ${name} is not set`)
    secrets[id] = secret
  }
  return Object.keys(secrets).length === 0 ? undefined : secrets
}

/**
 * Each option a flag gives, in one table: the option, its flag (to name it in an error), the
 * option's value from the parsed flags (`read`; undefined when not given), and for a source of
 * keys, whether that flag was given (`keys`; one source of keys at most). `replay` and
 * `revocation` are made from several flags elsewhere: here only for their name.
 */
const FLAGS: ReadonlyArray<{ option: string, flag: string, read?: (flags: GuardFlags) => unknown, keys?: (flags: GuardFlags) => unknown }> = [
  { option: 'profile', flag: '--profile', read: f => f.profile },
  {
    option: 'publicKey',
    flag: '--public-key',
    read: (f) => {
      const keys = f.publicKey?.map(key => publicHalf(readKeyText(key, '--public-key'), keyFlagValue(key)))
      return keys === undefined ? undefined : keys.length === 1 ? keys[0] : keys
    },
    keys: f => f.publicKey
  },
  { option: 'publicKeys', flag: '--public-keys-dir', keys: f => f.publicKeysDir },
  { option: 'jwksUrl', flag: '--jwks-url', read: f => f.jwksUrl, keys: f => f.jwksUrl },
  { option: 'secrets', flag: '--secret', read: secretsOf, keys: f => [...f.secret ?? [], ...f.secretFile ?? [], ...f.secretEnv ?? []].length > 0 ? true : undefined },
  { option: 'applicationId', flag: '--app-id', read: f => f.appId },
  { option: 'clockTolerance', flag: '--clock-tolerance', read: f => f.clockTolerance },
  { option: 'lifetimePolicy', flag: '--lifetime-policy', read: f => f.lifetimePolicy },
  { option: 'maxLifetime', flag: '--max-lifetime', read: f => f.maxLifetime },
  { option: 'defaultLifetime', flag: '--default-lifetime', read: f => f.defaultLifetime },
  { option: 'minLifetime', flag: '--min-lifetime', read: f => f.minLifetime },
  { option: 'allowNumericStringDates', flag: '--allow-numeric-string-dates', read: f => f.allowNumericStringDates },
  { option: 'requireAcl', flag: '--require-acl', read: f => f.requireAcl },
  { option: 'defaultAcl', flag: '--default-acl', read: f => f.defaultAcl },
  { option: 'aclPath', flag: '--acl-path', read: f => f.aclPath },
  { option: 'errorFormat', flag: '--error-format', read: f => f.errorFormat },
  { option: 'claimHeaders', flag: '--claim-header', read: f => f.claimHeader },
  { option: 'grantedByHeader', flag: '--granted-by-header', read: f => f.grantedByHeader },
  { option: 'replay', flag: '--replay' },
  { option: 'revocation', flag: '--revocation' }
]

/** The flag of each option a flag can give, to name it in an error. */
const FLAG_OF = new Map(FLAGS.map(({ option, flag }) => [option, flag]))

/** The options the flags give; only the flags given. */
function flagOptions (flags: GuardFlags): Record<string, unknown> {
  const options: Record<string, unknown> = {}
  for (const { option, read } of FLAGS) {
    const value = read?.(flags)
    if (value !== undefined) options[option] = value
  }
  return options
}

/**
 * The library's TypeError for a bad option, as a UsageError naming where the option came from:
 * `--clock-tolerance: vonage-jwt-guard: option "clockTolerance" must be ...`, or the config file,
 * or the key file of `--public-keys-dir`.
 */
export function optionError (error: unknown, sources: ReadonlyMap<string, string>): unknown {
  if (!isInvalidOption(error)) return error
  const option = String((error as { option?: unknown }).option ?? '')
  const source = sources.get(option) ?? sources.get(option.split(/[.[]/)[0] ?? '')
  return new UsageError(source === undefined ? (error as Error).message : `${source}: ${(error as Error).message}`)
}

/** `publicKeys` from a key set, each id's source its file. */
export function keySetSources (set: KeySet, dir: string, sources: Map<string, string>): void {
  for (const [id, file] of Object.entries(set.files)) sources.set(`publicKeys.${id}`, escapeTerminal(`${dir}/${file}`))
}

interface ResolveSettings {
  /** The replay and revocation options are used (the servers), or left out (`verify`). */
  state: boolean
  /** The public key when no source of keys is given (serve's dev keys); otherwise the library asks for one. */
  defaultKey?: () => Promise<string>
}

/** Whether `store` says every process sees its records (`shared: true`, the Redis store). */
function isShared (store: unknown): boolean {
  return typeof store === 'object' && store !== null && (store as { shared?: unknown }).shared === true
}

/** The option that holds state of this process only (the memory store, a store not marked `shared: true`), or null. */
function unsharedState (options: Record<string, unknown>, sources: ReadonlyMap<string, string>): string | null {
  const where = (name: string, shown: string): string => {
    const source = sources.get(name)
    return source === undefined || source.startsWith('--') ? source ?? shown : `${shown} in ${source}`
  }
  const { replay, revocation } = options
  if (replay === true) return `${where('replay', 'replay: true')} (the in-memory store)`
  if (typeof replay === 'object' && replay !== null && !isShared((replay as { store?: unknown }).store)) return where('replay', 'replay.store')
  if (typeof revocation === 'object' && revocation !== null && !isShared(revocation)) return where('revocation', 'revocation')
  return null
}

/**
 * The guard options of a command: the config file, then the flags over it (a flag that gives
 * keys replaces the file's keys), key files read, the Redis store made, and the whole checked
 * by the library's validation (`createVerifier`).
 */
export async function resolveGuard (flags: GuardFlags, settings: ResolveSettings): Promise<ResolvedGuard> {
  const sources = new Map<string, string>()
  const file = flags.config === undefined ? undefined : await loadConfig(flags.config)
  const options: Record<string, unknown> = { ...file?.options }
  for (const name of Object.keys(options)) sources.set(name, file!.path)
  if (!settings.state) for (const name of STATE_OPTIONS) delete options[name]

  const given = flagOptions(flags)
  const keyFlags = FLAGS.filter(({ keys }) => keys !== undefined && keys(flags) !== undefined).map(({ flag }) => flag)
  if (keyFlags.length > 1) throw new UsageError(`give one source of keys, not ${keyFlags.join(' and ')}`)
  let keysDir = file?.publicKeysDir ?? null
  if (keyFlags.length === 1) {
    for (const name of KEY_OPTIONS) delete options[name]
    keysDir = flags.publicKeysDir ?? null
  }
  for (const [name, value] of Object.entries(given)) {
    options[name] = value
    sources.set(name, FLAG_OF.get(name) ?? name)
  }

  let keySet: KeySet | undefined
  if (keysDir !== null) {
    const clash = KEY_OPTIONS.find(name => options[name] !== undefined)
    if (clash !== undefined) throw new UsageError(`${sources.get(clash) ?? clash}: ${clash} cannot be combined with publicKeysDir (${keysDir}): give one source of keys`)
    const set = keySet = readKeysDir(keysDir)
    options.publicKeys = publicKeysOf(set)
    keySetSources(set, keysDir, sources)
    sources.set('publicKeys', `--public-keys-dir ${keysDir}`)
  } else if (settings.defaultKey !== undefined && !KEY_OPTIONS.some(name => options[name] !== undefined)) {
    options.publicKey = await settings.defaultKey()
  }

  if (!KEY_OPTIONS.some(name => options[name] !== undefined)) {
    throw new UsageError('no keys: give --public-key, --public-keys-dir or --jwks-url (--secret for the opentok and vonage-webhook profiles), or a --config file holding one')
  }

  const closers: Array<() => Promise<void>> = []
  let redis: ResolvedGuard['redis'] = null
  let perProcessState: string | null = null
  if (settings.state) {
    if (flags.replay !== undefined) {
      options.replay = flags.replay
      sources.set('replay', '--replay')
    }
    if (flags.revocation !== undefined) {
      options.revocation = flags.revocation
      sources.set('revocation', '--revocation')
    }
    const topology = redisTopology(flags, file)
    const wantsRedis = options.replay === true || options.revocation === true || flags.rateLimit !== undefined
    if (topology !== undefined && !wantsRedis) throw new UsageError(`${topology.source}: the Redis store serves --replay, --revocation and --rate-limit: give one of them, or no Redis`)
    if (options.revocation === true && topology === undefined) {
      throw new UsageError(`${sources.get('revocation') ?? '--revocation'}: revocation needs a shared store (--redis-url, --redis-cluster or --redis-sentinels, or the same in the config file): an in-memory one could not be written to by anyone`)
    }
    if (topology !== undefined) {
      const { createRedisStore } = await import('vonage-jwt-guard/redis')
      const durability = flags.redisDurability ?? file?.redisDurability
      let store
      try {
        store = createRedisStore({
          ...topology.where,
          maxLifetime: REDIS_MAX_LIFETIME,
          ...(file?.redisPrefix === undefined ? {} : { prefix: file.redisPrefix }),
          ...(durability === undefined ? {} : { replayDurability: durability })
        })
      } catch (error) {
        throw new UsageError(`${topology.source}: ${(error as Error).message}`)
      }
      closers.push(() => store.close())
      redis = { client: store.client, prefix: file?.redisPrefix ?? 'vjg:', ping: () => store.ping() }
      if (topology.where.sentinels !== undefined) {
        try {
          await checkSentinelName(topology.where.sentinels, topology.where.name ?? '')
        } catch (error) {
          await store.close()
          throw error
        }
      }
      // One store for both: replay and revocation of a request are then one round trip.
      if (options.replay === true) options.replay = { store }
      if (options.revocation === true) options.revocation = store
    }
    perProcessState = unsharedState(options, sources)
  }

  const resolved: ResolvedGuard = {
    options: options as GuardOptions,
    keysDir: keysDir === null || keySet === undefined ? null : { dir: keysDir, set: keySet },
    perProcessState,
    sources,
    close: async () => { await Promise.all(closers.map(close => close())) },
    redis
  }
  try {
    createVerifier(resolved.options)
  } catch (error) {
    await resolved.close()
    throw optionError(error, sources)
  }
  return resolved
}
