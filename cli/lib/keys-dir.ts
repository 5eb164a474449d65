/**
 * `--public-keys-dir DIR`: one `<application_id>.pem` or `<application_id>.key` per application,
 * the guard's `publicKeys`. Read at start, and again whenever the directory changes (a key added,
 * replaced or removed), by the server runner (server.ts), which then swaps in a guard built on the
 * new set. Hidden files (an editor's, Kubernetes' `..data`) and other names are ignored, so a
 * mounted ConfigMap or Secret works as it is.
 */
import { generateKeyPairSync } from 'node:crypto'
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { fsFailure, UsageError } from './shared.js'
import { escapeTerminal } from './terminal.js'

export interface KeySet {
  /** The key text by application id (no prototype: a file named `constructor.pem` is application `constructor`). */
  readonly keys: Readonly<Record<string, string>>
  /** The file each key came from, by application id, to name it in an error. */
  readonly files: Readonly<Record<string, string>>
  /** The key files left out, each with why (a reload reads every other file). */
  readonly skipped: ReadonlyArray<{ readonly file: string, readonly reason: string }>
}

const KEY_FILE = /^(.+)\.(pem|key)$/

/**
 * Read the keys in `dir`. A directory that cannot be read throws. So does, with `strict` (at
 * start, where a person fixes it), a key file that cannot be read or two files for one
 * application; without it (a reload) such a file is left out and named in `skipped`, and every
 * other file is read, so a removal is applied whatever else is wrong.
 */
export function readKeysDir (dir: string, strict = true): KeySet {
  let names: string[]
  try {
    names = readdirSync(dir).sort()
  } catch (error) {
    throw fsFailure(error, 'read the directory', dir)
  }
  const keys: Record<string, string> = Object.create(null) as Record<string, string>
  const files: Record<string, string> = Object.create(null) as Record<string, string>
  const skipped: Array<{ file: string, reason: string }> = []
  for (const name of names) {
    const match = KEY_FILE.exec(name)
    if (name.startsWith('.') || match === null) continue
    const path = join(dir, name)
    const id = match[1]!
    let text: string
    try {
      // stat, not lstat: a symbolic link to a key (a mounted Secret) is a key; one whose target
      // is gone is a file that cannot be read.
      if (!statSync(path).isFile()) continue
      if (Object.hasOwn(files, id)) throw new UsageError(`${escapeTerminal(join(dir, files[id]!))} and ${escapeTerminal(name)} both hold the key of application ${escapeTerminal(id)}: keep one`)
      text = readFileSync(path, 'utf8')
    } catch (error) {
      const failure = error instanceof UsageError ? error : fsFailure(error, 'read', escapeTerminal(path))
      if (strict) throw failure
      skipped.push({ file: name, reason: failure.message })
      continue
    }
    keys[id] = text
    files[id] = name
  }
  return { keys, files, skipped }
}

/** What changed between two key sets, by application id, for the log. */
export function keyChanges (before: KeySet, after: KeySet): { added: string[], removed: string[], replaced: string[] } {
  const added: string[] = []
  const removed: string[] = []
  const replaced: string[] = []
  for (const id of Object.keys(after.keys)) {
    if (!Object.hasOwn(before.keys, id)) added.push(escapeTerminal(id))
    else if (before.keys[id] !== after.keys[id]) replaced.push(escapeTerminal(id))
  }
  for (const id of Object.keys(before.keys)) if (!Object.hasOwn(after.keys, id)) removed.push(escapeTerminal(id))
  return { added, removed, replaced }
}

/** The application id of the stand-in key of an empty directory. */
const NO_KEYS_ID = '(no keys)'
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

/** How often the directory is read again whatever the watcher says (ms): the bound on applying a change. */
export const KEYS_POLL_INTERVAL = 5000

/**
 * Call `changed` once the directory has been quiet for `settle` ms after a change (a copy or a
 * Kubernetes update is several events), and every `poll` ms whatever happens: `fs.watch` sees
 * no change behind a symbolic link (a key whose target is deleted), and a watcher of a directory
 * that was replaced (`rm -rf keys; mkdir keys`, an `mv` swap) watches the deleted one. The path
 * is watched: each event and each poll re-arms the watcher when the directory at that path is
 * another one (or is back). `changed` must do nothing when nothing changed. Returns the function
 * that stops watching.
 */
export function watchKeysDir (dir: string, changed: () => void, onError: (error: Error) => void, settle = 150, poll = KEYS_POLL_INTERVAL): () => void {
  let timer: NodeJS.Timeout | undefined
  let watcher: FSWatcher | undefined
  let watching: string | undefined
  let reported = false

  const onEvent = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      arm()
      changed()
    }, settle)
  }

  /** Watch the directory now at `dir`, unless that one is already watched. */
  function arm (): void {
    let identity: string
    try {
      const stats = statSync(dir)
      identity = `${stats.dev}:${stats.ino}`
    } catch {
      watcher?.close()
      watcher = watching = undefined
      return
    }
    if (watcher !== undefined && identity === watching) return
    watcher?.close()
    watcher = watching = undefined
    try {
      watcher = watch(dir, { persistent: false }, onEvent)
      watching = identity
      reported = false
      watcher.on('error', (error) => {
        watcher?.close()
        watcher = watching = undefined
        if (!reported) onError(error)
        reported = true
      })
    } catch (error) {
      if (!reported) onError(error as Error)
      reported = true
    }
  }

  arm()
  const poller = setInterval(() => {
    arm()
    changed()
  }, poll)
  poller.unref()
  return () => {
    clearTimeout(timer)
    clearInterval(poller)
    watcher?.close()
  }
}
