/** results.md from one run's report: the targets, the HTTP tables, the micro and memory numbers. */
import { median } from './stats.js'

const fmt = (n, digits = 0) => Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'
const ratio = (a, b) => Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN
const x = (n) => Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a'
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

/** Per-round ratios of two rows (round i with round i: the rounds interleave the servers). */
function perRound (a, b) {
  if (a === undefined || b === undefined) return []
  return a.runs.map((r, i) => ratio(r, b.runs[i])).filter(Number.isFinite)
}

/** Per-round differences of server CPU per request (us): round i with round i. */
function perRoundCpu (a, b) {
  if (a?.cpuRuns === undefined || b?.cpuRuns === undefined) return []
  return a.cpuRuns.map((r, i) => r - b.cpuRuns[i]).filter(Number.isFinite)
}

const signed = (n) => `${n >= 0 ? '+' : ''}${n.toFixed(2)}`
const cpuSpread = (diffs) => diffs.length === 0 ? '' : `${signed(Math.min(...diffs))} to ${signed(Math.max(...diffs))} us`

const spread = (ratios) => ratios.length === 0 ? '' : `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`

function httpTable (scenario, rows, SERVERS) {
  const ceiling = rows['fastify-bare']?.rps
  const expressCeiling = rows['express-bare']?.rps
  const floor = rows.floor?.rps
  const ours = rows['ours-cache']?.rps
  const lines = [
    `### ${scenario.title}`,
    '',
    `${scenario.detail[0].toUpperCase()}${scenario.detail.slice(1)}.`,
    '',
    '| server | ACL | req/s (median) | x ceiling | x ours | x floor | p50 / p99 ms | server CPU us/req | CPU us/req of the runs | runs (req/s) |',
    '|---|---|--:|--:|--:|--:|--:|--:|---|---|'
  ]
  for (const spec of SERVERS) {
    const row = rows[spec.id]
    if (row === undefined) continue
    const isExpress = spec.express === true
    const top = isExpress ? expressCeiling : ceiling
    const notes = [row.bad > 0 ? `${row.bad} non-2xx!` : '', row.wrapped === true ? 'pool used up: tokens repeated' : ''].filter(Boolean).join('; ')
    lines.push(`| ${spec.title} | ${spec.acl ? 'yes' : 'no'} | ${fmt(row.rps)} | ${x(ratio(row.rps, top))}${isExpress && spec.id !== 'express-bare' && top !== undefined ? ' (of Express)' : ''} | ${x(ratio(row.rps, ours))} | ${x(ratio(row.rps, floor))} | ${fmt(row.p50, 0)} / ${fmt(row.p99, 0)} | ${fmt(row.cpuPerRequest, 1)} | ${(row.cpuRuns ?? []).map(n => n.toFixed(1)).join(', ')} | ${row.runs.join(', ')}${notes === '' ? '' : ` (${notes})`} |`)
  }
  return lines.join('\n')
}

/** This build against the BENCH_BASELINE build, per scenario: the ratio of medians and the per-round ratios. */
function baselineTable (summary, SERVERS, SCENARIOS) {
  const lines = ['| scenario | server | this build req/s | baseline req/s | ratio of medians | median of per-round ratios | per round |', '|---|---|--:|--:|--:|--:|---|']
  for (const scenario of SCENARIOS) {
    const rows = summary[scenario.id] ?? {}
    for (const spec of SERVERS.filter(s => s.baseline !== undefined)) {
      const ours = rows[spec.baseline]
      const base = rows[spec.id]
      if (ours === undefined || base === undefined) continue
      const rounds = perRound(ours, base)
      lines.push(`| ${scenario.id} | ${spec.baseline} | ${fmt(ours.rps)} | ${fmt(base.rps)} | ${x(ratio(ours.rps, base.rps))} | ${x(median(rounds))} | ${rounds.map(r => r.toFixed(2)).join(', ')} |`)
    }
  }
  return lines.join('\n')
}

