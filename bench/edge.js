/**
 * The guard at the edge, in one run on one machine:
 *   1. nginx alone -> upstream; nginx + forward-auth (the server block of docs/deployment.md, read
 *      from the page) -> the same upstream; the same with the edge cache (`--decision-cache-max`,
 *      the page's `proxy_cache` configuration); and the same nginx configuration with a bare Node
 *      service that answers 200 to every check in forward-auth's place: the hop itself (a
 *      keep-alive loopback request to Node), the floor forward-auth is measured against (issue 27);
 *   2. a bare @fastify/http-proxy -> upstream, against `vonage-jwt-guard proxy` -> the same upstream.
 * Every server in its own process on 127.0.0.1; wrk (Debian's package) measures: 1 connection
 * (the latency a request pays, no queueing) and 10 connections (under load). Rounds rotate the
 * order so drift on a shared machine spreads over all of them. Medians of p50 / p99 / req/s, and
 * the CPU per request of the check service (forward-auth or the bare one), from /proc.
 *
 *   npm run build && cd bench && node edge.js      (needs nginx and wrk; BENCH_EDGE_SECONDS, BENCH_EDGE_ROUNDS)
 *
 * Every request is GET /v1/users/abc with one Client SDK token (a cache hit in the guard).
 */
import { execFileSync, spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, loadavg, cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLIENT_SDK_ACL, mintToken } from 'vonage-jwt-guard/mint'
import { median } from './stats.js'

const SECONDS = Number(process.env.BENCH_EDGE_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_EDGE_ROUNDS ?? 5)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = join(ROOT, 'cli/dist/bin.cjs')

for (const [binary, args] of [['nginx', ['-v']], ['wrk', ['--version']]]) {
  try {
    execFileSync(binary, args, { stdio: 'ignore' })
  } catch (error) {
    // wrk --version exits 1 after printing its version.
    if (error.code === 'ENOENT') {
      console.error(`${binary} is not installed (apt-get install ${binary}): nothing measured`)
      process.exit(1)
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'vjg-edge-'))
const children = []
/** The process id of each spawned server by its port: its CPU time is read from /proc. */
const pids = new Map()
process.on('exit', () => {
  for (const child of children) child.kill('SIGTERM')
  rmSync(dir, { recursive: true, force: true })
})

function freePort () {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Spawn a child and resolve with the port it prints (a line matching `pattern`). */
function spawnServer (args, pattern) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = pattern.exec(out)
      if (match !== null) {
        pids.set(Number(match[1]), child.pid)
        resolve(Number(match[1]))
      }
    })
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)))
  })
}

async function waitFor (port) {
  const { connect } = await import('node:net')
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.on('connect', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

async function startNginx (name, server) {
  const port = await freePort()
  const conf = [
    `pid ${dir}/${name}.pid;`,
    `error_log ${dir}/${name}.error.log warn;`,
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    'worker_processes 1;',
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${dir}/${name}-${kind};`),
    server(port),
    '}'
  ].join('\n')
  writeFileSync(join(dir, `${name}.conf`), conf)
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, `${name}.conf`), '-e', join(dir, `${name}.error.log`), '-g', 'daemon off;'], { stdio: 'inherit' })
  children.push(child)
  await waitFor(port)
  return port
}

/** The user + system CPU time of a process so far, in microseconds (Linux /proc; NaN elsewhere). */
const TICK_US = 1e6 / Number((() => { try { return execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }) } catch { return '100' } })())
function cpuOf (pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
    // Fields 14 and 15 of stat (utime, stime), counted from the state (field 3) here.
    return (Number(fields[11]) + Number(fields[12])) * TICK_US
  } catch {
    return NaN
  }
}

function wrk (port, token, connections, cpuPid) {
  const cpuBefore = cpuPid === undefined ? NaN : cpuOf(cpuPid)
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', '-H', `Authorization: Bearer ${token}`,
    `http://127.0.0.1:${port}/v1/users/abc`], { encoding: 'utf8' })
  const ms = (label) => {
    const match = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out)
    if (match === null) throw new Error(`no ${label}% in:\n${out}`)
    return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]]
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  if (non2xx !== null) throw new Error(`port ${port}: ${non2xx[1]} responses were not 2xx:\n${out}`)
  const requests = Number(/(\d+) requests in/.exec(out)[1])
  const cpu = (cpuPid === undefined ? NaN : cpuOf(cpuPid)) - cpuBefore
  return { p50: ms('50'), p99: ms('99'), rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]), cpuPerRequest: requests > 0 ? cpu / requests : NaN }
}

