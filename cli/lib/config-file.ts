/**
 * `--config FILE`: the guard's options in a file, under the library's own names, checked by the
 * library's own validation. A `.json` file holds data; a `.js` / `.mjs` module's default export
 * is the options object itself, so it reaches the function-valued options too (`aclFilter`,
 * `isRevoked`, `getToken`, `aclPath` as a function) and may build its own stores.
 *
 * In either, key material (`publicKey`, each value of `publicKeys` and `secrets`) is the
 * material itself, or `{ "file": "path" }` (relative to the config file) or `{ "env": "NAME" }`.
 * Some names are the command line's, not the library's: `redisUrl` (a string or `{ "env" }`),
 * `redisCluster` and `redisSentinels` (`"host:port,..."` or a list), `redisName`,
 * `redisDurability`, `redisPrefix`, and `publicKeysDir` (relative to the config file);
 * `replay: true` and `revocation: true` then mean the Redis store.
 */
import { dirname, extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseAddresses, type RedisAddress } from './redis-topology.js'
import { isFsError, readText, UsageError } from './shared.js'

/** What the command line reads from a config file. */
export interface ConfigFile {
  /** The path as given, to name the file in an error. */
  readonly path: string
  /** The guard's options, under the library's names, key material read. */
  readonly options: Record<string, unknown>
  readonly redisUrl?: string
  readonly redisCluster?: RedisAddress[]
  readonly redisSentinels?: RedisAddress[]
  readonly redisName?: string
  readonly redisDurability?: 'leader' | 'replica'
  readonly redisPrefix?: string
  /** Absolute. */
  readonly publicKeysDir?: string
}

/** The names of a config file that the command line reads itself. */
const CLI_NAMES = new Set(['redisUrl', 'redisCluster', 'redisSentinels', 'redisName', 'redisDurability', 'redisPrefix', 'publicKeysDir'])

/**
 * The library's rule for "an object" (lib/is-plain-object.ts, which it does not export): an
 * object literal, JSON, or `Object.create(null)`; never an array or a class instance.
 */
function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function reference (value: unknown): { file: string } | { env: string } | undefined {
  if (!isPlainObject(value)) return undefined
  const keys = Object.keys(value)
  if (keys.length !== 1) return undefined
  if (keys[0] === 'file' && typeof value.file === 'string') return { file: value.file }
  if (keys[0] === 'env' && typeof value.env === 'string') return { env: value.env }
  return undefined
}

/**
 * A value that may be `{ file }` or `{ env }`: the text it points to (a file's one trailing
 * newline dropped, as `echo secret > file` adds it), else the value unchanged.
 */
function material (value: unknown, name: string, path: string): unknown {
  const ref = reference(value)
  if (ref === undefined) return value
  if ('file' in ref) return readText(resolve(dirname(path), ref.file)).replace(/\r?\n$/, '')
  const text = process.env[ref.env]
  if (text === undefined || text === '') throw new UsageError(`${path}: ${name} names the environment variable ${ref.env}, which is not set`)
  return text
}

/** `publicKey` may be one key or an array of keys. */
function keys (value: unknown, name: string, path: string): unknown {
  return Array.isArray(value) ? value.map((key, i) => material(key, `${name}[${i}]`, path)) : material(value, name, path)
}

function byId (value: unknown, name: string, path: string, each: (v: unknown, n: string, p: string) => unknown): unknown {
  if (!isPlainObject(value)) return value
  return Object.fromEntries(Object.entries(value).map(([id, v]) => [id, each(v, `${name}.${id}`, path)]))
}

async function load (path: string): Promise<unknown> {
  const kind = extname(path).toLowerCase()
  if (kind === '.json') {
    const text = readText(path)
    try {
      return JSON.parse(text) as unknown
    } catch (error) {
      // V8 quotes a piece of the text, which may be a key: only the position is kept.
      const at = /position (\d+)/.exec((error as Error).message)?.[1]
      throw new UsageError(`${path}: not valid JSON${at === undefined ? '' : ` (at character ${at})`}`)
    }
  }
  if (kind === '.js' || kind === '.mjs' || kind === '.cjs') {
    readText(path) // a missing or unreadable file: one line naming it, as for JSON
    let module: { default?: unknown }
    try {
      module = await import(pathToFileURL(resolve(path)).href) as { default?: unknown }
    } catch (error) {
      if (isFsError(error)) throw error
      throw new UsageError(`${path}: the module failed to load (${(error as Error).message})`)
    }
    if (module.default === undefined) throw new UsageError(`${path}: the module has no default export; export the options object: export default { publicKey: ... }`)
    return module.default
  }
  throw new UsageError(`--config ${path}: give a .json file, or a .js / .mjs module whose default export is the options`)
}

/** Read a config file; a mistake in it is a UsageError naming the file (a bad option is named later, by the library). */
export async function loadConfig (path: string): Promise<ConfigFile> {
  const data = await load(path)
  if (!isPlainObject(data)) throw new UsageError(`${path}: must hold an object of guard options, e.g. { "publicKey": { "file": "public.key" } }`)
  const options: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(data)) {
    if (!CLI_NAMES.has(name)) options[name] = value
  }
  if (options.publicKey !== undefined) options.publicKey = keys(options.publicKey, 'publicKey', path)
  if (options.publicKeys !== undefined) options.publicKeys = byId(options.publicKeys, 'publicKeys', path, keys)
  if (options.secrets !== undefined) options.secrets = byId(options.secrets, 'secrets', path, material)

  const config: { -readonly [K in keyof ConfigFile]: ConfigFile[K] } = { path, options }
  if (data.redisUrl !== undefined) {
    const url = material(data.redisUrl, 'redisUrl', path)
    if (typeof url !== 'string') throw new UsageError(`${path}: redisUrl must be a redis:// or rediss:// URL, or { "env": "NAME" }`)
    config.redisUrl = url
  }
  for (const name of ['redisCluster', 'redisSentinels'] as const) {
    if (data[name] === undefined) continue
    const value = data[name]
    const addresses = typeof value === 'string' || Array.isArray(value) ? parseAddresses(value as string | unknown[]) : undefined
    if (addresses === undefined) throw new UsageError(`${path}: ${name} must be "host:port,host:port" or a list of "host:port"`)
    config[name] = addresses
  }
  if (data.redisName !== undefined) {
    if (typeof data.redisName !== 'string' || data.redisName === '') throw new UsageError(`${path}: redisName must be the primary's name in the Sentinels' configuration`)
    config.redisName = data.redisName
  }
  if (data.redisDurability !== undefined) {
    if (data.redisDurability !== 'leader' && data.redisDurability !== 'replica') throw new UsageError(`${path}: redisDurability must be "leader" or "replica"`)
    config.redisDurability = data.redisDurability
  }
  if (data.redisPrefix !== undefined) {
    if (typeof data.redisPrefix !== 'string') throw new UsageError(`${path}: redisPrefix must be a string`)
    config.redisPrefix = data.redisPrefix
  }
  if (data.publicKeysDir !== undefined) {
    if (typeof data.publicKeysDir !== 'string' || data.publicKeysDir === '') throw new UsageError(`${path}: publicKeysDir must be a directory path`)
    config.publicKeysDir = resolve(dirname(path), data.publicKeysDir)
  }
  return config
}
