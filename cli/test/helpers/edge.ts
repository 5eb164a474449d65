/**
 * The real nginx and Caddy for the tests, run unprivileged-friendly on free loopback ports with
 * every file in a scratch folder (nginx: `-p` and its own temp paths; Caddy: `admin off`,
 * `auto_https off`, its own HOME and XDG folders), with configurations read from
 * docs/deployment.md so the docs cannot drift from what is tested. Stopped in teardown.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { freePort } from './bin.js'
import { markedBlock } from '../../../test/helpers/examples.js'

/** The code block right after `<!-- config: NAME -->` in docs/deployment.md. */
export function docsConfig (name: string): string {
  return markedBlock('docs/deployment.md', `config: ${name}`)
}

/** Replace each documented value, failing when the docs no longer contain it. */
export function substitute (config: string, replacements: Array<[string, string]>): string {
  let out = config
  for (const [from, to] of replacements) {
    if (!out.includes(from)) throw new Error(`the documented configuration no longer contains "${from}"`)
    out = out.split(from).join(to)
  }
  return out
}

/** Whether `binary args` runs (the tests that need it skip, with the reason, when not). */
export function installed (binary: string, args: string[]): boolean {
  try {
    execFileSync(binary, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Resolves when `port` accepts a connection (10 s at most). */
async function accepting (port: number, what: string, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.on('connect', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${what} did not listen on ${port}:\n${log()}`)
}

export interface Proxy {
  port: number
  log: () => string
}

/** Start a child that must be stopped gracefully (nginx's workers outlive a SIGKILLed master). */
function spawnDaemon (t: Test, command: string, args: string[], env?: NodeJS.ProcessEnv): { child: ChildProcess, log: () => string } {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { log += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  return { child, log: () => log }
}

function readIfThere (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

function scratch (t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vjg-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * nginx with `http` holding `server(port)`: what a distribution's nginx.conf gives a server block
 * (its own pid, logs and temp paths), here in a scratch folder.
 */
export async function startNginx (t: Test, server: (port: number) => string): Promise<Proxy> {
  const dir = scratch(t, 'nginx')
  const port = await freePort()
  const conf = [
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    // As root (CI), the workers would run as nobody, who cannot use the scratch folder.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${dir}/${kind};`),
    server(port),
    '}'
  ].join('\n')
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const { log } = spawnDaemon(t, 'nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'])
  const logs = (): string => `${log()}\n${readIfThere(join(dir, 'error.log'))}`
  await accepting(port, 'nginx', logs)
  return { port, log: logs }
}

/** Caddy with `site(port)` after global options: no admin endpoint, no certificates, every file in a scratch folder. */
export async function startCaddy (t: Test, site: (port: number) => string): Promise<Proxy> {
  const dir = scratch(t, 'caddy')
  const port = await freePort()
  const global = `{\n\tadmin off\n\tauto_https off\n\tstorage file_system ${dir}/data\n}\n\n`
  writeFileSync(join(dir, 'Caddyfile'), `${global}${site(port)}\n`)
  const { log } = spawnDaemon(t, 'caddy', ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
    { HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') })
  await accepting(port, 'caddy', log)
  return { port, log }
}

/** The php-fpm binary Debian installs (`php-fpm8.2` on bookworm), or undefined. */
export function phpFpmBinary (): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/local/sbin', '/usr/bin']) {
    let names: string[]
    try {
      names = readdirSync(dir)
    } catch {
      continue
    }
    const found = names.filter(name => /^php-fpm[0-9.]*$/.test(name)).sort().at(-1)
    if (found !== undefined) return join(dir, found)
  }
  return undefined
}

/** php-fpm serving the scripts in `root` over FastCGI on a free loopback port (root: with -R and user root). */
export async function startPhpFpm (t: Test): Promise<Proxy> {
  const binary = phpFpmBinary()
  if (binary === undefined) throw new Error('php-fpm is not installed')
  const dir = scratch(t, 'php-fpm')
  const port = await freePort()
  const asRoot = process.getuid?.() === 0
  writeFileSync(join(dir, 'php-fpm.conf'), [
    '[global]', `pid = ${dir}/php-fpm.pid`, `error_log = ${dir}/error.log`, 'daemonize = no',
    '[www]', ...(asRoot ? ['user = root', 'group = root'] : []), `listen = 127.0.0.1:${port}`,
    'pm = static', 'pm.max_children = 2', 'catch_workers_output = yes'
  ].join('\n'))
  const { log } = spawnDaemon(t, binary, ['-F', ...(asRoot ? ['-R'] : []), '-y', join(dir, 'php-fpm.conf'), '-p', dir])
  const logs = (): string => `${log()}\n${readIfThere(join(dir, 'error.log'))}`
  await accepting(port, 'php-fpm', logs)
  return { port, log: logs }
}

/** PHP's built-in web server (`php -S`) answering every request with `router` in `root`. */
export async function startPhpServer (t: Test, root: string, router: string): Promise<Proxy> {
  const port = await freePort()
  const { log } = spawnDaemon(t, 'php', ['-S', `127.0.0.1:${port}`, '-t', root, join(root, router)])
  await accepting(port, 'php -S', log)
  return { port, log }
}

/** Start a proxy in front of forward-auth at `guardPort` and an upstream at `upstreamPort`. */
export type StartProxy = (t: Test, guardPort: number, upstreamPort: number) => Promise<Proxy>

/** nginx with the documented server block: the guard and the upstream at their test ports. */
export const nginxWithDocs: StartProxy = (t, guardPort, upstreamPort) => startNginx(t, (port) => substitute(docsConfig('nginx'), [
  ['listen 80;', `listen 127.0.0.1:${port};`],
  ['127.0.0.1:3001', `127.0.0.1:${guardPort}`],
  ['127.0.0.1:8080', `127.0.0.1:${upstreamPort}`]
]))

/** Caddy with the documented site: served on a test port over plain HTTP. */
export const caddyWithDocs: StartProxy = (t, guardPort, upstreamPort) => startCaddy(t, (port) => substitute(docsConfig('caddy'), [
  ['api.example.com {', `http://127.0.0.1:${port} {`],
  ['127.0.0.1:3001', `127.0.0.1:${guardPort}`],
  ['127.0.0.1:8080', `127.0.0.1:${upstreamPort}`]
]))
