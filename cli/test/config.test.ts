/**
 * --config and the guard flags: the documented example file drives serve and verify, a module
 * reaches a function-valued option, flags win over the file, and a bad option is one line
 * naming the file or the flag (exit 2).
 */
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys, otherKeys } from '../../test/helpers/keys.js'
import { markedBlock } from '../../test/helpers/examples.js'
import { inTurns, liveToken, portOf, run, start, stop } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

/** The JSON block of docs/cli.md after `<!-- config-example -->`. */
const documentedExample = (): string => markedBlock('docs/cli.md', 'config-example')

t.test('the documented config file drives serve; flags win over it', async t => {
  const example = documentedExample()
  t.equal(JSON.parse(example).publicKeys[APP_ID].file, `keys/${APP_ID}.pem`, 'the example names the test application')
  const dir = t.testdir({ 'guard.json': example, keys: { [`${APP_ID}.pem`]: keys.publicPem } })
  const server = await start(['serve', '--port', '0', '--config', join(dir, 'guard.json'), '--log-level', 'warn'], { cwd: dir })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const jwt = await liveToken({ sub: 'alice' })

  const granted = await rawRequest(port, '/api/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(granted.status, 200, 'aclPath "/api" is stripped before the ACL sees the path')
  t.equal(JSON.parse(granted.body).grantedBy, '/*/users/**')
  const denied = await rawRequest(port, '/api/v1/calls', { authorization: `Bearer ${jwt}` })
  t.equal(denied.status, 403)
  t.match(denied.headers['content-type'], /application\/problem\+json/, 'errorFormat "problem" from the file')
  t.equal(JSON.parse(denied.body).code, 'VJG_ACL_DENIED')
  t.match(denied.headers['www-authenticate'], /^Bearer realm="my-api"/, 'realm from the file')
  const root = await rawRequest(port, '/api/v1/users/abc', { authorization: `Bearer ${await liveToken({ acl: undefined })}` }, 'POST')
  t.equal(root.status, 403, 'defaultAcl from the file: a token without acl gets GET on /*/users/** only')
  const other = await rawRequest(port, '/api/v1/users/abc', { authorization: `Bearer ${await liveToken({ application_id: 'another-app' }, otherKeys.privateKey)}` })
  t.equal(JSON.parse(other.body).code, 'VJG_KEY_UNKNOWN', 'publicKeys from the file, read from a path relative to it')
  t.equal(await stop(server), 0)

  // The same file with flags over it: the flag's value wins, the rest of the file stays.
  const over = await start(['serve', '--port', '0', '--config', join(dir, 'guard.json'), '--error-format', 'fastify', '--app-id', 'another-app', '--log-level', 'warn'], { cwd: dir })
  t.teardown(() => { over.child.kill('SIGKILL') })
  const mismatch = await rawRequest(portOf(over.base), '/api/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(mismatch.status, 401)
  t.match(mismatch.headers['content-type'], /application\/json/, '--error-format fastify wins over the file')
  t.equal(JSON.parse(mismatch.body).code, 'VJG_APPLICATION_MISMATCH', '--app-id wins over the file')
  t.match(mismatch.headers['www-authenticate'], /realm="my-api"/, 'the realm still comes from the file')
  t.equal(await stop(over), 0)
})

t.test('a JS module reaches a function-valued option; proxy reads the file too', async t => {
  const up = await recordingUpstream(t)
  const dir = t.testdir({
    'public.key': keys.publicPem,
    'guard.mjs': "export default {\n  publicKey: { file: 'public.key' },\n  getToken: (request) => request.headers['x-token']\n}\n"
  })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--config', join(dir, 'guard.mjs'), '--log-level', 'warn'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken()
  t.equal((await rawRequest(port, '/v1/users/abc', { 'x-token': jwt })).status, 200, 'getToken from the module reads X-Token')
  t.equal(up.seen.length, 1)
  const bearer = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })
  t.equal(JSON.parse(bearer.body).code, 'VJG_TOKEN_MISSING', 'getToken replaces the Authorization header')
  t.equal(up.seen.length, 1, 'the refused request was not forwarded')
  t.equal(await stop(proxy), 0)
})

