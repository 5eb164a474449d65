/**
 * Driving the BUILT bin (`cli/dist/bin.cjs`: run `npm run build` first) the way a user does:
 * spawned processes, real sockets. Every child a test starts is killed in teardown.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
export { freePort } from '../../../test/helpers/http.js'
import { claims, keys, sign } from '../../../test/helpers/keys.js'

export const CLI = fileURLToPath(new URL('../../dist/bin.cjs', import.meta.url))
export const REALM = 'Bearer realm="vonage-jwt-guard"'

if (!existsSync(CLI)) {
  t.fail(`${CLI} is missing: run "npm run build" before these tests`)
  process.exit(1)
}

interface Result {
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
  stderr: () => string
  exited: Promise<number | null>
}

const children = new Set<ChildProcess>()

t.teardown(() => {
  for (const child of children) child.kill('SIGKILL')
})

/**
 * Start a long-running command and wait for the line that says where it listens. `noHooks`: run
 * it without NODE_OPTIONS, which tap's process tracking puts back into every child's environment
 * (its --import hook starts libuv's thread pool before the command runs); `env` execs node, so
 * the pid is still the command's.
 */
export function start (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, noHooks?: boolean } = {}): Promise<Server> {
  const command = options.noHooks === true ? ['env', '-u', 'NODE_OPTIONS', process.execPath] : [process.execPath]
  const child = spawn(command[0]!, [...command.slice(1), CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
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
        resolve({ child, base: match[1]!, stdout: () => out, stderr: () => err, exited })
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

/** Poll `check` every 100 ms until it returns true (10 s at most). */
export async function waitFor (what: string, check: () => Promise<boolean> | boolean, timeout = 10_000): Promise<void> {
  const until = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`waited ${timeout} ms for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** GET a metrics endpoint: status, content type, body. */
export async function scrape (url: string): Promise<{ status: number, type: string, body: string }> {
  const response = await fetch(url)
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() }
}

/** A sample's value in the Prometheus text format (undefined when absent): `name{a="x",b="y"} 3`. */
export function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const have = (match[2] ?? '').split(',').filter(Boolean)
    if (wanted.length === have.length && wanted.every(l => have.includes(l))) return Number(match[3])
  }
  return undefined
}

/** The metrics URL a server printed (`metrics: http://.../metrics`). */
export function metricsOf (server: Server): string {
  const url = /metrics: (http:\S+)/.exec(server.stdout())?.[1]
  if (url === undefined) throw new Error(`no metrics line in:\n${server.stdout()}`)
  return url
}
