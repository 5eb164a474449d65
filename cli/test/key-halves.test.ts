/**
 * The command line's rough edges around keys and lifetimes: a public key given to `create`, a
 * private key given to `--public-key`, a lifetime the guard would cap, and the expiry an
 * expired token was refused at in `verify --json`.
 */
import { join } from 'node:path'
import t from 'tap'
import { APP_ID, claims, keys, sign } from '../../test/helpers/keys.js'
import { run } from './helpers/bin.js'

const toJwk = (key: typeof keys.publicKey): string => JSON.stringify(key.export({ format: 'jwk' }))

t.test('create --private-key <a public key> says it is a public key, whatever its form', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem, 'public.jwk': toJwk(keys.publicKey) })
  for (const [given, shown] of [[join(dir, 'public.key'), join(dir, 'public.key')], [keys.publicPem, '(inline key)'], [join(dir, 'public.jwk'), join(dir, 'public.jwk')]] as const) {
    const result = await run(['create', '--app-id', APP_ID, '--private-key', given])
    t.equal(result.code, 2, shown)
    t.equal(result.stdout, '')
    t.equal(result.stderr, `error: --private-key ${shown}: a public key, not a private one: a token is signed with the application's private key (private.key, from the Vonage dashboard or keygen); the public key is what the guard verifies with (--public-key)\n`)
    t.notMatch(result.stderr, /DECODER|BEGIN/, 'no OpenSSL reason, no key text')
  }
})

t.test('create warns, with the reason, when the lifetime is past the guard\'s default cap', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem })
  const key = join(dir, 'private.key')
  const long = await run(['create', '--app-id', APP_ID, '--private-key', key, '--ttl', '100000'])
  t.equal(long.code, 0, 'the token is still printed: a guard with a longer --max-lifetime accepts it')
  t.match(long.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  t.match(long.stderr, /^warning: --ttl 100000 makes a lifetime of 100000 s, past the guard's default --max-lifetime of 86400 s: a guard with the defaults accepts this token only until iat \+ 86400 \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, --lifetime-policy cap, as Vonage does\), and refuses it \(401 VJG_LIFETIME_EXCEEDED\) under --lifetime-policy reject\n$/)

  const exp = Math.floor(Date.now() / 1000) + 2 * 86_400
  const byExp = await run(['create', '--app-id', APP_ID, '--private-key', key, '--exp', String(exp)])
  t.equal(byExp.code, 0)
  t.match(byExp.stderr, new RegExp(`^warning: --exp ${exp} makes a lifetime of 17\\d{4} s`), '--exp too')

  // What the warning says is what the guard does.
  const jwt = long.stdout.trim()
  const rejected = await run(['verify', jwt, '--public-key', keys.publicPem, '--lifetime-policy', 'reject'])
  t.equal(rejected.code, 1)
  t.match(rejected.stdout, /\[VJG_LIFETIME_EXCEEDED\]/)
  const capped = await run(['verify', jwt, '--public-key', keys.publicPem, '--json'])
  t.equal(capped.code, 0)
  const { claims, expiresAt } = JSON.parse(capped.stdout) as { claims: { iat: number }, expiresAt: number }
  t.equal(expiresAt, claims.iat + 86_400, 'capped at iat + 86400')

  for (const ttl of ['900', '86400']) {
    const quiet = await run(['create', '--app-id', APP_ID, '--private-key', key, '--ttl', ttl])
    t.equal(quiet.stderr, '', `--ttl ${ttl}: no warning`)
  }
})

t.test('--public-key <a private key> verifies with its public half, with a warning naming the path only', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem })
  const jwt = (await run(['create', '--app-id', APP_ID, '--private-key', join(dir, 'private.key')])).stdout.trim()
  const result = await run(['verify', jwt, '--public-key', join(dir, 'private.key')])
  t.equal(result.code, 0, result.stdout)
  t.equal(result.stderr, `warning: --public-key ${join(dir, 'private.key')} holds a private key: its public half is used. The guard needs only the public key (public.key): keep the private key off the machines that verify\n`)
  const publicKey = await run(['verify', jwt, '--public-key', keys.publicPem])
  t.equal(publicKey.stderr, '', 'no warning for a public key')
})

t.test('verify --json of an expired token shows the expiry it was refused at', async t => {
  const dir = t.testdir({ 'private.key': keys.privatePem })
  const iat = 1_700_000_000
  const cases = [
    { name: 'exp within the cap', args: ['--ttl', '600'], expiresAt: iat + 600 },
    { name: 'exp past the cap', args: ['--ttl', '100000'], expiresAt: iat + 86_400 },
    { name: 'no exp: iat + defaultLifetime', args: null, expiresAt: iat + 900 }
  ]
  for (const { name, args, expiresAt } of cases) {
    // create always writes an exp: the token without one is signed here.
    const jwt = args === null
      ? await sign(claims({ iat, exp: undefined }))
      : (await run(['create', '--app-id', APP_ID, '--private-key', join(dir, 'private.key'), '--claim', `iat=${iat}`, ...args])).stdout.trim()
    const result = await run(['verify', jwt, '--public-key', keys.publicPem, '--json'])
    t.equal(result.code, 1, name)
    const explanation = JSON.parse(result.stdout) as { expiresAt: number | null, checks: Array<{ check: string, code?: string }> }
    t.equal(explanation.checks.find(c => c.check === 'lifetime')?.code, 'VJG_TOKEN_EXPIRED', name)
    t.equal(explanation.expiresAt, expiresAt, `${name}: expiresAt`)
  }
})
