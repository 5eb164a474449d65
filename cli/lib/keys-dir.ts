/**
 * `--public-keys-dir DIR`: one `<application_id>.pem` or `<application_id>.key` per application,
 * the guard's `publicKeys`. Read at start, and again whenever the directory changes (a key added,
 * replaced or removed), by the server runner (server.ts), which then swaps in a guard built on the
 * new set. Hidden files (an editor's, Kubernetes' `..data`) and other names are ignored, so a
 * mounted ConfigMap or Secret works as it is.
 */
import { generateKeyPairSync } from 'node:crypto'
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { fsFailure, readText, UsageError } from './shared.js'

export interface KeySet {
  /** The key text by application id. */
  readonly keys: Readonly<Record<string, string>>
  /** The file each key came from, by application id, to name it in an error. */
  readonly files: Readonly<Record<string, string>>
}

const KEY_FILE = /^(.+)\.(pem|key)$/

/** Read the keys in `dir`; a directory that cannot be read, or two files for one application, throws. */
export function readKeysDir (dir: string): KeySet {
  let names: string[]
  try {
    names = readdirSync(dir).sort()
  } catch (error) {
    throw fsFailure(error, 'read the directory', dir)
  }
  const keys: Record<string, string> = {}
  const files: Record<string, string> = {}
  for (const name of names) {
    const match = KEY_FILE.exec(name)
    if (name.startsWith('.') || match === null) continue
    const path = join(dir, name)
    let isFile: boolean
    try {
      // stat, not lstat: a symbolic link to a key (a mounted Secret) is a key.
      isFile = statSync(path).isFile()
    } catch (error) {
      throw fsFailure(error, 'read', path)
    }
    if (!isFile) continue
    const id = match[1]!
    if (files[id] !== undefined) throw new UsageError(`${join(dir, files[id])} and ${name} both hold the key of application ${id}: keep one`)
    keys[id] = readText(path)
    files[id] = name
  }
  return { keys, files }
}

/** The application id of the stand-in key of an empty directory. */
export const NO_KEYS_ID = '(no keys)'
let standIn: string | undefined

/**
 * The guard's `publicKeys` for a key set. The guard needs at least one key, so an empty
 * directory gets a stand-in whose private half was never kept: every token is refused (401
 * VJG_KEY_UNKNOWN, or VJG_SIGNATURE_INVALID for the id above), until a key is added.
 */
export function publicKeysOf (set: KeySet): Record<string, string> {
  if (Object.keys(set.keys).length > 0) return { ...set.keys }
  standIn ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
  return { [NO_KEYS_ID]: standIn }
}

/**
 * Call `changed` once the directory has been quiet for `settle` ms after a change (a copy or a
 * Kubernetes update is several events). Returns the function that stops watching.
 */
export function watchKeysDir (dir: string, changed: () => void, onError: (error: Error) => void, settle = 150): () => void {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher
  try {
    watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(timer)
      timer = setTimeout(changed, settle)
    })
  } catch (error) {
    throw fsFailure(error, 'watch', dir)
  }
  watcher.on('error', onError)
  return () => {
    clearTimeout(timer)
    watcher.close()
  }
}
