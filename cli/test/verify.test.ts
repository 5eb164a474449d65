/**
 * verify: the real verifier over a token, every check named, exit 0 only if all pass; in process
 * through explain() and through the bin.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { createVerifier, GuardError, type Verifier } from 'vonage-jwt-guard'
import { explain, formatExplanation } from '../lib/verify.js'
import { APP_ID, claims, keys, NOW, otherKeys, signRaw, token } from '../../test/helpers/keys.js'
import { inTurns, run } from './helpers/bin.js'


function makeSmallKey (): string {
  return generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
}

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

t.test('verify reads the refusal\'s fields, not its words: a reworded message prints the same rows', async t => {
  const reworded = (verifier: Verifier): Verifier => ({
    ...verifier,
    verify: async (jwt: string) => {
      try {
        return await verifier.verify(jwt)
      } catch (error) {
        if (!(error instanceof GuardError)) throw error
        // Same code and facts, other words: the message now names another claim and check.
        const { check, claim, expected, actual, limit } = error
        throw new GuardError(error.code, 'Reworded: header "typ" and the "sub" claim, acl.paths', { check, ...(claim === undefined ? {} : { claim }), expected, actual, ...(limit === undefined ? {} : { limit }) })
      }
    }
  })
  const cases: Array<[string, Promise<string>]> = [
    ['typ other than JWT', token({}, { header: { typ: 'at+jwt' } })],
    ['no jti', token({ jti: undefined })],
    ['application_id not a string', token({ application_id: 42 })],
    ['exp before iat', token({ exp: NOW - 20 })],
    ['an acl of the wrong shape', token({ acl: { paths: ['/*/users/**'] } })],
    ['expired', token({ iat: NOW - 2000, exp: NOW - 1000 })],
    ['a string date, allowNumericStringDates off', token({ exp: String(NOW + 100) })]
  ]
  for (const [name, pending] of cases) {
    const jwt = await pending
    const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW * 1000, cache: false, allowNumericStringDates: false })
    const rows = (report: Awaited<ReturnType<typeof explain>>): string[][] => report.checks.map(c => [c.check, c.status, c.code ?? ''])
    const original = await explain(jwt, verifier, { method: 'GET', path: null })
    const changed = await explain(jwt, reworded(verifier), { method: 'GET', path: null })
    t.ok(original.checks.some(c => c.status === 'fail'), `${name}: refused`)
    t.same(rows(changed), rows(original), `${name}: the same rows, statuses and codes`)
    t.match(changed.checks.find(c => c.status === 'fail')?.detail, /^Reworded/, `${name}: the new words are shown as they are`)
  }
})

t.test('verify shows the effective expiry with maxAge: a webhook refused for its age is not shown expiring later', async t => {
  const secret = 'a-webhook-signature-secret-of-32b'
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url')
  const payload = Buffer.from(JSON.stringify({ iss: 'Vonage', api_key: 'key1', iat: NOW - 600, jti: 'w-1', payload_hash: 'a'.repeat(64) })).toString('base64url')
  const jwt = `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`
  const verifier = createVerifier({ profile: 'vonage-webhook', secrets: { key1: secret }, now: () => NOW * 1000, cache: false })
  const report = await explain(jwt, verifier, { method: 'GET', path: null })
  const lifetime = report.checks.find(c => c.check === 'lifetime')
  t.equal(lifetime?.status, 'fail')
  t.equal(lifetime?.code, 'VJG_TOKEN_EXPIRED')
  // iat + maxAge (300 s) was five minutes ago; iat + defaultLifetime (900 s) would be five minutes ahead.
  t.match(lifetime?.detail, /\(effective expiry 5 minutes ago\)$/)
})
