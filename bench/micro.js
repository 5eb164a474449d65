/**
 * Micro benchmarks, one process, no HTTP: `node --expose-gc micro.js <fixture.json>`.
 * Prints progress on stderr and one JSON line on stdout.
 *
 * - verify(): ours with the cache off (every call parses, checks the header, verifies the
 *   signature and the claims, compiles the ACL) against a raw `crypto.verify` on buffers and a
 *   KeyObject prepared beforehand, which is the least any RS256 verifier can do; jose's jwtVerify
 *   and ours with the cache on for reference.
 * - The ACL decision per request: `canonicalPath()` + `authorize()` on a verified token, against
 *   minimatch compiled per request and precompiled.
 *
 * Cases are interleaved over several rounds and the median round counts, so a burst of load from
 * elsewhere hits one round of every case rather than all rounds of one. Rates are per second of
 * this process's CPU time (user + system, all threads), not of the wall clock: on a shared machine
 * the wall clock also counts the time other processes had the core.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { importSPKI, jwtVerify } from 'jose'
import { Minimatch } from 'minimatch'
import { BASELINE, load } from './dist.js'
import { median } from './stats.js'

const { canonicalPath, createVerifier } = await load('index.js')
/** Our own pattern matcher (issue 16), when this build has one. */
const glob = await load('glob.js').catch(() => undefined)
const baseline = BASELINE === undefined ? undefined : await load('index.js', BASELINE)

const fixture = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const ROUNDS = Number(process.env.BENCH_MICRO_ROUNDS ?? 7)
const SLICE_MS = Number(process.env.BENCH_MICRO_MS ?? 300)

const token = fixture.token
const dot = token.lastIndexOf('.')
const key = createPublicKey(fixture.publicKey)
const signingInput = Buffer.from(token.slice(0, dot), 'latin1')
const signature = Buffer.from(token.slice(dot + 1), 'base64url')
const joseKey = await importSPKI(fixture.publicKey, 'RS256')
const uncached = createVerifier({ publicKey: fixture.publicKey, cache: false })
const cached = createVerifier({ publicKey: fixture.publicKey })
const baseUncached = baseline?.createVerifier({ publicKey: fixture.publicKey, cache: false })
const baseCached = baseline?.createVerifier({ publicKey: fixture.publicKey })
const verified = await uncached.verify(token)
const patterns = Object.keys(verified.claims.acl.paths)
const MM = { dot: true, nobrace: true, noext: true, nonegate: true, nocomment: true, platform: 'linux' }
const precompiled = patterns.map(p => new Minimatch(p, MM))
const FIRST = fixture.path // granted by the first pattern
const LAST = '/v1/legs/abc' // granted by the tenth

function matchAll (list, path) {
  for (const mm of list) if (mm.match(path)) return true
  return false
}

function cpuSeconds (since) {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1e6
}

/** Sync cases: ops per CPU second over one time slice, in batches so the clock is read rarely. */
function timeSync (fn, batch) {
  const end = performance.now() + SLICE_MS
  let ops = 0
  const start = process.cpuUsage()
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) fn()
    ops += batch
  }
  return ops / cpuSeconds(start)
}

async function timeAsync (fn, batch) {
  const end = performance.now() + SLICE_MS
  let ops = 0
  const start = process.cpuUsage()
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) await fn()
    ops += batch
  }
  return ops / cpuSeconds(start)
}

const cases = {
  rawCryptoVerify: () => timeSync(() => cryptoVerify('sha256', signingInput, key, signature), 50),
  verifyUncached: () => timeAsync(() => uncached.verify(token), 50),
  verifyCached: () => timeAsync(() => cached.verify(token), 1000),
  joseJwtVerify: () => timeAsync(() => jwtVerify(token, joseKey, { algorithms: ['RS256'] }), 20),
  aclDecision: () => timeSync(() => uncached.authorize(verified, 'GET', canonicalPath(FIRST)), 1000),
  aclDecisionLastRule: () => timeSync(() => uncached.authorize(verified, 'GET', canonicalPath(LAST)), 1000),
  minimatchPrecompiled: () => timeSync(() => matchAll(precompiled, LAST), 1000),
  minimatchPerRequest: () => timeSync(() => matchAll(patterns.map(p => new Minimatch(p, MM)), LAST), 10),
  ...(glob === undefined ? {} : { oursPerRequest: () => timeSync(() => patterns.map(p => glob.compilePattern(p)).some(test => test(LAST)), 100) }),
  // The BENCH_BASELINE build, in the same rounds.
  ...(baseline === undefined
    ? {}
    : {
        baseVerifyUncached: () => timeAsync(() => baseUncached.verify(token), 50),
        baseVerifyCached: () => timeAsync(() => baseCached.verify(token), 1000)
      })
}

const samples = Object.fromEntries(Object.keys(cases).map(name => [name, []]))
for (const fn of Object.values(cases)) await fn() // warm-up: JIT, pattern caches
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    globalThis.gc?.()
    samples[name].push(await fn())
  }
  process.stderr.write(`  micro round ${round + 1}/${ROUNDS}\n`)
}

const opsPerSecond = Object.fromEntries(Object.entries(samples).map(([name, list]) => [name, median(list)]))
// The ratio per round (both cases of one round ran seconds apart), then its median.
const ratioPerRound = samples.verifyUncached.map((ours, i) => ours / samples.rawCryptoVerify[i])
const perRound = (a, b) => samples[a].map((value, i) => value / samples[b][i])
const baselineRatios = baseline === undefined
  ? {}
  : {
      baseVerifyVsRaw: median(perRound('baseVerifyUncached', 'rawCryptoVerify')),
      baseVerifyVsRawRounds: perRound('baseVerifyUncached', 'rawCryptoVerify'),
      verifyVsBase: median(perRound('verifyUncached', 'baseVerifyUncached')),
      cachedVsBase: median(perRound('verifyCached', 'baseVerifyCached'))
    }
console.log(JSON.stringify({
  opsPerSecond,
  verifyVsRaw: median(ratioPerRound),
  verifyVsRawRounds: ratioPerRound,
  joseVsRaw: opsPerSecond.joseJwtVerify / opsPerSecond.rawCryptoVerify,
  ...baselineRatios,
  rounds: ROUNDS,
  sliceMs: SLICE_MS
}))