// Keys and the token, as `vonage jwt create` makes them.
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicPem = publicKey.export({ type: 'spki', format: 'pem' })
const token = await mintToken({}, privateKey.export({ type: 'pkcs8', format: 'pem' }), { applicationId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', sub: 'alice', acl: CLIENT_SDK_ACL, ttl: 3600 })

const upstreamPort = await spawnServer(['-e', `
  const server = require('node:http').createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end('{"ok":true}')
  })
  server.keepAliveTimeout = 65000
  server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port))
`], /port (\d+)/)

// The floor of the hop: a Node service that answers 200 to every check, over kept-alive connections.
const bareCheckPort = await spawnServer(['-e', `
  const server = require('node:http').createServer((req, res) => { res.end() })
  server.keepAliveTimeout = 65000
  server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port))
`], /port (\d+)/)

const guardPort = await spawnServer([CLI, 'forward-auth', '--port', '0', '--public-key', publicPem, '--log-level', 'warn'], /listening on http:\/\/127\.0\.0\.1:(\d+)/)
const cachingGuardPort = await spawnServer([CLI, 'forward-auth', '--port', '0', '--public-key', publicPem, '--log-level', 'warn', '--decision-cache-max', '60'], /listening on http:\/\/127\.0\.0\.1:(\d+)/)
const proxyPort = await spawnServer([CLI, 'proxy', '--upstream', `http://127.0.0.1:${upstreamPort}`, '--port', '0', '--public-key', publicPem, '--log-level', 'warn'], /listening on http:\/\/127\.0\.0\.1:(\d+)/)
const bareProxyPort = await spawnServer(['--input-type=module', '-e', `
  import Fastify from 'fastify'
  import httpProxy from '@fastify/http-proxy'
  const app = Fastify({ logger: false })
  await app.register(httpProxy, { upstream: 'http://127.0.0.1:${upstreamPort}' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  console.log('port ' + app.server.address().port)
`], /port (\d+)/)

const docs = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8')
const documented = /<!-- config: nginx -->\n```nginx\n([\s\S]*?)\n```\n/.exec(docs)[1]
const nginxGuarded = await startNginx('guarded', (port) => documented
  .replace('listen 80;', `listen 127.0.0.1:${port};`)
  .replaceAll('127.0.0.1:3001', `127.0.0.1:${guardPort}`)
  .replaceAll('127.0.0.1:8080', `127.0.0.1:${upstreamPort}`))
const nginxHop = await startNginx('hop', (port) => documented
  .replace('listen 80;', `listen 127.0.0.1:${port};`)
  .replaceAll('127.0.0.1:3001', `127.0.0.1:${bareCheckPort}`)
  .replaceAll('127.0.0.1:8080', `127.0.0.1:${upstreamPort}`))
const withCache = /<!-- config: nginx-cache -->\n```nginx\n([\s\S]*?)\n```\n/.exec(docs)[1]
const nginxCached = await startNginx('cached', (port) => withCache
  .replace('/var/cache/nginx/vonage_guard', join(dir, 'guard-cache'))
  .replace('listen 80;', `listen 127.0.0.1:${port};`)
  .replaceAll('127.0.0.1:3001', `127.0.0.1:${cachingGuardPort}`)
  .replaceAll('127.0.0.1:8080', `127.0.0.1:${upstreamPort}`))
const nginxAlone = await startNginx('alone', (port) => `server {\n  listen 127.0.0.1:${port};\n  location / {\n    proxy_pass http://127.0.0.1:${upstreamPort};\n  }\n}`)

/** [name, port, the process whose CPU per request is read]. */
const targets = [
  ['nginx alone', nginxAlone],
  ['nginx + a bare 200 service (docs config)', nginxHop, pids.get(bareCheckPort)],
  ['nginx + forward-auth (docs config)', nginxGuarded, pids.get(guardPort)],
  ['nginx + forward-auth, edge cache (docs config)', nginxCached, pids.get(cachingGuardPort)],
  ['bare @fastify/http-proxy', bareProxyPort],
  ['vonage-jwt-guard proxy', proxyPort]
]
const before = loadavg().map(n => n.toFixed(2)).join(', ')
const results = new Map(targets.map(([name]) => [name, { 1: [], 10: [] }]))
for (const [, port] of targets) wrk(port, token, 1) // warm-up, and a check that every target answers 2xx
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < targets.length; i++) {
    const [name, port, pid] = targets[(i + round) % targets.length]
    for (const connections of [1, 10]) results.get(name)[connections].push(wrk(port, token, connections, pid))
  }
}
const after = loadavg().map(n => n.toFixed(2)).join(', ')

