/**
 * The benchmark: `npm run bench` from the project root (builds, installs bench/ deps, runs this).
 *
 * 1. Keys and tokens (fixture.js).
 * 2. Micro benchmarks in a child process (micro.js): verify() vs raw crypto.verify, the ACL
 *    decision; then the memory check (memory.js).
 * 3. HTTP: every server in its own child process (server.js), all started up front; for each
 *    scenario, a warm-up per server, then RUNS rounds in which every server gets one autocannon
 *    run (the order rotates each round, so load drift on a shared machine spreads over all of
 *    them). Medians, ratios to the ceiling and to the peers within the same run, server CPU per
 *    request.
 * 4. results.md next to this file, and the tables on stdout.
 *
 * Environment knobs (for debugging the harness with short runs): BENCH_DURATION (s, per run),
 * BENCH_RUNS, BENCH_WARMUP (s), BENCH_CONNECTIONS, BENCH_POOL (distinct tokens for HTTP),
 * BENCH_MEMORY_TOKENS, BENCH_SERVERS (comma-separated ids), BENCH_SKIP (micro,memory,http),
 * BENCH_OUT (results file).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { BASELINE, load } from './dist.js'
import { makeFixture } from './fixture.js'
import { SERVERS, SCENARIOS, TARGETS } from './plan.js'
import { renderResults } from './report.js'

const { CLIENT_SDK_ACL } = await load('mint.js')
const here = dirname(fileURLToPath(import.meta.url))
const env = process.env
const config = {
  duration: Number(env.BENCH_DURATION ?? 2.5),
  runs: Number(env.BENCH_RUNS ?? 5),
  warmup: Number(env.BENCH_WARMUP ?? 1),
  connections: Number(env.BENCH_CONNECTIONS ?? 10),
  pool: Number(env.BENCH_POOL ?? 12_000),
  memoryTokens: Number(env.BENCH_MEMORY_TOKENS ?? 100_000),
  only: env.BENCH_SERVERS ? new Set(env.BENCH_SERVERS.split(',')) : null,
  skip: new Set((env.BENCH_SKIP ?? '').split(',').filter(Boolean)),
  out: env.BENCH_OUT ?? join(here, 'results.md'),
  baseline: BASELINE ?? null
}

const started = Date.now()
function log (message) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${message}`)
}

function uptime () {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    return `load average: ${loadavg().map(n => n.toFixed(2)).join(', ')}`
  }
}

function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Run a node script to completion; its last stdout line is JSON. */
async function runChild (script, args, nodeArgs = []) {
  const child = fork(join(here, script), args, { execArgv: nodeArgs, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  let out = ''
  child.stdout.on('data', (chunk) => { out += chunk })
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`${script} exited with ${code}`)
  return JSON.parse(out.trim().split('\n').at(-1))
}

// ---------------------------------------------------------------- servers

function waitMessage (child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message.type === type || message.type === 'skip') {
        child.off('message', onMessage)
        child.off('exit', onExit)
        resolve(message)
      }
    }
    const onExit = (code) => reject(new Error(`server exited with ${code} before "${type}"`))
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

async function startServer (spec, fixture) {
  const child = fork(join(here, 'server.js'), [spec.module, fixture.fixtureFile, JSON.stringify(spec.options ?? {})], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const first = await waitMessage(child, 'ready')
  if (first.type === 'skip') {
    await once(child, 'exit').catch(() => {})
    return { spec, skipped: first.reason }
  }
  return { spec, child, port: first.port }
}

async function stopServer (server) {
  if (server.child === undefined || server.child.exitCode !== null) return
  server.child.send({ type: 'close' })
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 3000)
  await once(server.child, 'exit')
  clearTimeout(timer)
}

function requestsFor (scenario, fixture, pool) {
  const headers = { authorization: `Bearer ${fixture.token}` }
  if (scenario.id === 'reused') return [{ method: 'GET', path: fixture.path, headers }]
  // One counter for all connections: each request takes the next token of the pool, so with a
  // pool larger than every cache an LRU never hits.
  let next = 0
  return [{
    method: 'GET',
    path: fixture.path,
    headers,
    setupRequest: (request) => {
      request.headers = { authorization: `Bearer ${pool[next]}` }
      next = (next + 1) % pool.length
      return request
    }
  }]
}

async function cannon (server, scenario, fixture, pool, duration) {
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: config.connections,
    duration,
    requests: requestsFor(scenario, fixture, pool)
  })
  return result
}

