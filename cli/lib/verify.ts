/**
 * `verify`: explain a token. The verdict is the real verifier's (`createVerifier`,
 * `canonicalPath`, `authorize`): the code of the GuardError it throws says which check failed.
 * The token parts are decoded here only to show what each check looked at.
 */
import { readFileSync } from 'node:fs'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { canonicalPath, checkOrder, createVerifier, effectiveExpiry, explainAcl, GuardError, readNumericDate, type ErrorCode, type Verifier, type VerifiedToken } from 'vonage-jwt-guard'
import { addGuardFlags, resolveGuard, type GuardFlags } from './guard-options.js'
import { aclDocumentCoverage, coverageJson, formatCoverage, tokenCoverage, type DocumentCoverage } from './coverage.js'
import { loadDocuments, openApiFlags, type OpenApiSource } from './openapi.js'
import { EXIT, UsageError } from './shared.js'
import { escapeJson, escapeTerminal as safe } from './terminal.js'

type CheckStatus = 'pass' | 'fail' | 'skip'

interface CheckResult {
  /** `format`, `header`, `signature`, `claim <name>`, `application`, `lifetime`, `path`, `acl`, `sub`. */
  check: string
  status: CheckStatus
  detail: string
  /** The verifier's error code, on the failing check. */
  code?: ErrorCode
}

interface Explanation {
  valid: boolean
  checks: CheckResult[]
  header: Record<string, unknown> | null
  claims: Record<string, unknown> | null
  /** The effective expiry (NumericDate seconds) when the token verified, or the one it expired at. */
  expiresAt: number | null
  grantedBy: string | null
}

interface ExplainRequest {
  method: string
  /** The request target; null: the ACL is not checked. */
  path: string | null
  /** The `sub` the token must carry (`vonage jwt validate --sub`); undefined: not checked. */
  sub?: string
}

/** The order in which the verifier runs its stages; a failure in one means the later ones did not run. */
const STAGES = ['format', 'header', 'signature', 'claims', 'path', 'acl'] as const
type Stage = typeof STAGES[number]

/** A JSON object part of the token, for display only; null when it does not decode. */
function decodePart (part: string | undefined): Record<string, unknown> | null {
  if (part === undefined) return null
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : null
  } catch {
    return null
  }
}

const UNITS: Array<[string, number]> = [['day', 86_400], ['hour', 3_600], ['minute', 60], ['second', 1]]

/** 3725 -> "1 hour 2 minutes" (the two largest units; seconds only under an hour). */
function durationInWords (seconds: number): string {
  let rest = Math.round(Math.abs(seconds))
  if (rest === 0) return '0 seconds'
  const parts: string[] = []
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size)
    rest -= n * size
    if (n > 0) parts.push(`${n} ${unit}${n === 1 ? '' : 's'}`)
    if (parts.length === 2) break
  }
  return parts.join(' ')
}

function relative (at: number, now: number): string {
  const words = durationInWords(at - now)
  return at >= now ? `in ${words}` : `${words} ago`
}

function instant (seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
}

/** The rank of the verifier's own step for a claim row (`claim <name>`): that claim's step, or, for a claim without one (a profile's), its presence. */
function claimRank (name: string): number {
  const own = checkOrder('claim', name)
  return own === checkOrder('claim') ? checkOrder('required') : own
}

/** Where a row sits in the verifier's order: the stage, and within the claims the verifier's own (`checkOrder`). */
function rank (stage: Stage, check: string): number {
  const base = STAGES.indexOf(stage) * 100
  if (stage !== 'claims') return base
  return base + (check.startsWith('claim ') ? claimRank(check.slice(6)) : checkOrder(check === 'application' ? 'application' : 'lifetime'))
}

/** Where a refusal sits in the verifier's order, read from its fields. */
function failureRank (stage: Stage, error: GuardError): number {
  return STAGES.indexOf(stage) * 100 + (stage === 'claims' ? checkOrder(error.check, error.claim) : 0)
}

