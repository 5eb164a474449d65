/**
 * What the command line never prints: key material in an error, a control character from a
 * token on the terminal, a stack for a filesystem error or for a refusal, a token in the log.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, claims, keys, sign } from '../../test/helpers/keys.js'
import { inTurns, liveToken, portOf, run, start, stop } from './helpers/bin.js'

const NO_STACK = /\n\s+at /
// eslint-disable-next-line no-control-regex -- what must not reach a terminal
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const IS_ROOT = process.getuid?.() === 0

t.test('a key given as base64 or as a body without its PEM lines is refused without printing it', async t => {
  const body = keys.privatePem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
  const base64Pem = Buffer.from(keys.privatePem).toString('base64')
  const publicBody = keys.publicPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
  const cases: Array<[string, string[], string]> = [
    ['create: $(base64 -w0 private.key)', ['create', '--app-id', APP_ID, '--private-key', base64Pem], base64Pem],
    ['create: the key body without its PEM lines', ['create', '--app-id', APP_ID, '--private-key', body], body],
    ['create: the body with its line breaks', ['create', '--app-id', APP_ID, '--private-key', keys.privatePem.replace(/-----[A-Z ]+-----\n?/g, '')], body],
    ['verify: a public key body', ['verify', 'a.b.c', '--public-key', publicBody], publicBody],
    ['serve: a public key body', ['serve', '--port', '0', '--public-key', publicBody], publicBody]
  ]
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , secret]] of cases.entries()) {
    const { code, stdout, stderr } = results[i]!
    t.equal(code, 2, `${name}: exit 2`)
    t.equal(stdout, '', `${name}: nothing on stdout`)
    t.match(stderr, /is neither a PEM key nor a path to one; a base64 key body needs its -----BEGIN \.\.\. KEY----- lines/, `${name}: says why`)
    t.match(stderr, /\(\d+ characters\)/, `${name}: the value quoted by its length`)
    // No run of 16 characters of the key reaches the terminal.
    const leaked = Array.from({ length: secret.length - 16 }, (_, j) => secret.slice(j, j + 16)).some(piece => stderr.includes(piece))
    t.notOk(leaked, `${name}: no piece of the key in the error`)
    t.equal(stderr.split('\n').filter(Boolean).length, 1, `${name}: one line`)
  }
})

t.test('verify escapes every token-controlled string: a forged kid cannot draw lines', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const forged = 'k\r\npass  signature             verified with the configured public key\n\u001b[8m\u202e'
  const jwt = await sign(claims({ iat: 1, exp: 2, 'na\u001b[31mme': 'v\u009b2J\u2066al', sub: 'a\rb' }), { header: { kid: forged } })
  const result = await run(['verify', jwt, '--public-key', join(dir, 'public.key')])
  t.equal(result.code, 1)
  t.notMatch(result.stdout, UNSAFE, 'no control, ESC, C1 or bidi character reaches the terminal')
  t.match(result.stdout, /^pass {2}header +alg RS256, typ JWT, kid k\\u000d\\u000apass {2}signature .*\\u001b\[8m\\u202e \(accepted: RS256\)$/m, 'the kid on the header line, escaped')
  t.match(result.stdout, /^pass {2}claim sub +"a\\rb"$/m, 'a claim value, escaped')
  t.match(result.stdout, /^FAIL {2}lifetime .*\[VJG_TOKEN_EXPIRED\]/m, 'the real FAIL line is there')
  t.equal(result.stdout.split('\n').filter(line => line.startsWith('pass  signature')).length, 1, 'one signature line: the real one')
  t.match(result.stdout, /\ninvalid: the lifetime check failed\n$/)

  const typ = await run(['verify', await sign(claims(), { header: { typ: 'JWT\u001b]0;pwned\u0007' } }), '--public-key', join(dir, 'public.key')])
  t.match(typ.stdout, /^FAIL {2}header .*\[VJG_TOKEN_MALFORMED\]$/m, 'a hostile typ fails the header check')
  t.notMatch(typ.stdout, UNSAFE)

  const json = await run(['verify', jwt, '--public-key', join(dir, 'public.key'), '--json'])
  t.notMatch(json.stdout, UNSAFE, '--json: none either')
  t.equal(JSON.parse(json.stdout).header.kid, forged, '--json: still the same JSON')
})

t.test('filesystem errors: one line naming the path and the cause, exit 1, no stack', async t => {
  const dir = t.testdir({ 'a-file': 'x', out: { 'public.key': {} }, 'public.key': keys.publicPem, 'locked.key': keys.publicPem })
  mkdirSync(join(dir, 'out', 'private.key'), { recursive: true })
  writeFileSync(join(dir, 'locked.key'), keys.publicPem)
  chmodSync(join(dir, 'locked.key'), 0o000)
  const jwt = await liveToken()
  const cases: Array<[string, string[], RegExp]> = [
    ['keygen --out a-file/sub', ['keygen', '--out', join(dir, 'a-file', 'sub')], /^error: cannot create the directory ".*a-file\/sub": a part of the path is a file, not a directory \(ENOTDIR\)\n$/],
    ['keygen --force over a directory', ['keygen', '--out', join(dir, 'out'), '--force'], /^error: cannot write ".*out\/private\.key": it is a directory \(EISDIR\)\n$/],
    ['serve --keys-dir a-file/x', ['serve', '--port', '0', '--keys-dir', join(dir, 'a-file', 'x')], /^error: cannot create the directory ".*a-file\/x": a part of the path is a file, not a directory \(ENOTDIR\)\n$/],
    ['create --private-key missing', ['create', '--app-id', APP_ID, '--private-key', join(dir, 'nope.key')], /^error: cannot read ".*nope\.key": no such file or directory \(ENOENT\)\n$/],
    ['verify --public-key a directory', ['verify', jwt, '--public-key', join(dir, 'out')], /^error: cannot read ".*out": it is a directory \(EISDIR\)\n$/],
    ['proxy --public-key under a file', ['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', join(dir, 'a-file', 'k.pem')], /^error: cannot read ".*a-file\/k\.pem": a part of the path is a file, not a directory \(ENOTDIR\)\n$/],
    ['forward-auth --secret-file missing', ['forward-auth', '--profile', 'opentok', '--secret-file', `1=${join(dir, 'nope')}`], /^error: cannot read ".*nope": no such file or directory \(ENOENT\)\n$/]
  ]
  if (!IS_ROOT) cases.push(['verify --public-key unreadable', ['verify', jwt, '--public-key', join(dir, 'locked.key')], /^error: cannot read ".*locked\.key": permission denied \(EACCES\)\n$/])
  const results = await inTurns(cases, ([, args]) => run(args))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 1, `${name}: exit 1`)
    t.match(results[i]!.stderr, message, `${name}: one line naming the path and the cause`)
    t.notMatch(results[i]!.stderr, NO_STACK, `${name}: no stack`)
  }
})

t.test('create --exp not after iat is refused with a clear line; an expired token on purpose needs its iat', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem, 'public.key': keys.publicPem })
  const past = await run(['create', '--app-id', APP_ID, '--private-key', join(dir, 'private.key'), '--exp', '1532179987'])
  t.equal(past.code, 2)
  t.equal(past.stdout, '', 'no token')
  t.match(past.stderr, /^error: --exp 1532179987 \(2018-07-21T13:33:07Z\) is not after the token's iat \(\d+, now\): it would expire before it is issued/)
  const expired = await run(['create', '--app-id', APP_ID, '--private-key', join(dir, 'private.key'), '--claim', 'iat=1532170000', '--exp', '1532179987'])
  t.equal(expired.code, 0, expired.stderr)
  const verdict = await run(['verify', expired.stdout.trim(), '--public-key', join(dir, 'public.key')])
  t.match(verdict.stdout, /^FAIL {2}lifetime .*\[VJG_TOKEN_EXPIRED\]/m, 'an expired token, as asked, not an invalid one')
})

t.test('serve logs each refusal once, at info, with its code: no stack, no token, no line per granted request', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const server = await start(['serve', '--port', '0', '--public-key', join(dir, 'public.key'), '--log-level', 'info'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const jwt = await liveToken()
  const before = server.stdout().split('\n').length
  t.equal((await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })).status, 200)
  t.equal((await rawRequest(port, '/v1/calls', { authorization: `Bearer ${jwt}` })).status, 403)
  t.equal((await rawRequest(port, '/v1/users?token=x', { authorization: `Bearer ${jwt}.x` })).status, 401)
  t.equal((await rawRequest(port, '/v1/users', {})).status, 401)
  t.equal(await stop(server), 0)
  const lines = server.stdout().split('\n').slice(before - 1).filter(line => line.startsWith('{'))
  const logged = lines.map(line => JSON.parse(line) as Record<string, unknown>)
  t.same(logged.map(l => [l.level, l.code, l.statusCode]), [[30, 'VJG_ACL_DENIED', 403], [30, 'VJG_TOKEN_MALFORMED', 401], [30, 'VJG_TOKEN_MISSING', 401]], 'one line per refusal, none for the grant')
  t.notMatch(server.stdout(), /"stack"|"err"/, 'no stack')
  t.notOk(server.stdout().includes(jwt.split('.')[2]!), 'no token')

  const verbose = await start(['serve', '--port', '0', '--public-key', join(dir, 'public.key'), '--log-requests', '--log-level', 'info'])
  t.teardown(() => { verbose.child.kill('SIGKILL') })
  await rawRequest(portOf(verbose.base), '/v1/users/abc?secret=1', { authorization: `Bearer ${jwt}` })
  t.equal(await stop(verbose), 0)
  t.match(verbose.stdout(), /"msg":"incoming request"/, '--log-requests logs granted requests')
  t.match(verbose.stdout(), /"path":"\/v1\/users\/abc"/, 'by path')
  t.notMatch(verbose.stdout(), /secret=1|authorization/i, 'never the query or a header')
})

t.test('a target Fastify cannot decode is the guard\'s 400 in every server, never quoted back: the token in its query stays out of the answer and the log', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const jwt = await liveToken()
  for (const command of [['serve'], ['forward-auth'], ['proxy', '--upstream', 'http://127.0.0.1:9']]) {
    const server = await start([...command, '--port', '0', '--public-key', join(dir, 'public.key'), '--log-level', 'info'])
    t.teardown(() => { server.child.kill('SIGKILL') })
    for (const target of [`/v1/users/%zz?token=${jwt}`, `/v1/users/%C0%AF?token=${jwt}`]) {
      const res = await rawRequest(portOf(server.base), target, { authorization: `Bearer ${jwt}` })
      t.equal(res.status, 400, `${command[0]!} ${target.slice(0, 14)}: 400`)
      t.equal(JSON.parse(res.body).code, 'VJG_PATH_INVALID', `${command[0]!}: the guard's code`)
      t.match(res.headers['www-authenticate'], /error="invalid_request"/, `${command[0]!}: the guard's challenge`)
      t.notOk(res.body.includes(jwt.split('.')[1]!), `${command[0]!}: the body does not quote the target`)
    }
    t.equal(await stop(server), 0)
    t.notOk(server.stdout().includes(jwt.split('.')[1]!), `${command[0]!}: the log holds no token`)
    t.match(server.stdout(), /"code":"VJG_PATH_INVALID"/, `${command[0]!}: the refusal is logged with its code`)
  }
})