/** One measured run: the server's CPU time around one autocannon run. */
async function measure (server, scenario, fixture, pool) {
  server.child.send({ type: 'cpu-start' })
  await waitMessage(server.child, 'cpu-started')
  const result = await cannon(server, scenario, fixture, pool, config.duration)
  server.child.send({ type: 'cpu-stop' })
  const cpu = await waitMessage(server.child, 'cpu')
  const total = result.requests.total
  return {
    rps: total / config.duration,
    p99: result.latency.p99,
    cpuPerRequest: total > 0 ? (cpu.user + cpu.system) / total : NaN,
    bad: result.non2xx + result.errors + result.timeouts,
    total
  }
}

/** One request with the token and one without: a server that does not answer 200 / 401 is not measured. */
async function sanity (server, fixture) {
  const ok = await autocannon({ url: `http://127.0.0.1:${server.port}${fixture.path}`, amount: 1, connections: 1, headers: { authorization: `Bearer ${fixture.token}` } })
  if (ok.non2xx !== 0 || ok['2xx'] !== 1) return 'does not answer 200 to a valid token'
  if (server.spec.auth) {
    const none = await autocannon({ url: `http://127.0.0.1:${server.port}${fixture.path}`, amount: 1, connections: 1 })
    if (none['2xx'] !== 0) return 'answers 2xx without a token'
  }
  return null
}

async function runHttp (fixture) {
  const pool = readFileSync(fixture.tokensFile, 'latin1').split('\n').slice(0, config.pool)
  const specs = SERVERS.filter(spec => config.only === null || config.only.has(spec.id))
  const servers = []
  for (const spec of specs) {
    const server = await startServer(spec, fixture)
    if (server.skipped === undefined) server.skipped = await sanity(server, fixture) ?? undefined
    if (server.skipped !== undefined) {
      log(`skip ${spec.id}: ${server.skipped}`)
      await stopServer(server)
    }
    servers.push(server)
  }
  const live = servers.filter(server => server.skipped === undefined)
  const results = {}
  try {
    for (const scenario of SCENARIOS) {
      results[scenario.id] = {}
      log(`${scenario.title}: warm-up ${config.warmup} s per server`)
      for (const server of live) {
        await cannon(server, scenario, fixture, pool, config.warmup)
        results[scenario.id][server.spec.id] = []
      }
      for (let run = 0; run < config.runs; run++) {
        const order = live.map((_, i) => live[(i + run) % live.length])
        for (const server of order) {
          const measured = await measure(server, scenario, fixture, pool)
          results[scenario.id][server.spec.id].push(measured)
          log(`${scenario.id} run ${run + 1}/${config.runs} ${server.spec.id}: ${Math.round(measured.rps)} req/s, ${measured.cpuPerRequest.toFixed(1)} us CPU/req${measured.bad > 0 ? `, ${measured.bad} non-2xx/errors` : ''}`)
        }
      }
    }
  } finally {
    for (const server of servers) await stopServer(server)
  }
  const summary = {}
  for (const scenario of SCENARIOS) {
    summary[scenario.id] = {}
    for (const [id, runs] of Object.entries(results[scenario.id] ?? {})) {
      summary[scenario.id][id] = {
        rps: median(runs.map(r => r.rps)),
        p99: median(runs.map(r => r.p99)),
        cpuPerRequest: median(runs.map(r => r.cpuPerRequest)),
        bad: runs.reduce((sum, r) => sum + r.bad, 0),
        runs: runs.map(r => Math.round(r.rps))
      }
    }
  }
  return { summary, skipped: servers.filter(s => s.skipped !== undefined).map(s => ({ id: s.spec.id, reason: s.skipped })) }
}

// ---------------------------------------------------------------- main

const loadBefore = uptime()
log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${loadBefore}`)
const fixture = await makeFixture({ count: Math.max(config.memoryTokens, config.pool), acl: CLIENT_SDK_ACL, dir: join(here, '.cache') })
log(`${fixture.reused ? 'reusing' : 'made'} an RSA-2048 key and ${fixture.count} distinct RS256 tokens (bench/.cache/)`)
const report = { config: { ...config, only: config.only && [...config.only], skip: [...config.skip] }, loadBefore, node: process.version, cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, date: new Date().toISOString() }
if (!config.skip.has('micro')) {
  log('micro: verify() vs crypto.verify, the ACL decision')
  report.micro = await runChild('micro.js', [fixture.fixtureFile], ['--expose-gc'])
}
if (!config.skip.has('memory')) {
  log(`memory: ${config.memoryTokens} distinct tokens through one verifier`)
  report.memory = await runChild('memory.js', [fixture.fixtureFile, String(config.memoryTokens)], ['--expose-gc'])
}
if (!config.skip.has('http')) {
  report.http = await runHttp(fixture)
}
report.loadAfter = uptime()
report.seconds = Math.round((Date.now() - started) / 1000)
const markdown = renderResults(report, { SERVERS, SCENARIOS, TARGETS })
writeFileSync(config.out, markdown)
console.log('\n' + markdown)
log(`wrote ${config.out}`)
