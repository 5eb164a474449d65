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
 *
 * The verify() target is a ratio of two cases, which a round of 300 ms slices measures 0.1 apart
 * from one round to the next on a shared machine. So its ratio comes from pairs of short slices
 * instead (PAIRS, default 60, of PAIR_MS, default 40 ms, the order alternating): two slices 40 ms
 * apart see the same machine. Beside it, the same pairs measure a floor that checks nothing:
 * split, base64url, JSON.parse and crypto.verify, as the least work any JWT verifier does. Its
 * ratio to raw is the most a verifier can reach here, whatever it checks.
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
const PAIRS = Number(process.env.BENCH_MICRO_PAIRS ?? 60)
const PAIR_MS = Number(process.env.BENCH_MICRO_PAIR_MS ?? 40)

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
const baseVerified = await baseUncached?.verify(token)
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

/** What every RS256 verification does at least: one crypto.verify on buffers and a key made beforehand. */
function rawVerify () {
  return cryptoVerify('sha256', signingInput, key, signature)
}

/** Ours, the cache off: every call parses, checks and verifies. */
const oursUncached = () => uncached.verify(token)

/**
 * A verifier that checks nothing but the signature: split the compact form, decode the signature
 * and the payload, JSON.parse it, crypto.verify. No header, claim, lifetime, duplicate-name or
 * ACL check, no canonical base64url: what a strict verifier adds to this is what its checks cost.
 */
function floorVerify () {
  const first = token.indexOf('.')
  const last = token.lastIndexOf('.')
  const claims = JSON.parse(Buffer.from(token.slice(first + 1, last), 'base64url').toString())
  const valid = cryptoVerify('sha256', Buffer.from(token.slice(0, last), 'latin1'), key, Buffer.from(token.slice(last + 1), 'base64url'))
  return valid ? claims : undefined
}

/** Sync cases: ops per CPU second over one time slice, in batches so the clock is read rarely. */
function timeSync (fn, batch, ms = SLICE_MS) {
  const end = performance.now() + ms
  let ops = 0
  const start = process.cpuUsage()
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) fn()
    ops += batch
  }
  return ops / cpuSeconds(start)
}

async function timeAsync (fn, batch, ms = SLICE_MS) {
  const end = performance.now() + ms
  let ops = 0
  const start = process.cpuUsage()
  while (performance.now() < end) {
    for (let i = 0; i < batch; i++) await fn()
    ops += batch
  }
  return ops / cpuSeconds(start)
}

const cases = {
  rawCryptoVerify: () => timeSync(rawVerify, 50),
  verifyUncached: () => timeAsync(oursUncached, 50),
  floorVerify: () => timeSync(floorVerify, 50),
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
        baseVerifyCached: () => timeAsync(() => baseCached.verify(token), 1000),
        baseAclDecision: () => timeSync(() => baseUncached.authorize(baseVerified, 'GET', canonicalPath(FIRST)), 1000),
        baseAclDecisionLastRule: () => timeSync(() => baseUncached.authorize(baseVerified, 'GET', canonicalPath(LAST)), 1000)
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
const perRound = (a, b) => samples[a].map((value, i) => value / samples[b][i])

// The verify() target: pairs of short slices, raw first in one pair and second in the next.
const paired = { verify: [], floor: [] }
for (let pair = 0; pair < PAIRS; pair++) {
  const rawFirst = pair % 2 === 0
  const before = rawFirst ? timeSync(rawVerify, 20, PAIR_MS) : undefined
  const ours = await timeAsync(oursUncached, 20, PAIR_MS)
  const floor = timeSync(floorVerify, 20, PAIR_MS)
  const raw = before ?? timeSync(rawVerify, 20, PAIR_MS)
  paired.verify.push(ours / raw)
  paired.floor.push(floor / raw)
}
/** The 10th and 90th percentiles: the spread of the pairs without their two worst outliers either side. */
function spread (list) {
  const sorted = [...list].sort((a, b) => a - b)
  return [sorted[Math.floor((sorted.length - 1) * 0.1)], sorted[Math.ceil((sorted.length - 1) * 0.9)]]
}
const baselineRatios = baseline === undefined
  ? {}
  : {
      baseVerifyVsRaw: median(perRound('baseVerifyUncached', 'rawCryptoVerify')),
      baseVerifyVsRawRounds: perRound('baseVerifyUncached', 'rawCryptoVerify'),
      verifyVsBase: median(perRound('verifyUncached', 'baseVerifyUncached')),
      cachedVsBase: median(perRound('verifyCached', 'baseVerifyCached')),
      aclDecisionVsBase: median(perRound('aclDecision', 'baseAclDecision')),
      aclDecisionLastRuleVsBase: median(perRound('aclDecisionLastRule', 'baseAclDecisionLastRule'))
    }
console.log(JSON.stringify({
  opsPerSecond,
  verifyVsRaw: median(paired.verify),
  verifyVsRawSpread: spread(paired.verify),
  floorVsRaw: median(paired.floor),
  floorVsRawSpread: spread(paired.floor),
  verifyVsFloor: median(paired.verify.map((ours, i) => ours / paired.floor[i])),
  verifyVsFloorSpread: spread(paired.verify.map((ours, i) => ours / paired.floor[i])),
  verifyVsRawRounds: perRound('verifyUncached', 'rawCryptoVerify'),
  pairs: PAIRS,
  pairMs: PAIR_MS,
  joseVsRaw: opsPerSecond.joseJwtVerify / opsPerSecond.rawCryptoVerify,
  ...baselineRatios,
  rounds: ROUNDS,
  sliceMs: SLICE_MS
}))