/** The cache-size scenarios side by side: our cache on each pool, against our distinct-token figure. */
function cacheTable (summary, SCENARIOS) {
  const distinct = summary.distinct?.['ours-cache']
  const lines = ['| pool | ours, cache on req/s | x ours on distinct tokens | baseline build req/s | x baseline |', '|---|--:|--:|--:|--:|']
  for (const scenario of SCENARIOS.filter(s => s.tokens === 'cycle' || s.tokens === 'random')) {
    const rows = summary[scenario.id]
    if (rows === undefined) continue
    const ours = rows['ours-cache']
    const base = rows['base-cache']
    lines.push(`| ${scenario.title} | ${fmt(ours?.rps)} | ${x(ratio(ours?.rps, distinct?.rps))} | ${fmt(base?.rps)} | ${x(ratio(ours?.rps, base?.rps))} |`)
  }
  return lines.join('\n')
}

/** One row per target: the measured ratio (of medians), the spread of the per-round ratios, met or not. */
function targetLines (report, TARGETS) {
  const lines = ['| target | measured | spread of the rounds | met |', '|---|--:|--:|:-:|']
  for (const target of TARGETS) {
    let measured = NaN
    let met = false
    let shown
    let rounds = []
    if (target.micro !== undefined) {
      measured = report.micro?.[target.micro]
      // Paired slices: the 10th to the 90th percentile of the pairs (micro.js), else the rounds.
      rounds = report.micro?.[`${target.micro}Spread`] ?? report.micro?.[`${target.micro}Rounds`] ?? []
      met = measured >= target.min
    } else if (target.memory === 'distinct') {
      const memory = report.memory
      if (memory !== undefined) {
        met = memory.bounded
        shown = `+${mib(memory.growthAfterFull)} after the cache filled (cache: ${mib(memory.heapAtCacheFull - memory.heapBefore)})`
      }
    } else if (target.memory === 'uniqueAcl') {
      const memory = report.memoryUnique
      if (memory !== undefined) {
        met = memory.within
        const base = report.memoryUniqueBase
        shown = `${mib(memory.heapAfter)}${base === undefined ? '' : ` (baseline build: ${mib(base.heapAfter)})`}`
      }
    } else if (target.maxAddedCpu !== undefined) {
      const summary = report.http?.summary ?? {}
      const a = summary[target.scenario]?.[target.server]
      const b = summary[target.scenario]?.[target.versus]
      measured = (a?.cpuPerRequest ?? NaN) - (b?.cpuPerRequest ?? NaN)
      if (Number.isFinite(measured)) {
        met = measured <= target.maxAddedCpu
        const diffs = perRoundCpu(a, b)
        shown = `${signed(measured)} us (${fmt(a.cpuPerRequest, 1)} against ${fmt(b.cpuPerRequest, 1)})`
        lines.push(`| ${target.text} | ${shown} | ${cpuSpread(diffs)} | ${met ? 'yes' : '**no**'} |`)
        continue
      }
    } else {
      const summary = report.http?.summary ?? {}
      const a = summary[target.scenario]?.[target.server]
      const b = summary[target.versusScenario ?? target.scenario]?.[target.versus]
      measured = ratio(a?.rps, b?.rps)
      rounds = perRound(a, b)
      met = measured >= target.min
    }
    const status = shown === undefined && !Number.isFinite(measured) ? (target.baseline === true ? 'needs BENCH_BASELINE' : 'not run') : met ? 'yes' : '**no**'
    lines.push(`| ${target.text} | ${shown ?? x(measured)} | ${spread(rounds)} | ${status} |`)
  }
  return lines.join('\n')
}

