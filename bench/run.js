/**
 * The benchmark: `npm run bench` from the project root (builds, installs bench/ deps, runs this).
 *
 * 1. Keys and tokens (fixture.js).
 * 2. Micro benchmarks in a child process (micro.js): verify() vs raw crypto.verify, the ACL
 *    decision; then the memory checks (memory.js).
 * 3. HTTP: for each scenario (plan.js), its servers each in their own child process (server.js),
 *    started afresh; a warm-up per server, then RUNS rounds in which every server gets one
 *    autocannon run (the order rotates each round, so load drift on a shared machine spreads
 *    over all of them). Medians, ratios to the ceiling and to the peers within the same run,
 *    server CPU per request.
 * 4. results.md next to this file, and the tables on stdout.
 *
 * Environment knobs (bench/README.md): BENCH_DURATION (s, per run), BENCH_RUNS, BENCH_WARMUP (s),
 * BENCH_CONNECTIONS, BENCH_POOL (distinct tokens in the fixture), BENCH_UNIQUE_POOL (unique-ACL
 * tokens), BENCH_MEMORY_TOKENS, BENCH_SCENARIOS and BENCH_SERVERS (comma-separated ids),
 * BENCH_SKIP (micro,memory,http), BENCH_OUT (results file), BENCH_NODE_FLAGS (for the servers).
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { writeChart } from './chart.js'
import { BASELINE, load } from './dist.js'
import { freshToken, makeFixture, uniquePath } from './fixture.js'
import { SERVERS, SCENARIOS, TARGETS } from './plan.js'
import { renderResults } from './report.js'
import { median } from './stats.js'

const { CLIENT_SDK_ACL } = await load('mint.js')
/** The unique-ACL memory check: the default cache, full. */
const MEMORY_UNIQUE_TOKENS = 10_000
const here = dirname(fileURLToPath(import.meta.url))
const env = process.env
const config = {
  duration: Number(env.BENCH_DURATION ?? 2.5),
  runs: Number(env.BENCH_RUNS ?? 5),
  warmup: Number(env.BENCH_WARMUP ?? 1),
  connections: Number(env.BENCH_CONNECTIONS ?? 10),
  pool: Number(env.BENCH_POOL ?? 200_000),
  uniquePool: Number(env.BENCH_UNIQUE_POOL ?? 100_000),
  memoryTokens: Number(env.BENCH_MEMORY_TOKENS ?? 100_000),
  only: env.BENCH_SERVERS ? new Set(env.BENCH_SERVERS.split(',')) : null,
  scenarios: env.BENCH_SCENARIOS ? new Set(env.BENCH_SCENARIOS.split(',')) : null,
  /** Node flags for every server process (say `--trace-gc` or `--cpu-prof`). */
  serverFlags: (env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
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
    execArgv: config.serverFlags,
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

/** A small seeded generator, so that every server of a random scenario sees the same kind of sequence. */
function seeded (seed) {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/**
 * The autocannon requests of one server in one scenario. Streams keep their cursor on the server
 * (across its warm-up and runs), so a token comes back only once the pool is used up.
 */
function requestsFor (scenario, server, fixture, pools) {
  const headers = { authorization: `Bearer ${fixture.token}` }
  if (scenario.tokens === 'reused') return [{ method: 'GET', path: fixture.path, headers }]
  if (scenario.tokens === 'app') return [{ method: 'GET', path: fixture.path, headers: { authorization: `Bearer ${fixture.appToken}` } }]
  const unique = scenario.tokens === 'unique-acl'
  const tokens = unique ? pools.unique : pools.distinct
  const size = scenario.pool === undefined ? tokens.length : Math.min(scenario.pool, tokens.length)
  const random = scenario.tokens === 'random' ? (server.random ??= seeded(0x5eed)) : null
  server.cursor ??= 0
  return [{
    method: 'GET',
    path: fixture.path,
    headers,
    setupRequest: (request) => {
      let i
      if (random !== null) {
        i = Math.floor(random() * size)
      } else {
        i = server.cursor
        server.cursor = (server.cursor + 1) % size
        if (server.cursor === 0 && (scenario.tokens === 'stream' || unique)) server.wrapped = true
      }
      request.headers = { authorization: `Bearer ${tokens[i]}` }
      if (unique) request.path = uniquePath(i)
      return request
    }
  }]
}

async function cannon (server, scenario, fixture, pools, limit) {
  const result = await autocannon({
    url: `http://127.0.0.1:${server.port}`,
    connections: scenario.connections ?? config.connections,
    ...limit,
    requests: requestsFor(scenario, server, fixture, pools)
  })
  return result
}

/** One measured run: the server's CPU time around one autocannon run. */
async function measure (server, scenario, fixture, pools) {
  server.child.send({ type: 'cpu-start' })
  await waitMessage(server.child, 'cpu-started')
  const result = await cannon(server, scenario, fixture, pools, { duration: config.duration })
  server.child.send({ type: 'cpu-stop' })
  const cpu = await waitMessage(server.child, 'cpu')
  const total = result.requests.total
  return {
    rps: total / config.duration,
    p50: result.latency.p50,
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

/** The warm-up of one server: BENCH_WARMUP seconds, or two and a half rounds of a cycling pool (a token is kept from its second sighting). */
function warmupLimit (scenario) {
  if (scenario.tokens === 'cycle' || scenario.tokens === 'random') return { amount: Math.round(scenario.pool * 2.5) }
  return { duration: config.warmup }
}

async function runScenario (scenario, fixture, pools, skipped) {
  const specs = SERVERS.filter(spec => scenario.servers.includes(spec.id) && (config.only === null || config.only.has(spec.id)))
  if (specs.length === 0) return null
  const servers = []
  for (const spec of specs) {
    const server = await startServer(spec, fixture)
    if (server.skipped === undefined) server.skipped = await sanity(server, fixture) ?? undefined
    if (server.skipped !== undefined) {
      if (!skipped.some(s => s.id === spec.id)) skipped.push({ id: spec.id, reason: server.skipped })
      log(`skip ${spec.id}: ${server.skipped}`)
      await stopServer(server)
    }
    servers.push(server)
  }
  const live = servers.filter(server => server.skipped === undefined)
  const results = {}
  try {
    log(`${scenario.title}: warm-up per server`)
    for (const server of live) {
      await cannon(server, scenario, fixture, pools, warmupLimit(scenario))
      results[server.spec.id] = []
    }
    for (let run = 0; run < config.runs; run++) {
      const order = live.map((_, i) => live[(i + run) % live.length])
      for (const server of order) {
        const measured = await measure(server, scenario, fixture, pools)
        results[server.spec.id].push(measured)
        log(`${scenario.id} run ${run + 1}/${config.runs} ${server.spec.id}: ${Math.round(measured.rps)} req/s, ${measured.cpuPerRequest.toFixed(1)} us CPU/req${measured.bad > 0 ? `, ${measured.bad} non-2xx/errors` : ''}`)
      }
    }
  } finally {
    for (const server of servers) await stopServer(server)
  }
  const summary = {}
  for (const [id, runs] of Object.entries(results)) {
    const server = live.find(s => s.spec.id === id)
    summary[id] = {
      rps: median(runs.map(r => r.rps)),
      p50: median(runs.map(r => r.p50)),
      p99: median(runs.map(r => r.p99)),
      cpuPerRequest: median(runs.map(r => r.cpuPerRequest)),
      bad: runs.reduce((sum, r) => sum + r.bad, 0),
      runs: runs.map(r => Math.round(r.rps)),
      cpuRuns: runs.map(r => r.cpuPerRequest),
      ...(server?.wrapped === true ? { wrapped: true } : {})
    }
  }
  return summary
}

function readLines (file) {
  return readFileSync(file, 'latin1').split('\n').filter(line => line.length > 0)
}

async function runHttp (fixture) {
  const pools = {
    distinct: readLines(fixture.tokensFile).slice(0, config.pool),
    unique: readLines(fixture.uniqueTokensFile).slice(0, config.uniquePool)
  }
  const summary = {}
  const skipped = []
  for (const scenario of SCENARIOS) {
    if (config.scenarios !== null && !config.scenarios.has(scenario.id)) continue
    const result = await runScenario(scenario, fixture, pools, skipped)
    if (result !== null) summary[scenario.id] = result
  }
  return { summary, skipped }
}

// ---------------------------------------------------------------- main

const loadBefore = uptime()
log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}; ${loadBefore}`)
const fixture = await makeFixture({ count: Math.max(config.memoryTokens, config.pool), uniqueCount: Math.max(config.uniquePool, MEMORY_UNIQUE_TOKENS), acl: CLIENT_SDK_ACL, dir: join(here, '.cache') })
// The app scenario's token: 15 minutes, as `vonage jwt create` makes one by default, minted now.
fixture.appToken = freshToken(fixture.privateKey, CLIENT_SDK_ACL)
log(`${fixture.reused ? 'reusing' : 'made'} an RSA-2048 key, ${fixture.count} distinct RS256 tokens and ${fixture.uniqueCount} with ACLs of their own (bench/.cache/)`)
const report = { config: { ...config, only: config.only && [...config.only], skip: [...config.skip] }, loadBefore, node: process.version, cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, date: new Date().toISOString() }
if (!config.skip.has('micro')) {
  log('micro: verify() vs crypto.verify, the ACL decision')
  report.micro = await runChild('micro.js', [fixture.fixtureFile], ['--expose-gc'])
}
if (!config.skip.has('memory')) {
  log(`memory: ${config.memoryTokens} distinct tokens through one verifier`)
  report.memory = await runChild('memory.js', [fixture.fixtureFile, String(config.memoryTokens)], ['--expose-gc'])
  log(`memory: ${MEMORY_UNIQUE_TOKENS} cached tokens with ACLs of their own`)
  report.memoryUnique = await runChild('memory.js', [fixture.fixtureFile, String(MEMORY_UNIQUE_TOKENS), 'unique-acl'], ['--expose-gc'])
  if (config.baseline !== null) {
    report.memoryUniqueBase = await runChild('memory.js', [fixture.fixtureFile, String(MEMORY_UNIQUE_TOKENS), 'unique-acl', config.baseline], ['--expose-gc'])
  }
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
// The chart of the same numbers (results.svg), when the run has its scenarios (a subset may not).
try {
  log(`wrote ${await writeChart(config.out, config.out.replace(/\.md$/, '') + '.svg')}`)
} catch (error) {
  log(`no chart: ${error.message}`)
}