const row = (name, connections) => {
  const runs = results.get(name)[connections]
  return { p50: median(runs.map(r => r.p50)), p99: median(runs.map(r => r.p99)), rps: median(runs.map(r => r.rps)), cpu: median(runs.map(r => r.cpuPerRequest)) }
}
/** Per-round ratios of two targets' p50 (round i with round i). */
const p50Rounds = (a, b, connections) => results.get(a)[connections].map((r, i) => r.p50 / results.get(b)[connections][i].p50)
const fmt = (n) => n.toFixed(3)
const added = (n) => `${n >= 0 ? '+' : ''}${fmt(n)}`
const lines = [
  `${new Date().toISOString()}, Node ${process.version}, ${cpus().length} × ${cpus()[0].model.trim()}, shared with other work`,
  `(load average before: ${before}; after: ${after}). wrk -t1, ${SECONDS} s per run, ${ROUNDS} rounds, medians.`,
  '',
  '| target | connections | p50 ms | p99 ms | req/s | added p50 ms | added p99 ms | check service CPU us/req |',
  '|---|--:|--:|--:|--:|--:|--:|--:|'
]
const cpuCell = (r) => Number.isFinite(r.cpu) ? r.cpu.toFixed(1) : ''
for (const [base, ...guarded] of [['nginx alone', 'nginx + a bare 200 service (docs config)', 'nginx + forward-auth (docs config)', 'nginx + forward-auth, edge cache (docs config)'], ['bare @fastify/http-proxy', 'vonage-jwt-guard proxy']]) {
  for (const connections of [1, 10]) {
    const a = row(base, connections)
    lines.push(`| ${base} | ${connections} | ${fmt(a.p50)} | ${fmt(a.p99)} | ${Math.round(a.rps)} | | | |`)
    for (const name of guarded) {
      const b = row(name, connections)
      lines.push(`| ${name} | ${connections} | ${fmt(b.p50)} | ${fmt(b.p99)} | ${Math.round(b.rps)} | ${added(b.p50 - a.p50)} | ${added(b.p99 - a.p99)} | ${cpuCell(b)} |`)
    }
  }
}
lines.push('', '| target (issue 27) | connections | measured (ratio of p50 medians) | spread of the rounds | met |', '|---|--:|--:|--:|:-:|')
for (const connections of [1, 10]) {
  const guarded = row('nginx + forward-auth (docs config)', connections)
  const hop = row('nginx + a bare 200 service (docs config)', connections)
  const rounds = p50Rounds('nginx + forward-auth (docs config)', 'nginx + a bare 200 service (docs config)', connections)
  const measured = guarded.p50 / hop.p50
  lines.push(`| forward-auth behind nginx: p50 <= 1.2x a bare 200 service behind the same configuration | ${connections} | ${measured.toFixed(2)}x | ${Math.min(...rounds).toFixed(2)}-${Math.max(...rounds).toFixed(2)} | ${measured <= 1.2 ? 'yes' : '**no**'} |`)
}
console.log(lines.join('\n'))
process.exit(0)