/** The effective expiry in words, for a token the verifier refused on its lifetime (display only). */
function displayExpiry (claims: Record<string, unknown>, verifier: Verifier, now: number): string {
  const expiry = effectiveExpiry(claims, verifier.rules)
  if (expiry === undefined) return ''
  const iat = readNumericDate(claims.iat, verifier.rules.allowNumericStringDates)
  return iat === undefined ? ` (exp ${relative(expiry, now)})` : ` (effective expiry ${relative(expiry, now)})`
}

/** Which row a verifier error belongs to, from its `check` and `claim` fields. */
function failedCheck (error: GuardError): { stage: Stage, check: string } {
  switch (error.check) {
    case 'format':
    case 'header':
    case 'path':
    case 'acl':
      return { stage: error.check, check: error.check }
    case 'key':
    case 'signature':
      return { stage: 'signature', check: 'signature' }
    case 'application':
    case 'lifetime':
      return { stage: 'claims', check: error.check }
    case 'required':
    case 'claim':
      return { stage: 'claims', check: error.claim === undefined ? 'claims' : `claim ${error.claim}` }
    default:
      return { stage: 'claims', check: 'claims' }
  }
}

function showValue (value: unknown): string {
  const text = safe(JSON.stringify(value) ?? String(value))
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

const TIME_CLAIMS = new Set(['iat', 'exp', 'nbf'])

function claimDetail (name: string, value: unknown, now: number, verifier: Verifier): string {
  const date = TIME_CLAIMS.has(name) ? readNumericDate(value, verifier.rules.allowNumericStringDates) : undefined
  if (date !== undefined) {
    const when = Number.isSafeInteger(date) && date < 8.64e12 ? `${instant(date)}, ${relative(date, now)}` : 'out of range'
    return `${typeof value === 'string' ? `"${value}", read as ` : ''}${date} (${when})`
  }
  if (name === 'acl' && typeof value === 'object' && value !== null) {
    const paths = (value as { paths?: unknown }).paths
    const count = typeof paths === 'object' && paths !== null ? Object.keys(paths).length : 0
    return `${count} pattern${count === 1 ? '' : 's'}`
  }
  return showValue(value)
}

/** The claim rows: the required ones, then every known claim the token carries. */
function claimNames (claims: Record<string, unknown> | null, verifier: Verifier): string[] {
  const names = [...verifier.rules.requiredClaims]
  for (const name of ['exp', 'nbf', 'sub', 'acl']) {
    if (claims !== null && Object.hasOwn(claims, name) && !names.includes(name)) names.push(name)
  }
  return names
}

/** How the effective expiry came about, in words. */
function lifetimeDetail (verified: VerifiedToken, verifier: Verifier, now: number): string {
  const { claims, expiresAt } = verified
  const { defaultLifetime, maxLifetime, maxAge } = verifier.rules
  let source: string
  if (typeof claims.exp === 'number' && claims.exp === expiresAt) source = 'its exp'
  else if (maxAge !== null && typeof claims.iat === 'number' && claims.iat + maxAge === expiresAt) source = `iat + maxAge (${maxAge} s)`
  else if (claims.exp === undefined) source = `no exp: iat + defaultLifetime (${defaultLifetime} s)`
  else source = `capped at iat + maxLifetime (${maxLifetime} s), earlier than its exp`
  return `valid until ${instant(expiresAt)}, expires ${relative(expiresAt, now)} (${source})`
}

/** Why no ACL rule granted `method path`: one reason per rule, from the library's own verdicts (`explainAcl`). */
function denialReasons (acl: unknown, method: string, path: string, hasFilter: boolean): string[] {
  let verdicts
  try {
    verdicts = explainAcl(acl, method, path)
  } catch {
    return []
  }
  if (verdicts.length === 0) return ['the acl has no patterns']
  return verdicts.map((rule) => {
    const pattern = safe(rule.pattern)
    if (!rule.matches) return `"${pattern}" does not match ${safe(path)}`
    if (!rule.methodAllowed) {
      return `"${pattern}" matches, but its methods [${safe((rule.methods ?? []).join(', '))}] do not include ${safe(method.toUpperCase())}`
    }
    if (rule.hasFilters) {
      return hasFilter ? `"${pattern}" matches, but aclFilter refused its filters` : `"${pattern}" matches, but it has filters and no aclFilter decides them`
    }
    return `"${pattern}" does not grant`
  })
}

/** Run the real verifier over one token and report every check. Never throws for a bad token. */
export async function explain (token: string, verifier: Verifier, request: ExplainRequest): Promise<Explanation> {
  const now = verifier.rules.now() / 1000
  const parts = token.split('.')
  const header = parts.length === 3 ? decodePart(parts[0]) : null
  const claims = parts.length === 3 ? decodePart(parts[1]) : null
  const checks: CheckResult[] = []
  let failure: { stage: Stage, check: string, error: GuardError } | null = null
  let verified: VerifiedToken | null = null
  let grantedBy: string | null = null
  let path: string | null = null

  try {
    verified = await verifier.verify(token)
    if (request.path !== null) {
      path = canonicalPath(request.path)
      grantedBy = verifier.authorize(verified, request.method, path).grantedBy
    }
  } catch (error) {
    if (!(error instanceof GuardError)) throw error
    const at = failedCheck(error)
    failure = { stage: at.stage, check: safe(at.check), error }
  }

  const failedAt = failure === null ? Infinity : failureRank(failure.stage, failure.error)
  const failedStage = failure === null ? STAGES.length : STAGES.indexOf(failure.stage)
  /** A check's row: pass when the verifier went past it, the failure on its own row, skip when the verifier stopped before it. */
  const row = (stage: Stage, check: string, passDetail: string): void => {
    if (failure !== null && failure.check === check) {
      let detail = safe(failure.error.message)
      if (check === 'lifetime' && claims !== null) detail += displayExpiry(claims, verifier, now)
      checks.push({ check, status: 'fail', detail, code: failure.error.code })
    } else if (rank(stage, check) < failedAt) {
      checks.push({ check, status: 'pass', detail: passDetail })
    } else {
      checks.push({ check, status: 'skip', detail: `not reached: the verifier stopped at the ${failure?.check ?? ''} check` })
    }
  }

  row('format', 'format', `compact JWS, three base64url parts, ${token.length} characters`)
  const field = (name: string): string => header?.[name] === undefined ? '' : `, ${name} ${typeof header[name] === 'string' ? safe(header[name]) : showValue(header[name])}`
  const alg = header === null ? '' : `${field('alg').slice(2)}${field('typ')}${field('kid')}`
  row('header', 'header', `${alg} (accepted: ${[...verifier.rules.algorithms].join(', ')})`)
  row('signature', 'signature', 'verified with the configured public key')
  for (const name of claimNames(claims, verifier)) {
    const present = claims !== null && Object.hasOwn(claims, name)
    row('claims', `claim ${safe(name)}`, present ? claimDetail(name, claims[name], now, verifier) : 'absent')
  }
  if (verifier.rules.applicationIds !== null) {
    row('claims', 'application', `application_id is one of ${safe([...verifier.rules.applicationIds].join(', '))}`)
  }
  row('claims', 'lifetime', verified === null ? '' : lifetimeDetail(verified, verifier, now))
  // Another claim rule (a profile's) failed: show it on its own row.
  if (failure !== null && failure.stage === 'claims' && !checks.some(c => c.check === failure!.check)) {
    checks.push({ check: failure.check, status: 'fail', detail: safe(failure.error.message), code: failure.error.code })
  }

  if (request.path === null) {
    const rootToken = claims !== null && claims.acl === undefined
    const detail = rootToken
      ? 'no acl claim: a root token, granted on every path (give --path to check one request)'
      : 'not checked: give --path (and --method) to check a request'
    checks.push({ check: 'acl', status: 'skip', detail: failedStage < STAGES.indexOf('path') ? `not reached: the verifier stopped at the ${failure?.check ?? ''} check` : detail })
  } else {
    const target = safe(`${request.method.toUpperCase()} ${request.path}`)
    row('path', 'path', path === request.path ? `${safe(request.path)} is canonical` : `${safe(request.path)} is read as ${safe(String(path))}`)
    if (failure?.check === 'acl' && claims !== null && path !== null) {
      const reasons = denialReasons(claims.acl, request.method, path, verifier.rules.hasAclFilter)
      checks.push({ check: 'acl', status: 'fail', detail: [safe(failure.error.message), ...reasons.map(r => `  - ${r}`)].join('\n'), code: failure.error.code })
    } else {
      row('acl', 'acl', grantedBy === null ? `${target}: no acl claim, a root token is granted everywhere` : `${target} granted by "${safe(grantedBy)}"`)
    }
  }

  // --sub: a check of the command line's own, on a token the verifier accepted (its claims are
  // trusted only then), as `vonage jwt validate --sub` does.
  let subMatches = true
  if (request.sub !== undefined) {
    if (verified === null) {
      checks.push({ check: 'sub', status: 'skip', detail: `not reached: the verifier stopped at the ${failure?.check ?? ''} check` })
    } else {
      const sub = verified.claims.sub
      subMatches = sub === request.sub
      const given = sub === undefined ? 'the token has no sub claim' : `the token's sub is ${showValue(sub)}`
      checks.push(subMatches
        ? { check: 'sub', status: 'pass', detail: `${showValue(sub)}, as expected` }
        : { check: 'sub', status: 'fail', detail: `${given}, not ${showValue(request.sub)}` })
    }
  }

  return {
    valid: failure === null && subMatches,
    checks,
    header,
    claims,
    // An expired token: the expiry it was refused at (exp, or the capped one), as the lifetime row says.
    expiresAt: verified?.expiresAt ?? (failure?.error.code === 'VJG_TOKEN_EXPIRED' && claims !== null ? effectiveExpiry(claims, verifier.rules) ?? null : null),
    grantedBy
  }
}

const MARK: Record<CheckStatus, string> = { pass: 'pass', fail: 'FAIL', skip: 'skip' }

/** The terminal form: one line per check, the failing one with the verifier's reason. */
export function formatExplanation (explanation: Explanation): string {
  const width = Math.max(...explanation.checks.map(c => c.check.length))
  const lines = explanation.checks.map((c) => {
    const [first, ...more] = c.detail.split('\n')
    const code = c.code === undefined ? '' : ` [${c.code}]`
    // Each line escaped again: whatever a detail holds, no control character reaches the terminal.
    return [`${MARK[c.status]}  ${safe(c.check).padEnd(width)}  ${safe(first ?? '')}${code}`, ...more.map(m => `${' '.repeat(width + 8)}${safe(m)}`)].join('\n')
  })
  const failed = explanation.checks.find(c => c.status === 'fail')
  lines.push('')
  lines.push(failed === undefined ? 'valid: every check passed' : `invalid: the ${safe(failed.check)} check failed`)
  return `${lines.join('\n')}\n`
}

/** `--now`: unix seconds or an ISO 8601 date. */
function nowFlag (value: string): number {
  const ms = /^[0-9]+$/.test(value) ? Number(value) * 1000 : Date.parse(value)
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError('Expected unix seconds or an ISO 8601 date.')
  return ms
}

interface VerifyFlags extends GuardFlags {
  method?: string
  path?: string
  now?: number
  sub?: string
  json: boolean
  acl?: unknown
}

/** `--acl`: the value of an acl claim, as JSON. */
function aclFlag (value: string): unknown {
  try {
    return JSON.parse(value) as unknown
  } catch {
    throw new InvalidArgumentError('Expected an acl claim as JSON, e.g. \'{"paths":{"/*/users/**":{}}}\'.')
  }
}

function readToken (argument: string): string {
  const text = argument === '-' ? readFileSync(0, 'utf8') : argument
  // A pasted "Bearer <jwt>" or a trailing newline is the token all the same.
  const token = text.trim().replace(/^bearer\s+/i, '')
  if (token.length === 0) throw new UsageError('the token is empty')
  return token
}

/** The guard's own verifier on the flags' options: no cache, no replay or revocation, the clock at --now when given. */
async function verifierOf (flags: VerifyFlags): Promise<Verifier> {
  const { options } = await resolveGuard(flags, { state: false })
  options.cache = false
  if (flags.now !== undefined) {
    const at = flags.now
    options.now = () => at
  }
  return createVerifier(options)
}

/** An explanation as verify prints it: text, or JSON with --json. */
function printExplanation (explanation: Explanation, flags: VerifyFlags): void {
  process.stdout.write(flags.json ? `${escapeJson(JSON.stringify(explanation, null, 2))}\n` : formatExplanation(explanation))
}

/** `verify --openapi`: the coverage table (or JSON) of a token, or of an `--acl`. */
async function verifyCoverage (argument: string | undefined, flags: VerifyFlags, sources: OpenApiSource[]): Promise<void> {
  if (flags.path !== undefined) throw new UsageError('--openapi lists every operation: give it without --path')
  if (flags.sub !== undefined) throw new UsageError('--openapi lists what is granted: give --sub without it')
  if (flags.acl !== undefined && argument !== undefined) throw new UsageError('give a token or --acl, not both')
  if (flags.acl === undefined && argument === undefined) throw new UsageError('give a token (or - for stdin), or --acl with the acl claim to measure')
  const documents = await loadDocuments(sources)
  let coverage: DocumentCoverage[]
  if (flags.acl !== undefined) {
    try {
      coverage = aclDocumentCoverage(documents, flags.acl, flags.requireAcl === true)
    } catch (error) {
      if (error instanceof GuardError) throw new UsageError(`--acl: ${error.message}`)
      throw error
    }
  } else {
    const token = readToken(argument!)
    const verifier = await verifierOf(flags)
    let verified: VerifiedToken
    try {
      verified = await verifier.verify(token)
    } catch (error) {
      if (!(error instanceof GuardError)) throw error
      // A token the guard refuses grants nothing: say why, as verify does.
      printExplanation(await explain(token, verifier, { method: 'GET', path: null }), flags)
      process.exitCode = EXIT.FAILED
      return
    }
    coverage = tokenCoverage(documents, verifier, verified)
  }
  process.stdout.write(flags.json ? `${escapeJson(JSON.stringify(coverageJson(coverage), null, 2))}\n` : formatCoverage(coverage))
  process.exitCode = EXIT.OK
}

export function registerVerify (program: Command): void {
  const openapi = openApiFlags()
  const command = program
    .command('verify')
    .description('verify a token with the guard\'s own verifier and print every check (exit 0 only if all pass)')
    .argument('[token]', 'the JWT, or - to read it from stdin (not with --acl)')
    .option('--method <method>', 'the request method for the ACL check (with --path)', 'GET')
    .option('--path <path>', 'check the ACL for this request path (as the request target, e.g. /v1/users/abc)')
    .option('--sub <user>', 'the sub claim the token must carry')
    .option('--now <time>', 'verify as of this time: unix seconds or an ISO date (default: the clock)', nowFlag)
    .addOption(new Option('--json', 'print the result as JSON for scripts').default(false))
    .option('--openapi <file|url>', 'list what the token grants of every operation of this OpenAPI 3.0/3.1 document (repeat for several)', openapi.openapi)
    .option('--base-path <path>', 'with --openapi: the document before it is served here, not at its servers[0].url path', openapi.basePath)
    .option('--acl <json>', 'with --openapi: measure this acl claim instead of a token (no key needed)', aclFlag)
  addGuardFlags(command, { state: false })
  command
    .addHelpText('after', `
With --openapi, verify lists every operation of the documents and whether the token (or --acl)
grants it, and the pattern that does; exit 0 once the token verifies.

The replay and revocation options of a --config file are left out: verify checks a token, not a
request, and consumes no jti.

Exit codes: 0 every check passed, 1 a check failed, 2 usage error.`)
    .action(async (argument: string | undefined, flags: VerifyFlags, command: Command) => {
      if (openapi.sources.length > 0) {
        await verifyCoverage(argument, flags, openapi.sources)
        return
      }
      if (flags.acl !== undefined) throw new UsageError('--acl measures an acl against --openapi documents: give --openapi')
      if (argument === undefined) throw new UsageError('missing required argument \'token\' (the JWT, or - to read it from stdin)')
      const token = readToken(argument)
      const methodGiven = command.getOptionValueSource('method') === 'cli'
      if (methodGiven && flags.path === undefined) throw new UsageError('--method needs --path')
      const verifier = await verifierOf(flags)
      const explanation = await explain(token, verifier, { method: flags.method ?? 'GET', path: flags.path ?? null, ...(flags.sub === undefined ? {} : { sub: flags.sub }) })
      printExplanation(explanation, flags)
      process.exitCode = explanation.valid ? EXIT.OK : EXIT.FAILED
    })
}
