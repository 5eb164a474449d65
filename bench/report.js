/** results.md from one run's report: the HTTP tables, the targets, the micro and memory numbers. */

const fmt = (n, digits = 0) => Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a'
const ratio = (a, b) => Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN
const x = (n) => Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a'
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

function httpTable (scenario, summary, SERVERS) {
  const rows = summary[scenario.id] ?? {}
  const ceiling = rows['fastify-bare']?.rps
  const expressCeiling = rows['express-bare']?.rps
  const fjwt = rows[scenario.id === 'reused' ? 'fastify-jwt-cache' : 'fastify-jwt-nocache']?.rps
  const floor = rows.floor?.rps
  const lines = [
    `### ${scenario.title}`,
    '',
    `${scenario.detail}.`,
    '',
    `| server | ACL | req/s (median) | x ceiling | x @fastify/jwt ${scenario.id === 'reused' ? 'cache on' : 'cache off'} | x floor | p99 ms | server CPU us/req | runs (req/s) |`,
    '|---|---|--:|--:|--:|--:|--:|--:|---|'
  ]
  for (const spec of SERVERS) {
    const row = rows[spec.id]
    if (row === undefined) continue
    const isExpress = spec.express === true
    const top = isExpress ? expressCeiling : ceiling
    lines.push(`| ${spec.title} | ${spec.acl ? 'yes' : 'no'} | ${fmt(row.rps)} | ${x(ratio(row.rps, top))}${isExpress && spec.id !== 'express-bare' ? ' (of Express)' : ''} | ${x(ratio(row.rps, fjwt))} | ${x(ratio(row.rps, floor))} | ${fmt(row.p99, 1)} | ${fmt(row.cpuPerRequest, 1)} | ${row.runs.join(', ')}${row.bad > 0 ? ` (${row.bad} non-2xx!)` : ''} |`)
  }
  return lines.join('\n')
}

