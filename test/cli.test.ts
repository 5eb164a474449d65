/**
 * The command line as a user drives it: the BUILT bin (`dist/cli/index.js`, run `npm run build`
 * first) in spawned processes, real sockets, tokens checked with jose. Every child is killed and
 * every server closed in teardown.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeProtectedHeader, importPKCS8, importSPKI, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { createVerifier, type Verifier } from '../lib/index.js'
import { explain, formatExplanation } from '../lib/cli/verify.js'
import { rawRequest } from './helpers/http.js'
import { APP_ID, CLIENT_ACL, claims, keys, NOW, otherKeys, sign, signRaw, token } from './helpers/keys.js'

const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))
const REALM = 'Bearer realm="vonage-jwt-guard"'

if (!existsSync(CLI)) {
  t.fail(`${CLI} is missing: run "npm run build" (npx tsc -p tsconfig.json) before these tests`)
  process.exit(1)
}

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** Run the bin to completion (30 s at most), optionally feeding stdin. */
function run (args: string[], options: { cwd?: string, input?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
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
async function inTurns<T, R> (items: readonly T[], fn: (item: T) => Promise<R>, width = 3): Promise<R[]> {
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

interface Server {
  child: ChildProcess
  base: string
  stdout: () => string
  exited: Promise<number | null>
}

const children = new Set<ChildProcess>()

t.teardown(() => {
  for (const child of children) child.kill('SIGKILL')
})

/** Start a long-running command and wait for the line that says where it listens. */
function start (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<Server> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
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
        resolve({ child, base: match[1]!, stdout: () => out, exited })
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before listening\nstdout: ${out}\nstderr: ${err}`))
    })
  })
}

/** SIGTERM, and wait (5 s at most) for the exit code. */
async function stop (server: Server): Promise<number | null> {
  server.child.kill('SIGTERM')
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 5_000).unref())
  const code = await Promise.race([server.exited, timeout])
  if (code === 'timeout') {
    server.child.kill('SIGKILL')
    return null
  }
  return code
}

function portOf (base: string): number {
  return Number(new URL(base).port)
}

/** A token valid now (the bin runs on the real clock), signed by jose. */
function liveToken (over: Record<string, unknown> = {}, key = keys.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return sign(claims({ iat: now - 10, exp: now + 600, ...over }), { key })
}

t.test('keygen writes a PKCS#8 private key (0600) and its SPKI public key, and never overwrites without --force', async t => {
  const dir = t.testdir()
  const out = join(dir, 'keys')
  const first = await run(['keygen', '--out', out])
  t.equal(first.code, 0, first.stderr)
  const privatePem = readFileSync(join(out, 'private.key'), 'utf8')
  const publicPem = readFileSync(join(out, 'public.key'), 'utf8')
  t.match(privatePem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM')
  t.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n/, 'SPKI PEM')
  t.equal(statSync(join(out, 'private.key')).mode & 0o777, 0o600)
  const privateKey = createPrivateKey(privatePem)
  t.equal(privateKey.asymmetricKeyType, 'rsa')
  t.equal(privateKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(privateKey.asymmetricKeyDetails?.publicExponent, 65537n)
  t.equal(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }), publicPem, 'public.key is the public half of private.key')
  await importPKCS8(privatePem, 'RS256')
  await importSPKI(publicPem, 'RS256')
  t.match(first.stdout, join(out, 'private.key'))

  const again = await run(['keygen', '--out', out])
  t.equal(again.code, 1)
  t.match(again.stderr, /already exist.*--force/)
  t.equal(readFileSync(join(out, 'private.key'), 'utf8'), privatePem, 'private.key untouched')
  t.equal(readFileSync(join(out, 'public.key'), 'utf8'), publicPem, 'public.key untouched')

  writeFileSync(join(out, 'private.key'), privatePem, { mode: 0o644 })
  const forced = await run(['keygen', '--out', out, '--force'])
  t.equal(forced.code, 0, forced.stderr)
  t.not(readFileSync(join(out, 'private.key'), 'utf8'), privatePem, 'a new key with --force')
  t.equal(statSync(join(out, 'private.key')).mode & 0o777, 0o600, 'an overwritten private key is 0600 again')
})

t.test('create prints only a token that jose verifies, with the claims and lifetime asked for', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem })
  const acl = { paths: { '/*/users/**': { methods: ['GET'] }, '/*/conversations/**': {} } }
  const before = Math.floor(Date.now() / 1000)
  const result = await run(['create', '--app-id', APP_ID, '--private-key', join(dir, 'private.key'), '--sub', 'alice',
    '--acl', JSON.stringify(acl), '--ttl', '120', '--claim', 'team=blue', '--claim', 'level=3', '--claim', 'flags={"beta":true}'])
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'the token alone on stdout')
  const jwt = result.stdout.trim()
  const { payload, protectedHeader } = await jwtVerify(jwt, keys.publicKey, { algorithms: ['RS256'] })
  t.equal(protectedHeader.alg, 'RS256')
  t.equal(payload.application_id, APP_ID)
  t.equal(payload.sub, 'alice')
  t.same(payload.acl, acl)
  t.equal(payload.team, 'blue')
  t.equal(payload.level, 3)
  t.same(payload.flags, { beta: true })
  t.type(payload.jti, 'string')
  t.ok(payload.iat! >= before && payload.iat! <= before + 30, 'iat is now')
  t.equal(payload.exp! - payload.iat!, 120, 'exp = iat + ttl')

  // The PEM itself instead of a path, and an explicit exp (which wins over the ttl).
  const exp = before + 3600
  const inline = await run(['create', '--app-id', APP_ID, '--private-key', keys.privatePem, '--exp', String(exp)])
  t.equal(inline.code, 0, inline.stderr)
  const second = await jwtVerify(inline.stdout.trim(), keys.publicKey)
  t.equal(second.payload.exp, exp)
  t.equal(second.payload.acl, undefined, 'no acl unless asked')
  t.equal(decodeProtectedHeader(inline.stdout.trim()).typ, 'JWT')
})

t.test('create refuses a bad command line with exit 2 and prints no token', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem, 'public.key': keys.publicPem })
  const key = join(dir, 'private.key')
  const cases: Array<[string, string[], RegExp]> = [
    ['no --app-id', ['--private-key', key], /--app-id is required/],
    ['no --private-key', ['--app-id', APP_ID], /--private-key/],
    ['a private key file that does not exist', ['--app-id', APP_ID, '--private-key', join(dir, 'nope.key')], /cannot read .*no such file/],
    ['a public key as the private key', ['--app-id', APP_ID, '--private-key', join(dir, 'public.key')], /not a private key/],
    ['--acl not JSON', ['--app-id', APP_ID, '--private-key', key, '--acl', '{paths:'], /Expected JSON/],
    ['--acl pattern without a leading slash', ['--app-id', APP_ID, '--private-key', key, '--acl', '{"paths":{"v1/users":{}}}'], /does not start with "\/"/],
    ['--claim acl of the wrong shape', ['--app-id', APP_ID, '--private-key', key, '--claim', 'acl=[]'], /acl must be an object/],
    ['--ttl not an integer', ['--app-id', APP_ID, '--private-key', key, '--ttl', '15m'], /--ttl.*integer/],
    ['an unknown flag', ['--app-id', APP_ID, '--private-key', key, '--expires', '10'], /unknown option/]
  ]
  const results = await inTurns(cases, ([, args]) => run(['create', ...args]))
  for (const [i, [name, , message]] of cases.entries()) {
    const result = results[i]!
    t.equal(result.code, 2, `${name}: exit 2`)
    t.equal(result.stdout, '', `${name}: nothing on stdout`)
    t.match(result.stderr, message, `${name}: says why`)
  }
})

interface VerifyRow {
  name: string
  token: () => Promise<string>
  appId?: string
  requireAcl?: boolean
  method?: string
  path?: string
  /** The failing check and the verifier's code; none: every check passes. */
  fails?: { check: string, code: string }
  /** Also run it through the bin (a few rows: each spawn costs a second on a shared machine). */
  spawn?: boolean
}

function verifierFor (row: { appId?: string, requireAcl?: boolean }, now = NOW): Verifier {
  return createVerifier({ publicKey: keys.publicPem, now: () => now * 1000, cache: false, requireAcl: row.requireAcl ?? false, ...(row.appId === undefined ? {} : { applicationId: row.appId }) })
}

function cliArgs (row: VerifyRow): string[] {
  return [
    ...(row.appId === undefined ? [] : ['--app-id', row.appId]),
    ...(row.requireAcl === true ? ['--require-acl'] : []),
    ...(row.method === undefined ? [] : ['--method', row.method]),
    ...(row.path === undefined ? [] : ['--path', row.path])
  ]
}

t.test('verify runs the real verifier, names the failing check, and exits 0 only if all pass', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const publicKey = join(dir, 'public.key')
  const [h, p] = (await token()).split('.')
  const rows: VerifyRow[] = [
    { name: 'a valid token and a granted path', token: () => token(), path: '/v1/users/abc', spawn: true },
    { name: 'a valid token without --path', token: () => token() },
    { name: 'a root token (no acl) on any path', token: () => token({ acl: undefined }), method: 'DELETE', path: '/v1/calls' },
    { name: 'not a JWS', token: async () => 'not-a-token', fails: { check: 'format', code: 'VJG_TOKEN_MALFORMED' } },
    { name: 'two parts', token: async () => `${h}.${p}`, fails: { check: 'format', code: 'VJG_TOKEN_MALFORMED' } },
    { name: 'alg HS256', token: async () => signRaw({ alg: 'HS256' }, claims()), fails: { check: 'header', code: 'VJG_ALG_NOT_ALLOWED' } },
    { name: 'typ other than JWT', token: () => token({}, { header: { typ: 'at+jwt' } }), fails: { check: 'header', code: 'VJG_TOKEN_MALFORMED' } },
    { name: 'signed by another key', token: () => token({}, { key: otherKeys.privateKey }), fails: { check: 'signature', code: 'VJG_SIGNATURE_INVALID' }, spawn: true },
    { name: 'no jti', token: () => token({ jti: undefined }), fails: { check: 'claim jti', code: 'VJG_CLAIM_MISSING' } },
    { name: 'application_id not a string', token: () => token({ application_id: 42 }), fails: { check: 'claim application_id', code: 'VJG_CLAIM_INVALID' } },
    { name: 'exp before iat', token: () => token({ exp: NOW - 20 }), fails: { check: 'claim exp', code: 'VJG_CLAIM_INVALID' } },
    { name: 'expired', token: () => token({ iat: NOW - 2000, exp: NOW - 1000 }), fails: { check: 'lifetime', code: 'VJG_TOKEN_EXPIRED' }, spawn: true },
    { name: 'issued in the future', token: () => token({ iat: NOW + 600, exp: NOW + 900 }), fails: { check: 'lifetime', code: 'VJG_TOKEN_NOT_YET_VALID' } },
    { name: 'an acl of the wrong shape', token: () => token({ acl: { paths: ['/*/users/**'] } }), fails: { check: 'claim acl', code: 'VJG_CLAIM_INVALID' } },
    { name: 'another application', token: () => token(), appId: 'bbbbbbbb-0000-4000-8000-000000000000', fails: { check: 'application', code: 'VJG_APPLICATION_MISMATCH' } },
    { name: 'a path outside the acl', token: () => token(), path: '/v1/calls/abc', fails: { check: 'acl', code: 'VJG_ACL_DENIED' }, spawn: true },
    { name: 'a method the rule does not list', token: () => token({ acl: { paths: { '/*/users/**': { methods: ['GET'] } } } }), method: 'POST', path: '/v1/users', fails: { check: 'acl', code: 'VJG_ACL_DENIED' } },
    { name: 'an ambiguous path', token: () => token(), path: '/v1/users/%2e%2e/admin', fails: { check: 'path', code: 'VJG_PATH_INVALID' } },
    { name: 'a root token when an acl is required', token: () => token({ acl: undefined }), requireAcl: true, path: '/v1/users', fails: { check: 'acl', code: 'VJG_ACL_DENIED' } }
  ]
  const tokens = await Promise.all(rows.map(row => row.token()))
  for (const [i, row] of rows.entries()) {
    const report = await explain(tokens[i]!, verifierFor(row), { method: row.method ?? 'GET', path: row.path ?? null })
    t.equal(report.valid, row.fails === undefined, `${row.name}: valid`)
    const failed = report.checks.filter(c => c.status === 'fail')
    if (row.fails === undefined) {
      t.same(failed, [], `${row.name}: no failing check`)
      t.ok(report.checks.some(c => c.check === 'signature' && c.status === 'pass'), `${row.name}: signature passes`)
    } else {
      t.same(failed.map(c => [c.check, c.code]), [[row.fails.check, row.fails.code]], `${row.name}: names the ${row.fails.check} check`)
      t.match(failed[0]!.detail, /\S/, `${row.name}: says why`)
      t.match(formatExplanation(report), new RegExp(`^FAIL  ${row.fails.check} .*\\[${row.fails.code}\\]$`, 'm'), `${row.name}: the terminal form names the check`)
    }
  }

  // Through the bin: the exit code, the terminal form and --json.
  const spawned = rows.flatMap((row, i) => row.spawn === true ? [{ row, base: ['verify', tokens[i]!, '--public-key', publicKey, '--now', String(NOW), ...cliArgs(row)] }] : [])
  const results = await inTurns(spawned.flatMap(({ base }) => [base, [...base, '--json']]), args => run(args))
  for (const [i, { row }] of spawned.entries()) {
    const text = results[2 * i]!
    const json = results[2 * i + 1]!
    const exit = row.fails === undefined ? 0 : 1
    t.equal(text.code, exit, `${row.name}: bin exit code`)
    t.equal(json.code, exit, `${row.name}: bin exit code with --json`)
    const report = JSON.parse(json.stdout) as { valid: boolean, checks: Array<{ check: string, status: string, code?: string }> }
    t.equal(report.valid, row.fails === undefined, `${row.name}: --json valid`)
    if (row.fails === undefined) {
      t.match(text.stdout, 'valid: every check passed')
    } else {
      t.same(report.checks.filter(c => c.status === 'fail').map(c => [c.check, c.code]), [[row.fails.check, row.fails.code]], `${row.name}: --json names the check`)
      t.match(text.stdout, new RegExp(`^FAIL  ${row.fails.check} .*\\[${row.fails.code}\\]$`, 'm'), `${row.name}: names the check`)
      t.match(text.stdout, `invalid: the ${row.fails.check} check failed`)
    }
  }
})

t.test('verify explains the decision: the effective expiry in words, the granting pattern, why no rule granted', async t => {
  const at = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
  const explainText = async (jwt: string, request: { method?: string, path?: string } = {}, now = NOW): Promise<string> =>
    formatExplanation(await explain(jwt, verifierFor({}, now), { method: request.method ?? 'GET', path: request.path ?? null }))

  const granted = await explainText(await token(), { path: '/v1/users/abc' })
  t.match(granted, new RegExp(`^pass {2}lifetime +valid until ${at(NOW + 890)}, expires in 14 minutes 50 seconds \\(its exp\\)$`, 'm'))
  t.match(granted, /^pass {2}acl +GET \/v1\/users\/abc granted by "\/\*\/users\/\*\*"$/m)
  t.match(granted, 'valid: every check passed')

  t.match(await explainText(await token({ exp: undefined })), /expires in 14 minutes 50 seconds \(no exp: iat \+ defaultLifetime \(900 s\)\)/)
  t.match(await explainText(await token({ exp: NOW + 200_000 })), `valid until ${at(NOW - 10 + 86_400)}, expires in 23 hours 59 minutes (capped at iat + maxLifetime (86400 s)`)

  const expired = await explainText(await token(), {}, NOW + 3600)
  t.match(expired, new RegExp(`^FAIL {2}lifetime +The token expired at ${at(NOW + 890).replace('Z', '.000Z')} \\(effective expiry 45 minutes 10 seconds ago\\) \\[VJG_TOKEN_EXPIRED\\]$`, 'm'))

  const denied = await explainText(await token({ acl: { paths: { '/*/users/**': { methods: ['GET'] }, '/*/conversations/*': {} } } }), { method: 'post', path: '/v1/users/abc' })
  t.match(denied, /POST \/v1\/users\/abc is not granted by the token acl \[VJG_ACL_DENIED\]/)
  t.match(denied, /- "\/\*\/users\/\*\*" matches, but its methods \[GET\] do not include POST/)
  t.match(denied, /- "\/\*\/conversations\/\*" does not match \/v1\/users\/abc/)

  t.match(await explainText(await token({ acl: undefined }), { path: '/v1/calls' }), /GET \/v1\/calls: no acl claim, a root token is granted everywhere/)

  const badSignature = await explain(await token({}, { key: otherKeys.privateKey }), verifierFor({}), { method: 'GET', path: null })
  t.same(badSignature.checks.slice(0, 4).map(c => [c.check, c.status]), [['format', 'pass'], ['header', 'pass'], ['signature', 'fail'], ['claim application_id', 'skip']],
    'checks the verifier did not reach are not reported as passed')
  const noJti = await explain(await token({ jti: undefined }), verifierFor({}), { method: 'GET', path: null })
  t.same(noJti.checks.filter(c => c.check.startsWith('claim')).map(c => [c.check, c.status]),
    [['claim application_id', 'skip'], ['claim iat', 'skip'], ['claim jti', 'fail'], ['claim exp', 'skip'], ['claim acl', 'skip']],
    'a missing required claim stops the verifier before any claim type is checked')
})

t.test('verify reads the token from stdin with -, and refuses a bad command line with exit 2', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const publicKey = join(dir, 'public.key')
  // --app-id repeats (it is not variadic, so it cannot swallow the token argument after it).
  const fromStdin = await run(['verify', '--app-id', 'another-app', '--app-id', APP_ID, '-', '--public-key', publicKey, '--now', String(NOW)], { input: `${await token()}\n` })
  t.equal(fromStdin.code, 0, fromStdin.stdout + fromStdin.stderr)
  t.match(fromStdin.stdout, /^pass {2}application +application_id is one of another-app, aaaaaaaa/m)

  const jwt = await token()
  const cases: Array<[string, string[], RegExp]> = [
    ['no --public-key', ['verify', jwt], /--public-key/],
    ['no token', ['verify', '--public-key', publicKey], /missing required argument 'token'/],
    ['--method without --path', ['verify', jwt, '--public-key', publicKey, '--method', 'POST'], /--method needs --path/],
    ['a 1024-bit key', ['verify', jwt, '--public-key', makeSmallKey()], /at least 2048 bits/],
    ['--now not a time', ['verify', jwt, '--public-key', publicKey, '--now', 'yesterday'], /--now/],
    ['an unknown command', ['verfy', jwt], /unknown command/]
  ]
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
  }
  const help = await run(['verify', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Exit codes: 0 every check passed, 1 a check failed, 2 usage error/)
})

function makeSmallKey (): string {
  return generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
}

/** Run a printed curl line the way a user does: pasted into a shell. Falls back to node's http client without curl. */
async function runCurlLine (line: string): Promise<{ status: number, body: string }> {
  const hasCurl = await new Promise<boolean>((resolve) => execFile('curl', ['--version'], (error) => resolve(error === null)))
  if (hasCurl) {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
      execFile('sh', ['-c', line], { timeout: 10_000 }, (error, stdout) => error === null ? resolve({ stdout }) : reject(error))
    })
    const split = stdout.indexOf('\r\n\r\n')
    return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(stdout)?.[1]), body: stdout.slice(split + 4) }
  }
  const match = /^curl -i -H '([^']+)' (\S+)$/.exec(line)
  if (match === null) throw new Error(`cannot read the curl line: ${line}`)
  const [name, value] = match[1]!.split(': ')
  return new Promise((resolve, reject) => {
    const req = httpRequest(match[2]!, { headers: { [name!]: value }, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('serve: the printed curl line answers 200; no token is 401; dev keys are made once and reused', async t => {
  const cwd = t.testdir()
  const server = await start(['serve', '--port', '0', '--log-level', 'warn'], { cwd })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const out = server.stdout()
  t.match(out, /dev keys created in .*\.vonage-jwt-guard/)
  t.match(out, /\(Ctrl-C to stop\)/)
  const line = out.split('\n').find(l => l.startsWith('curl '))
  if (line === undefined) throw new Error(`no curl line in:\n${out}`)

  const answer = await runCurlLine(line)
  t.equal(answer.status, 200, 'the printed curl line works')
  const echo = JSON.parse(answer.body) as { method: string, path: string, grantedBy: string, claims: Record<string, unknown> }
  t.equal(echo.method, 'GET')
  t.equal(echo.path, '/v1/users')
  t.equal(echo.grantedBy, '/*/users/**')
  t.equal(echo.claims.sub, 'alice')
  t.same(echo.claims.acl, CLIENT_ACL, 'the standard Client SDK ACL')

  const sample = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(line)![1]!
  const publicPem = readFileSync(join(cwd, '.vonage-jwt-guard', 'public.key'), 'utf8')
  const verified = await jwtVerify(sample, await importSPKI(publicPem, 'RS256'))
  t.equal(verified.payload.sub, 'alice', 'the sample token verifies with jose against the dev public key')
  t.equal(statSync(join(cwd, '.vonage-jwt-guard', 'private.key')).mode & 0o777, 0o600)

  const port = portOf(server.base)
  const echoed = await rawRequest(port, '/v1/conversations/CON-1/events?page=2', { authorization: `Bearer ${sample}` }, 'POST')
  t.equal(echoed.status, 200)
  t.same(JSON.parse(echoed.body).path, '/v1/conversations/CON-1/events', 'the canonical path, query dropped')
  t.same(JSON.parse(echoed.body).method, 'POST', 'any method')

  const refusals: Array<[string, Record<string, string>, number, string, string]> = [
    ['/v1/users', {}, 401, 'VJG_TOKEN_MISSING', REALM],
    ['/v1/calls', { authorization: `Bearer ${sample}` }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['/v1/users/%2e%2e/calls', { authorization: `Bearer ${sample}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`]
  ]
  for (const [target, headers, status, code, challenge] of refusals) {
    const res = await rawRequest(port, target, headers)
    t.equal(res.status, status, `${target}: status`)
    t.equal(JSON.parse(res.body).code, code, `${target}: code`)
    t.match(res.headers['www-authenticate'], challenge, `${target}: challenge`)
  }

  t.equal(await stop(server), 0, 'SIGTERM closes the server and exits 0')

  // A second run reuses the keys: the first run's token still works against it, even with the
  // public half lost.
  rmSync(join(cwd, '.vonage-jwt-guard', 'public.key'))
  const again = await start(['serve', '--port', '0', '--log-level', 'warn'], { cwd })
  t.teardown(() => { again.child.kill('SIGKILL') })
  t.match(again.stdout(), /dev keys reused in/)
  t.equal(readFileSync(join(cwd, '.vonage-jwt-guard', 'public.key'), 'utf8'), publicPem)
  const old = await rawRequest(portOf(again.base), '/v1/users', { authorization: `Bearer ${sample}` })
  t.equal(old.status, 200, 'a token minted by the first run verifies on the second')
  t.equal(await stop(again), 0)
})

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('serve honours PORT and --public-key (then no token is minted)', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const port = await freePort()
  const server = await start(['serve', '--public-key', join(dir, 'public.key'), '--log-level', 'warn'], { cwd: dir, env: { PORT: String(port) } })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal(portOf(server.base), port, 'PORT is honoured')
  t.notMatch(server.stdout(), /^curl /m, 'no sample token without the private key')
  t.notOk(existsSync(join(dir, '.vonage-jwt-guard')), 'no dev keys made')
  const ok = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken()}` })
  t.equal(ok.status, 200)
  const taken = await run(['serve', '--public-key', join(dir, 'public.key'), '--port', String(port), '--log-level', 'silent'], { cwd: dir })
  t.equal(taken.code, 1, 'a port in use: the command failed, exit 1')
  t.match(taken.stderr, /cannot listen on 127\.0\.0\.1:\d+ .*EADDRINUSE/)
  const other = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken({}, otherKeys.privateKey)}` })
  t.equal(other.status, 401)
  t.equal(JSON.parse(other.body).code, 'VJG_SIGNATURE_INVALID')
  t.equal(await stop(server), 0)

  const bad = await run(['serve', '--port', 'eighty'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--port/)
})

interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/** A real upstream that records the raw request target and headers it receives. */
async function upstream (t: Test): Promise<{ port: number, seen: Seen[] }> {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ upstream: true }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, seen }
}

t.test('proxy forwards a granted request byte for byte with the verified identity, and never a refused one', async t => {
  const up = await upstream(t)
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', join(dir, 'public.key'), '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken({ sub: 'alice' })

  const target = "/v1/users/abc%20d/x:y@z?b=2&a=1&a=%2F&empty&sp=%20+&q=a%3Db&raw=~!$'()*,;:@/?"
  const granted = await rawRequest(port, target, {
    authorization: `Bearer ${jwt}`,
    'x-original-url': '/admin',
    'x-rewrite-url': '/admin',
    'x-forwarded-prefix': '/admin',
    'x-http-method-override': 'DELETE',
    'x-vonage-application-id': 'forged-app',
    'X-Vonage-Sub': 'mallory'
  })
  t.equal(granted.status, 200, granted.body)
  t.same(JSON.parse(granted.body), { upstream: true })
  t.equal(up.seen.length, 1)
  const seen = up.seen[0]!
  t.equal(seen.url, target, 'path and query forwarded byte for byte')
  t.equal(seen.method, 'GET')
  for (const name of ['x-original-url', 'x-rewrite-url', 'x-forwarded-prefix', 'x-http-method-override']) {
    t.equal(seen.headers[name], undefined, `${name} stripped`)
  }
  t.equal(seen.headers['x-vonage-application-id'], APP_ID, 'application id from the verified claims')
  t.equal(seen.headers['x-vonage-sub'], 'alice', 'sub from the verified claims, not the client\'s copy')

  const posted = await new Promise<{ status: number }>((resolve, reject) => {
    const req = httpRequest(`${proxy.base}/v1/conversations/CON-1/events`, { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode! }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ type: 'text' }))
  })
  t.equal(posted.status, 200)
  t.equal(up.seen.length, 2)
  t.equal(up.seen[1]!.method, 'POST')
  t.equal(up.seen[1]!.body, '{"type":"text"}', 'the body goes up unchanged')

  const rootToken = await liveToken({ acl: undefined, sub: undefined })
  const root = await rawRequest(port, '/anything', { authorization: `Bearer ${rootToken}`, 'x-vonage-sub': 'mallory' })
  t.equal(root.status, 200)
  t.equal(up.seen[2]!.headers['x-vonage-sub'], undefined, 'no sub claim: the client\'s X-Vonage-Sub is removed, none is set')

  const forwarded = up.seen.length
  const refusals: Array<[string, string, Record<string, string | string[]>, number, string, string]> = [
    ['no token', '/v1/users', {}, 401, 'VJG_TOKEN_MISSING', REALM],
    ['another key', '/v1/users', { authorization: `Bearer ${await liveToken({}, otherKeys.privateKey)}` }, 401, 'VJG_SIGNATURE_INVALID', `${REALM}, error="invalid_token"`],
    ['expired', '/v1/users', { authorization: `Bearer ${await liveToken({ iat: Math.floor(Date.now() / 1000) - 4000, exp: Math.floor(Date.now() / 1000) - 3000 })}` }, 401, 'VJG_TOKEN_EXPIRED', `${REALM}, error="invalid_token"`],
    ['a sub with a line break', '/v1/users', { authorization: `Bearer ${await liveToken({ sub: 'alice\r\nx-admin: 1' })}` }, 401, 'VJG_CLAIM_INVALID', `${REALM}, error="invalid_token"`],
    ['an application_id with a control character', '/v1/users', { authorization: `Bearer ${await liveToken({ application_id: 'app\u0000' })}` }, 401, 'VJG_CLAIM_INVALID', `${REALM}, error="invalid_token"`],
    ['outside the acl', '/v1/calls/abc', { authorization: `Bearer ${jwt}` }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['an encoded dot segment', '/v1/users/%2e%2e/calls', { authorization: `Bearer ${jwt}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`],
    ['an encoded slash', '/v1/users%2f..%2fcalls', { authorization: `Bearer ${jwt}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`],
    ['two tokens', '/v1/users', { authorization: [`Bearer ${jwt}`, `Bearer ${jwt}`] }, 400, 'VJG_TOKEN_AMBIGUOUS', `${REALM}, error="invalid_request"`]
  ]
  for (const [name, path, headers, status, code, challenge] of refusals) {
    const res = await rawRequest(port, path, headers)
    t.equal(res.status, status, `${name}: status`)
    t.equal(JSON.parse(res.body).code, code, `${name}: code`)
    t.match(res.headers['www-authenticate'], challenge, `${name}: challenge`)
  }
  const badEscape = await rawRequest(port, '/v1/users/%zz', { authorization: `Bearer ${jwt}` })
  t.equal(badEscape.status, 400, 'a malformed escape: Fastify answers before the guard')
  t.equal(JSON.parse(badEscape.body).code, 'FST_ERR_BAD_URL')
  t.equal(up.seen.length, forwarded, 'no refused request reached the upstream')
  t.equal(await stop(proxy), 0)
})

t.test('proxy with an upstream path and --acl-path: the ACL sees the Vonage path, the upstream the whole one', async t => {
  const up = await upstream(t)
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}/base`, '--port', '0', '--public-key', keys.publicPem, '--acl-path', '/api', '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken()
  const ok = await rawRequest(port, '/api/v1/users/abc?x=%41', { authorization: `Bearer ${jwt}` })
  t.equal(ok.status, 200, ok.body)
  t.equal(up.seen[0]?.url, '/base/api/v1/users/abc?x=%41')
  const outside = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(outside.status, 403, 'a path outside the --acl-path prefix is granted by no rule')
  t.equal(JSON.parse(outside.body).code, 'VJG_ACL_DENIED')
  t.equal(up.seen.length, 1)
  t.equal(await stop(proxy), 0)
})

