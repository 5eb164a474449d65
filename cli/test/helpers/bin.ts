/**
 * Driving the BUILT bin (`cli/dist/index.js`: run `npm run build` first) the way a user does:
 * spawned processes, real sockets. Every child a test starts is killed in teardown.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
export { freePort } from '../../../test/helpers/http.js'
import { claims, keys, sign } from '../../../test/helpers/keys.js'

export const CLI = fileURLToPath(new URL('../../dist/index.js', import.meta.url))
export const REALM = 'Bearer realm="vonage-jwt-guard"'

if (!existsSync(CLI)) {
  t.fail(`${CLI} is missing: run "npm run build" before these tests`)
  process.exit(1)
}

export interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Run the bin to completion (30 s at most), optionally feeding stdin. */
export function run (args: string[], options: { cwd?: string, input?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(new Error(`${args.join(' ')}: ${error.message}\n${stderr}`))
        return
      }
      resolve({ code: error === null ? 0 : error.code as number, stdout, stderr })
    })
    child.stdin?.end(options.input ?? '')
  })
}

/** Run `fn` over `items`, a few at a time (the machine is shared), results in order. */
export async function inTurns<T, R> (items: readonly T[], fn: (item: T) => Promise<R>, width = 3): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return results
}

export interface Server {
  child: ChildProcess
  base: string
  stdout: () => string
  exited: Promise<number | null>
}

const children = new Set<ChildProcess>()

t.teardown(() => {
  for (const child of children) child.kill('SIGKILL')
})

/** Start a long-running command and wait for the line that says where it listens. */
export function start (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Server> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let out = ''
  let err = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child)
    resolve(code)
  }))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no "listening on" line within 20 s\nstdout: ${out}\nstderr: ${err}`))
    }, 20_000)
    child.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString() })
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      // The banner is written in one piece after listen(): wait for its end.
      const match = /listening on (http:\/\/[^\s,]+)[^\n]*\(Ctrl-C to stop\)[\s\S]*\n$/.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ child, base: match[1]!, stdout: () => out, exited })
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`))
    })
  })
}

/** SIGTERM, and wait (5 s at most) for the exit code. */
export async function stop (server: Server): Promise<number | null> {
  server.child.kill('SIGTERM')
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5_000).unref())
  const code = await Promise.race([server.exited, timeout])
  if (code === 'timeout') {
    server.child.kill('SIGKILL')
    return null
  }
  return code
}

export function portOf (base: string): number {
  return Number(new URL(base).port)
}

/** A token valid now (the bin runs on the real clock), signed by jose. */
export function liveToken (over: Record<string, unknown> = {}, key = keys.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return sign(claims({ iat: now - 10, exp: now + 600, ...over }), { key })
}