function median (values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** This build against the BENCH_BASELINE build: the ratio of medians, and the median of the per-round ratios (the rounds interleave both). */
function baselineTable (summary, SERVERS, SCENARIOS) {
  const lines = ['| scenario | server | this build req/s | baseline req/s | ratio of medians | median of per-round ratios | per round |', '|---|---|--:|--:|--:|--:|---|']
  for (const scenario of SCENARIOS) {
    const rows = summary[scenario.id] ?? {}
    for (const spec of SERVERS.filter(s => s.baseline !== undefined)) {
      const ours = rows[spec.baseline]
      const base = rows[spec.id]
      if (ours === undefined || base === undefined) continue
      const perRound = ours.runs.map((r, i) => ratio(r, base.runs[i]))
      lines.push(`| ${scenario.id} | ${spec.baseline} | ${fmt(ours.rps)} | ${fmt(base.rps)} | ${x(ratio(ours.rps, base.rps))} | ${x(median(perRound))} | ${perRound.map(r => r.toFixed(2)).join(', ')} |`)
    }
  }
  return lines.join('\n')
}

function targetLines (report, TARGETS) {
  const lines = ['| target | measured | met |', '|---|--:|:-:|']
  for (const target of TARGETS) {
    let measured = NaN
    let met = false
    let shown
    if (target.micro !== undefined) {
      measured = report.micro?.[target.micro]
      met = measured >= target.min
    } else if (target.memory) {
      const memory = report.memory
      if (memory !== undefined) {
        met = memory.bounded
        shown = `+${mib(memory.growthAfterFull)} after the cache filled (cache: ${mib(memory.heapAtCacheFull - memory.heapBefore)})`
      }
    } else {
      const rows = report.http?.summary?.[target.scenario] ?? {}
      measured = ratio(rows[target.server]?.rps, rows[target.versus]?.rps)
      met = measured >= target.min
    }
    lines.push(`| ${target.text} | ${shown ?? x(measured)} | ${shown === undefined && !Number.isFinite(measured) ? 'not run' : met ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

export function renderResults (report, { SERVERS, SCENARIOS, TARGETS }) {
  const c = report.config
  const out = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${report.date} (${report.seconds} s). Node ${report.node}, ${report.cpus}.`,
    `autocannon: ${c.connections} connections, ${c.runs} runs of ${c.duration} s per server and scenario after a ${c.warmup} s warm-up, runs interleaved across servers; medians.`,
    `RS256 with a 2048-bit key; tokens carry the standard Client SDK ACL; every request is \`GET /v1/users/abc\` (granted by \`/*/users/**\`).`,
    `Distinct-token pool: ${fmt(c.pool)} tokens (our cache holds 10,000, @fastify/jwt's 1,000).`,
    '',
    'Machine load (`uptime`), shared with other work, so absolute numbers are noisy and the ratios within this run are what count:',
    '',
    `- before: \`${report.loadBefore}\``,
    `- after: \`${report.loadAfter}\``,
    '',
    '## Targets (issue 5)',
    '',
    targetLines(report, TARGETS),
    ''
  ]
  if (report.http !== undefined) {
    out.push('## HTTP', '')
    out.push('"x ceiling" is the share of bare Fastify (Express rows: of bare Express). "ACL": whether the server enforces the token\'s `acl.paths`; @fastify/jwt and express-jwt check only the signature and `exp`. Server CPU is user + system time of the server process divided by the requests answered.', '')
    for (const scenario of SCENARIOS) out.push(httpTable(scenario, report.http.summary, SERVERS), '')
    for (const skipped of report.http.skipped) out.push(`Skipped \`${skipped.id}\`: ${skipped.reason}`, '')
    if (SERVERS.some(spec => spec.baseline !== undefined)) {
      out.push('### This build against the baseline', '', `Baseline: \`${c.baseline}\`.`, '', baselineTable(report.http.summary, SERVERS, SCENARIOS), '')
    }
  }
  if (report.micro !== undefined) {
    const o = report.micro.opsPerSecond
    out.push('## Micro', '',
      `Median of ${report.micro.rounds} interleaved rounds of ${report.micro.sliceMs} ms, one process; rates per second of that process's CPU time.`, '',
      '| case | ops/s | us/op |', '|---|--:|--:|',
      ...[
        ['raw `crypto.verify` (buffers and KeyObject prepared)', o.rawCryptoVerify],
        ['our `verify()`, cache off (parse, header, signature, claims, ACL compile)', o.verifyUncached],
        ['our `verify()`, cache hit', o.verifyCached],
        ...(o.baseVerifyUncached === undefined
          ? []
          : [['baseline build `verify()`, cache off', o.baseVerifyUncached], ['baseline build `verify()`, cache hit', o.baseVerifyCached]]),
        ['jose `jwtVerify` (CryptoKey imported once)', o.joseJwtVerify],
        ['ACL decision: `canonicalPath()` + `authorize()`, first rule grants', o.aclDecision],
        ['ACL decision: `canonicalPath()` + `authorize()`, tenth rule grants', o.aclDecisionLastRule],
        ['minimatch, 10 patterns precompiled', o.minimatchPrecompiled],
        ['minimatch, 10 patterns compiled per request', o.minimatchPerRequest]
      ].map(([name, ops]) => `| ${name} | ${fmt(ops)} | ${fmt(1e6 / ops, 2)} |`),
      '',
      `\`verify()\` uncached / raw \`crypto.verify\`: **${x(report.micro.verifyVsRaw)}** (per round: ${report.micro.verifyVsRawRounds.map(r => r.toFixed(2)).join(', ')}); jose / raw: ${x(report.micro.joseVsRaw)}.`,
      '')
    if (report.micro.baseVerifyVsRaw !== undefined) {
      out.push(`Baseline build \`verify()\` uncached / raw: ${x(report.micro.baseVerifyVsRaw)} (per round: ${report.micro.baseVerifyVsRawRounds.map(r => r.toFixed(2)).join(', ')}). This build / baseline, uncached: ${x(report.micro.verifyVsBase)}; cache hit: ${x(report.micro.cachedVsBase)} (medians of per-round ratios).`, '')
    }
  }
  if (report.memory !== undefined) {
    const m = report.memory
    out.push('## Memory', '',
      `${fmt(m.tokens)} distinct tokens through one verifier (cache bound ${fmt(m.cacheMax)} entries), heap after a full GC:`, '',
      `- before: ${mib(m.heapBefore)}; cache full (${fmt(m.cacheMax)} tokens): ${mib(m.heapAtCacheFull)} (about ${fmt(m.perEntryBytes)} bytes per cached token); after ${fmt(m.tokens)}: ${mib(m.heapAtEnd)}`,
      `- growth after the cache filled: ${mib(m.growthAfterFull)} (allowed: ${mib(m.allowance)}): **${m.bounded ? 'bounded' : 'NOT bounded'}**`,
      `- along the way: ${m.samples.map(s => `${fmt(s.tokens / 1000)}k: ${mib(s.heapUsed)}`).join(', ')}`,
      `- ${fmt(m.verifiesPerSecond)} uncached verifies/s on the way`,
      '')
  }
  out.push('## Reproduce', '', '```sh', 'npm run bench            # from the project root: build, npm ci in bench/, run; writes bench/results.md', 'BENCH_DURATION=2 BENCH_RUNS=1 BENCH_SERVERS=fastify-bare,ours-cache node bench/run.js   # a quick look (after npm run build)', '```', '')
  return out.join('\n')
}
