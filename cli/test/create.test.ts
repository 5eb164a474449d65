/**
 * create: a token jose verifies, with the claims asked for; a bad command line is exit 2 and no
 * token.
 */
import { join } from 'node:path'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import t from 'tap'
import { APP_ID, keys } from '../../test/helpers/keys.js'
import { inTurns, run } from './helpers/bin.js'


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
    ['a public key as the private key', ['--app-id', APP_ID, '--private-key', join(dir, 'public.key')], /public\.key: a public key, not a private one/],
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