t.test('verify: config file, --profile and the lifetime flags', async t => {
  const dir = t.testdir({ 'guard.json': JSON.stringify({ publicKey: { file: 'public.key' }, maxLifetime: 600, defaultLifetime: 300, lifetimePolicy: 'reject' }), 'public.key': keys.publicPem })
  const config = join(dir, 'guard.json')
  const now = Math.floor(Date.now() / 1000)
  const long = await liveToken({ iat: now - 10, exp: now + 3600 })
  const refused = await run(['verify', long, '--config', config])
  t.equal(refused.code, 1, 'maxLifetime 600 and lifetimePolicy reject from the file')
  t.match(refused.stdout, /^FAIL {2}lifetime .*\[VJG_LIFETIME_EXCEEDED\]/m)
  const capped = await run(['verify', long, '--config', config, '--lifetime-policy', 'cap', '--max-lifetime', '7200'])
  t.equal(capped.code, 0, `flags win over the file: ${capped.stdout}`)
  const short = await run(['verify', await liveToken({ iat: now - 10, exp: now + 20 }), '--config', config, '--min-lifetime', '60'])
  t.equal(short.code, 1)
  t.match(short.stdout, /^FAIL {2}lifetime .*\[VJG_LIFETIME_TOO_SHORT\]/m, 'VJG_LIFETIME_TOO_SHORT is the lifetime check')
  const strings = await run(['verify', await liveToken({ iat: String(now - 120), exp: String(now - 60) }), '--config', config])
  t.match(strings.stdout, /^FAIL {2}lifetime .*\(effective expiry 1 minute[^)]* ago\) \[VJG_TOKEN_EXPIRED\]/m, 'the expiry of a token with string dates is shown')
  const noStrings = await run(['verify', await liveToken({ iat: String(now - 10) }), '--config', config, '--no-allow-numeric-string-dates'])
  t.match(noStrings.stdout, /^FAIL {2}claim iat .*\[VJG_CLAIM_INVALID\]/m, '--no-allow-numeric-string-dates')
  const sub = await run(['verify', await liveToken({ sub: 'bob' }), '--config', config, '--lifetime-policy', 'cap', '--sub', 'alice'])
  t.equal(sub.code, 1)
  t.match(sub.stdout, /^FAIL {2}sub +the token's sub is "bob", not "alice"$/m, '--sub, as vonage jwt validate')
  t.match((await run(['verify', await liveToken({ sub: 'alice' }), '--config', config, '--lifetime-policy', 'cap', '--sub', 'alice'])).stdout, /^pass {2}sub /m)
  const video = await run(['verify', await liveToken(), '--config', config, '--profile', 'vonage-video'])
  t.match(video.stdout, /\[VJG_CLAIM_(MISSING|INVALID)\]/, '--profile vonage-video asks for its own claims')
})

t.test('HS profiles take their secrets from a flag, a file or the environment', async t => {
  const secret = 'an-opentok-api-secret-of-32-bytes!'
  const { SignJWT } = await import('jose')
  const now = Math.floor(Date.now() / 1000)
  const jwt = await new SignJWT({ iss: '4654321', ist: 'project', iat: now, exp: now + 120, jti: 'j-1' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret))
  const dir = t.testdir({ secret: `${secret}\n` })
  const ways: Array<[string, string[], NodeJS.ProcessEnv]> = [
    ['--secret', ['--secret', `4654321=${secret}`], {}],
    ['--secret-file', ['--secret-file', `4654321=${join(dir, 'secret')}`], {}],
    ['--secret-env', ['--secret-env', '4654321=OT_SECRET'], { OT_SECRET: secret }]
  ]
  const results = await inTurns(ways, ([, args, env]) => run(['verify', jwt, '--profile', 'opentok', ...args], { env }))
  for (const [i, [name]] of ways.entries()) t.equal(results[i]!.code, 0, `${name}: ${results[i]!.stdout}${results[i]!.stderr}`)
  const unset = await run(['verify', jwt, '--profile', 'opentok', '--secret-env', '4654321=NOT_SET_ANYWHERE'])
  t.equal(unset.code, 2)
  t.match(unset.stderr, /NOT_SET_ANYWHERE, which is not set|the environment variable NOT_SET_ANYWHERE is not set/)
})