t.test('proxy --jwks-url verifies with the keys of a remote key set, chosen by kid', async t => {
  const up = await upstream(t)
  const jwk = { ...keys.publicKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'RS256', use: 'sig' }
  let fetches = 0
  const jwks = createServer((_req, res) => {
    fetches++
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    jwks.closeAllConnections()
    jwks.close(() => resolve())
  }))
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--jwks-url', jwksUrl, '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const now = Math.floor(Date.now() / 1000)
  const signed = await sign(claims({ iat: now - 10, exp: now + 600 }), { header: { kid: 'key-1' } })
  const ok = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${signed}` })
  t.equal(ok.status, 200, ok.body)
  t.equal(up.seen.length, 1)
  t.ok(fetches >= 1, 'the key set was fetched')
  const forged = await sign(claims({ iat: now - 10, exp: now + 600 }), { key: otherKeys.privateKey, header: { kid: 'key-1' } })
  const refused = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${forged}` })
  t.equal(refused.status, 401)
  t.equal(JSON.parse(refused.body).code, 'VJG_SIGNATURE_INVALID')
  t.equal(up.seen.length, 1, 'the forged token was not forwarded')
  t.equal(await stop(proxy), 0)
})

t.test('proxy refuses a bad command line with exit 2', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no --upstream', ['proxy', '--public-key', keys.publicPem], /--upstream/],
    ['no key', ['proxy', '--upstream', 'http://127.0.0.1:1'], /exactly one of --public-key and --jwks-url/],
    ['a JWKS over plain http off localhost', ['proxy', '--upstream', 'http://127.0.0.1:1', '--jwks-url', 'http://keys.example.com/jwks.json'], /option "jwksUrl" must be https/],
    ['an upstream that is not a URL', ['proxy', '--upstream', 'localhost:8080', '--public-key', keys.publicPem], /--upstream/],
    ['an upstream with a query', ['proxy', '--upstream', 'http://127.0.0.1:1/?a=1', '--public-key', keys.publicPem], /no query/],
    ['a bad --acl-path', ['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', keys.publicPem, '--acl-path', 'api/'], /option "aclPath"/]
  ]
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
  }
})