export function renderResults (report, { SERVERS, SCENARIOS, TARGETS }) {
  const c = report.config
  const out = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${report.date} (${report.seconds} s). Node ${report.node}, ${report.cpus}.`,
    `autocannon: ${c.connections} connections unless a scenario says otherwise, ${c.runs} runs of ${c.duration} s per server and scenario after a warm-up, runs interleaved across servers; medians.`,
    'RS256 with a 2048-bit key; tokens carry the standard Client SDK ACL (unique-ACL scenario: nine patterns of their own); every request is `GET /v1/users/<id>`.',
    `Pools: ${fmt(c.pool)} distinct tokens, ${fmt(c.uniquePool)} with ACLs of their own; our cache holds 10,000, @fastify/jwt's 1,000.`,
    '',
    'Machine load (`uptime`), shared with other work, so absolute numbers are noisy and the ratios within this run are what count:',
    '',
    `- before: \`${report.loadBefore}\``,
    `- after: \`${report.loadAfter}\``,
    '',
    '## Targets (issue 16)',
    '',
    '"measured" is the ratio of the two medians (CPU rows: the difference of the two medians of server CPU per request); "spread" the lowest and the highest ratio (difference) of one round (the rounds interleave the servers). The verify() row is the median of pairs of 40 ms slices, its spread their 10th to 90th percentile (see Micro).',
    '',
    targetLines(report, TARGETS),
    ''
  ]
  if (report.http !== undefined) {
    const summary = report.http.summary
    out.push('## HTTP', '')
    out.push('"x ceiling" is the share of bare Fastify (Express rows: of bare Express); "x ours": of our plugin with its cache on. "ACL": whether the server enforces the token\'s `acl.paths`; @fastify/jwt and express-jwt check only the signature and `exp`. Server CPU is user + system time of the server process (all its threads) divided by the requests answered. Every scenario starts its servers afresh.', '')
    if (SCENARIOS.some(s => (s.tokens === 'cycle' || s.tokens === 'random') && summary[s.id] !== undefined)) {
      out.push('### Around the cache size', '', cacheTable(summary, SCENARIOS), '')
    }
    for (const scenario of SCENARIOS) {
      if (summary[scenario.id] !== undefined) out.push(httpTable(scenario, summary[scenario.id], SERVERS), '')
    }
    for (const skipped of report.http.skipped) out.push(`Skipped \`${skipped.id}\`: ${skipped.reason}`, '')
    if (SERVERS.some(spec => spec.baseline !== undefined)) {
      out.push('### This build against the baseline', '', `Baseline: \`${c.baseline}\`.`, '', baselineTable(summary, SERVERS, SCENARIOS), '')
    }
  }
  if (report.micro !== undefined) {
    const o = report.micro.opsPerSecond
    out.push('## Micro', '',
      `Median of ${report.micro.rounds} interleaved rounds of ${report.micro.sliceMs} ms, one process; rates per second of that process's CPU time.`, '',
      '| case | ops/s | us/op |', '|---|--:|--:|',
      ...[
        ['raw `crypto.verify` (buffers and KeyObject prepared)', o.rawCryptoVerify],
        ['our `verify()`, cache off (parse, header, signature, claims, ACL)', o.verifyUncached],
        ['floor: split, base64url, `JSON.parse`, `crypto.verify`; no other check', o.floorVerify],
        ['our `verify()`, cache hit', o.verifyCached],
        ...(o.baseVerifyUncached === undefined
          ? []
          : [['baseline build `verify()`, cache off', o.baseVerifyUncached], ['baseline build `verify()`, cache hit', o.baseVerifyCached]]),
        ['jose `jwtVerify` (CryptoKey imported once)', o.joseJwtVerify],
        ['ACL decision: `canonicalPath()` + `authorize()`, first rule grants', o.aclDecision],
        ['ACL decision: `canonicalPath()` + `authorize()`, tenth rule grants', o.aclDecisionLastRule],
        ['minimatch, 10 patterns precompiled', o.minimatchPrecompiled],
        ['minimatch, 10 patterns compiled per request', o.minimatchPerRequest],
        ['our matcher, 10 patterns compiled per request', o.oursPerRequest]
      ].filter(([, ops]) => ops !== undefined).map(([name, ops]) => `| ${name} | ${fmt(ops)} | ${fmt(1e6 / ops, 2)} |`),
      '',
      ...(report.micro.floorVsRaw === undefined
        ? [`\`verify()\` uncached / raw \`crypto.verify\`: **${x(report.micro.verifyVsRaw)}** (per round: ${report.micro.verifyVsRawRounds.map(r => r.toFixed(2)).join(', ')}); jose / raw: ${x(report.micro.joseVsRaw)}.`]
        : [`Against raw \`crypto.verify\`, in ${report.micro.pairs} pairs of ${report.micro.pairMs} ms slices (medians; 10th-90th percentile): \`verify()\` uncached **${x(report.micro.verifyVsRaw)}** (${spread(report.micro.verifyVsRawSpread)}); the floor that checks nothing ${x(report.micro.floorVsRaw)} (${spread(report.micro.floorVsRawSpread)}); \`verify()\` / the floor ${x(report.micro.verifyVsFloor)}. In the rounds above: ${report.micro.verifyVsRawRounds.map(r => r.toFixed(2)).join(', ')}. jose / raw: ${x(report.micro.joseVsRaw)}.`]),
      '')
    if (report.micro.baseVerifyVsRaw !== undefined) {
      out.push(`Baseline build \`verify()\` uncached / raw: ${x(report.micro.baseVerifyVsRaw)} (per round: ${report.micro.baseVerifyVsRawRounds.map(r => r.toFixed(2)).join(', ')}). This build / baseline, uncached: ${x(report.micro.verifyVsBase)}; cache hit: ${x(report.micro.cachedVsBase)} (medians of per-round ratios).`, '')
    }
  }
  if (report.memory !== undefined) {
    const m = report.memory
    out.push('## Memory', '',
      `${fmt(m.tokens)} distinct tokens through one verifier (cache bound ${fmt(m.cacheMax)} entries), heap after a full GC:`, '',
      `- before: ${mib(m.heapBefore)}; after ${fmt(m.cacheMax)} tokens, as many as the cache holds: ${mib(m.heapAtCacheFull)} (tokens seen once pass through the cache's window and are not kept); after ${fmt(m.tokens)}: ${mib(m.heapAtEnd)}`,
      `- growth after the cache filled: ${mib(m.growthAfterFull)} (allowed: ${mib(m.allowance)}): **${m.bounded ? 'bounded' : 'NOT bounded'}**`,
      `- along the way: ${m.samples.map(s => `${fmt(s.tokens / 1000)}k: ${mib(s.heapUsed)}`).join(', ')}`,
      `- ${fmt(m.verifiesPerSecond)} uncached verifies/s on the way`,
      '')
    const u = report.memoryUnique
    if (u !== undefined) {
      const base = report.memoryUniqueBase
      out.push(`${fmt(u.tokens)} tokens with nine ACL patterns of their own, each verified and its request decided, all of them cached (still cached at the end: ${u.stillCached ?? 'not checked'} sampled): heap ${mib(u.heapAfter)} after a full GC (before: ${mib(u.heapBefore)}; about ${fmt(u.perTokenBytes)} bytes per token; limit ${mib(u.limit)}): **${u.within ? 'within' : 'NOT within'}**; ${fmt(u.verifiesPerSecond)} verifies and decisions/s.${base === undefined ? '' : ` Baseline build: ${mib(base.heapAfter)} (about ${fmt(base.perTokenBytes)} bytes per token).`}`, '')
    }
  }
  out.push('## Reproduce', '', '```sh', 'npm run bench            # from the project root: build, npm ci in bench/, run; writes bench/results.md', 'BENCH_SCENARIOS=reused,distinct BENCH_SKIP=micro,memory node bench/run.js   # a subset (after npm run build)', '```', '')
  return out.join('\n')
}