t.test('a bad option is one line naming the file or the flag, exit 2; a missing file exit 1', async t => {
  const dir = t.testdir({
    'public.key': keys.publicPem,
    'tolerance.json': JSON.stringify({ publicKey: { file: 'public.key' }, clockTolerance: 900 }),
    'typo.json': JSON.stringify({ publicKey: { file: 'public.key' }, requireAcll: true }),
    'broken.json': '{ "publicKey": ',
    'list.json': '[]',
    'env.json': JSON.stringify({ publicKey: { env: 'NO_SUCH_VARIABLE_HERE' } }),
    'small.json': JSON.stringify({ publicKeys: { 'app-1': { file: 'missing.pem' } } }),
    'guard.yaml': 'publicKey: x',
    'nodefault.mjs': 'export const publicKey = 1\n'
  })
  const jwt = await liveToken()
  const cases: Array<[string, string[], number, RegExp]> = [
    ['a value out of range', ['--config', join(dir, 'tolerance.json')], 2, /^error: .*tolerance\.json: vonage-jwt-guard: option "clockTolerance" must be an integer from 0 to 300 \(got 900\)\n$/],
    ['an unknown option', ['--config', join(dir, 'typo.json')], 2, /^error: .*typo\.json: vonage-jwt-guard: option "requireAcll" is not an option of vonage-jwt-guard/],
    ['not JSON', ['--config', join(dir, 'broken.json')], 2, /^error: .*broken\.json: not valid JSON/],
    ['not an object', ['--config', join(dir, 'list.json')], 2, /list\.json: must hold an object of guard options/],
    ['an unset environment variable', ['--config', join(dir, 'env.json')], 2, /env\.json: publicKey names the environment variable NO_SUCH_VARIABLE_HERE, which is not set/],
    ['another format', ['--config', join(dir, 'guard.yaml')], 2, /give a \.json file, or a \.js \/ \.mjs module/],
    ['a module without a default export', ['--config', join(dir, 'nodefault.mjs')], 2, /no default export/],
    ['a flag out of range', ['--public-key', join(dir, 'public.key'), '--clock-tolerance', '400'], 2, /^error: --clock-tolerance: vonage-jwt-guard: option "clockTolerance" must be an integer from 0 to 300/],
    ['a bad --default-acl', ['--public-key', join(dir, 'public.key'), '--default-acl', '{"paths":{"users":{}}}'], 2, /^error: --default-acl: vonage-jwt-guard: option "defaultAcl"/],
    ['two sources of keys', ['--public-key', join(dir, 'public.key'), '--jwks-url', 'https://example.com/jwks'], 2, /give one source of keys, not --public-key and --jwks-url/],
    ['a missing config file', ['--config', join(dir, 'nope.json')], 1, /^error: cannot read ".*nope\.json": no such file or directory \(ENOENT\)\n$/],
    ['a key file the config names that is missing', ['--config', join(dir, 'small.json')], 1, /^error: cannot read ".*missing\.pem": no such file or directory \(ENOENT\)\n$/]
  ]
  const results = await inTurns(cases, ([, args]) => run(['verify', jwt, ...args]))
  for (const [i, [name, , code, message]] of cases.entries()) {
    t.equal(results[i]!.code, code, `${name}: exit ${code}`)
    t.match(results[i]!.stderr, message, `${name}: one line naming it`)
    t.notMatch(results[i]!.stderr, /\n\s+at /, `${name}: no stack`)
  }
  const server = await run(['serve', '--port', '0', '--config', join(dir, 'tolerance.json')])
  t.equal(server.code, 2, 'serve checks the file the same way')
  t.match(server.stderr, /tolerance\.json: vonage-jwt-guard: option "clockTolerance"/)
  const revocation = await run(['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', join(dir, 'public.key'), '--revocation'])
  t.equal(revocation.code, 2)
  t.match(revocation.stderr, /revocation needs a shared store \(--redis-url/)
})
