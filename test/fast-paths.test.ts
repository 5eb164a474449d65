/**
 * The shortcuts taken for speed (bench/) decide exactly what the long way decides: the token
 * cache keyed by a token's tail, remembered acl grants, acls shared by equal JSON, the header
 * cache, the duplicate-name check by counting, the pipeline answering without a promise when
 * no stage has to wait, and header names folded only where they may fold onto a watched one.
 */
import t from 'tap'
import { TokenCache } from '../lib/cache.js'
import { compileAcl, createAclCompiler, decide } from '../lib/acl.js'
import { createGuard, type GuardRequest } from '../lib/guard.js'
import { createMemoryStore, createVerifier } from '../lib/index.js'
import type { AuthResult } from '../lib/types.js'
import { createTokenParser } from '../lib/token.js'
import { FoldedNames, foldHeaderName, METHOD_OVERRIDE_HEADERS } from '../lib/edge.js'
import { buildApp, bearer } from './helpers/app.js'
import { b64, claims, keys, NOW, NOW_MS, signRaw, token } from './helpers/keys.js'

t.test('TokenCache: a tail shared by two tokens is one slot, never a hit for the other token', async t => {
  const cache = new TokenCache<number>(3)
  const tail = 'x'.repeat(32)
  cache.set(`a.${tail}`, 1)
  t.equal(cache.get(`b.${tail}`), undefined, 'same tail, other token: a miss')
  cache.delete(`b.${tail}`)
  t.equal(cache.get(`a.${tail}`), 1, 'deleting the other token leaves this one')
  cache.set(`b.${tail}`, 2)
  t.equal(cache.get(`a.${tail}`), undefined, 'the newer token took the slot')
  t.equal(cache.get(`b.${tail}`), 2)
  t.equal(cache.size, 1)
})

t.test('TokenCache: least recently used goes first, short keys work', async t => {
  const cache = new TokenCache<number>(2)
  cache.set('a', 1)
  cache.set('b', 2)
  t.equal(cache.get('a'), 1) // a is now the most recent
  cache.set('c', 3)
  t.equal(cache.get('b'), undefined, 'b was the least recently used')
  t.equal(cache.get('a'), 1)
  t.equal(cache.get('c'), 3)
  cache.clear()
  t.equal(cache.size, 0)
})

t.test('remembered grants answer as the rules do', async t => {
  const acl = compileAcl({ paths: { '/*/users/**': { methods: ['GET'] }, '/*/legs/**': {} } })
  t.same(decide(acl, 'GET', '/v1/users/a'), { granted: true, grantedBy: '/*/users/**' })
  t.same(decide(acl, 'GET', '/v1/users/a'), { granted: true, grantedBy: '/*/users/**' }, 'again, from memory')
  t.same(decide(acl, 'HEAD', '/v1/users/a'), { granted: true, grantedBy: '/*/users/**' })
  t.throws(() => decide(acl, 'POST', '/v1/users/a'), { code: 'VJG_ACL_DENIED' }, 'a grant for GET is not one for POST')
  for (let i = 0; i < 10; i++) decide(acl, 'GET', `/v1/legs/${i}`)
  t.same(decide(acl, 'GET', '/v1/users/a'), { granted: true, grantedBy: '/*/users/**' }, 'after the memory turned over')
  t.throws(() => decide(acl, 'GET', '/v1/userss'), { code: 'VJG_ACL_DENIED' })
})

t.test('a rule with filters is asked every time', async t => {
  const acl = compileAcl({ paths: { '/*/users/**': { filters: { team: 'a' } } } })
  let calls = 0
  const aclFilter = (): boolean => ++calls === 1
  t.same(decide(acl, 'GET', '/v1/users/a', { aclFilter }), { granted: true, grantedBy: '/*/users/**' })
  t.throws(() => decide(acl, 'GET', '/v1/users/a', { aclFilter }), { code: 'VJG_ACL_DENIED' }, 'the second answer counts')
  t.equal(calls, 2)
})

t.test('compileAclClaim shares a compiled acl between equal JSON only', async t => {
  const { compileAclClaim } = createAclCompiler()
  const a = Object.freeze({ paths: Object.freeze({ '/*/users/**': Object.freeze({}) }) })
  const b = Object.freeze({ paths: Object.freeze({ '/*/users/**': Object.freeze({}) }) })
  const c = Object.freeze({ paths: Object.freeze({ '/*/users/**': Object.freeze({ methods: Object.freeze(['GET']) }) }) })
  t.equal(compileAclClaim(a), compileAclClaim(b), 'same JSON, one compiled acl')
  t.not(compileAclClaim(a), compileAclClaim(c))
  t.throws(() => decide(compileAclClaim(c), 'POST', '/v1/users/x'), { code: 'VJG_ACL_DENIED' })
  t.throws(() => compileAclClaim(Object.freeze({ paths: Object.freeze({ 'users/**': Object.freeze({}) }) })), { code: 'VJG_CLAIM_INVALID' })
})

t.test('headers: one text decoded once, a bad one refused every time', async t => {
  const good = await token()
  const parse = createTokenParser(8192)
  const first = parse(good).header
  t.equal(parse(good).header, first, 'the same frozen header object')
  t.ok(Object.isFrozen(first))
  t.not(createTokenParser(8192)(good).header, first, 'another parser (another verifier) decodes its own')
  const repeated = `${b64('{"alg":"RS256","alg":"RS256"}')}.${b64(claims())}.${'A'.repeat(342)}`
  for (let i = 0; i < 2; i++) {
    t.throws(() => parse(repeated), { code: 'VJG_TOKEN_MALFORMED', message: /repeats a member name/ })
  }
})

t.test('payloads: the counting check falls back to the exact scanner and agrees with it', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false })
  const base = JSON.stringify(claims()).slice(1, -1)
  const cases: Array<[string, string | undefined]> = [
    [`{${base}}`, undefined],
    [`{${base},"sub":"a","sub":"b"}`, 'repeats a member name'],
    [`{${base},"x":{"k":1,"k":2}}`, 'repeats a member name'],
    [`{${base},"x":["k",":",{"k":1}]}`, undefined],
    [`{${base},"s\\u0075b":"a","sub":"b"}`, 'repeats a member name'],
    [`{${base},"x":"a\\"b","y":{"a\\"b":1,"z":2}}`, undefined],
    [`{${base},"d":${'['.repeat(33)}${']'.repeat(33)}}`, 'nests deeper'],
    // Whitespace before a colon hides a name from the count ("q" is counted once, as is its key):
    // only the exact scanner sees the repeat.
    [`{${base},"q" :1,"q":2}`, 'repeats a member name'],
    [`{${base},"q"\t:1,"q":2}`, 'repeats a member name'],
    [`{${base},"q"\n:1,"q":2}`, 'repeats a member name'],
    [`{${base},"q"\r:1,"q":2}`, 'repeats a member name'],
    [`{${base},"q" :1,"r":"a :b"}`, undefined]
  ]
  for (const [payload, problem] of cases) {
    const signed = signRaw({ alg: 'RS256', typ: 'JWT' }, payload)
    if (problem === undefined) {
      const verified = await verifier.verify(signed)
      t.ok(Object.isFrozen(verified.claims), `accepted and frozen: ${payload.slice(-40)}`)
    } else {
      await t.rejects(verifier.verify(signed), { code: 'VJG_TOKEN_MALFORMED', message: new RegExp(problem) }, payload.slice(-40))
    }
  }
})

const request = (target: string, header?: string): GuardRequest => ({
  target,
  method: 'GET',
  raw: { rawHeaders: header === undefined ? [] : ['Authorization', header], headers: {} } as never,
  request: {}
})

t.test('authenticate: a cached token decided without a promise, as the first request was decided', async t => {
  const guard = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS })
  const good = await token()
  const first = guard.authenticate(request('/v1/users/a', `Bearer ${good}`))
  // Issue 16: a verification alone runs RSA on the calling thread (the pool hop only under load).
  t.notOk(first instanceof Promise, 'not cached yet, and alone: RSA on the calling thread, no promise')
  const slow = await first
  const fast = guard.authenticate(request('/v1/users/a', `Bearer ${good}`))
  t.notOk(fast instanceof Promise, 'cached: no promise')
  t.same(fast, slow, 'cached: the same result')
  t.throws(() => guard.authenticate(request('/v1/nope/a', `Bearer ${good}`)), { code: 'VJG_ACL_DENIED' }, 'a cached token refused without a promise')
  t.throws(() => guard.authenticate(request('/v1/users/a')), { code: 'VJG_TOKEN_MISSING' })
  t.equal(guard.authenticate(request('/v1/users/a'), { ...guard.defaultRoute, optional: true }), null)
  t.throws(() => guard.authenticate(request('/v1/../a', `Bearer ${good}`)), { code: 'VJG_PATH_INVALID' })

  const asyncHook = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS, getToken: async () => good })
  await asyncHook.authenticate(request('/v1/users/a'))
  const waited = asyncHook.authenticate(request('/v1/users/a'))
  t.ok(waited instanceof Promise, 'a getToken that answers with a promise: waited for')
  t.equal((await waited)?.grantedBy, '/*/users/**')
  const syncHook = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS, getToken: () => good })
  await syncHook.authenticate(request('/v1/users/a'))
  const direct = syncHook.authenticate(request('/v1/users/a'))
  t.notOk(direct instanceof Promise, 'a getToken that answers at once: no promise')
  t.equal((direct as AuthResult).grantedBy, '/*/users/**')

  const store = createMemoryStore({ now: () => NOW_MS })
  const revoking = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS, revocation: store })
  await revoking.authenticate(request('/v1/users/a', `Bearer ${good}`))
  t.notOk(revoking.authenticate(request('/v1/users/a', `Bearer ${good}`)) instanceof Promise, 'the memory store answers at once: no promise')
  await store.revokeToken(claimsOf(good).jti as string, NOW + 900)
  t.throws(() => revoking.authenticate(request('/v1/users/a', `Bearer ${good}`)), { code: 'VJG_TOKEN_REVOKED' }, 'and refuses at once')
})

function claimsOf (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

t.test('Fastify: cached tokens through the fast path answer as the first request did', async t => {
  const app = await buildApp({ errorFormat: 'problem' })
  t.teardown(() => app.close())
  const good = await token()
  for (let i = 0; i < 2; i++) {
    const ok = await app.inject({ url: '/v1/users/a', headers: bearer(good) })
    t.equal(ok.statusCode, 200, `granted, request ${i + 1}`)
    t.equal(ok.json().auth.grantedBy, '/*/users/**')
    const denied = await app.inject({ url: '/v1/other/a', headers: bearer(good) })
    t.equal(denied.statusCode, 403, `denied, request ${i + 1}`)
    t.equal(denied.json().code, 'VJG_ACL_DENIED')
    t.match(denied.headers['www-authenticate'], /insufficient_scope/)
  }
})

t.test('FoldedNames: a name skipped without folding never folds onto a name of the table', async t => {
  // Names with an i- (U+0130 folds onto two characters, i-), a k (the Kelvin sign folds onto k),
  // a digit, and the override headers.
  const table = ['x-vonage-sub', 'x-api-key', 'multi-i-x', 'k8s-id', '9x', ...Object.keys(METHOD_OVERRIDE_HEADERS)]
  const names = new FoldedNames(table.map(name => [name, name] as const))
  const cases = [
    ...table,
    ...table.map(name => name.toUpperCase()),
    ...table.map(name => name.replaceAll('-', '_')),
    ...table.map(name => name.replaceAll('-', '.')),
    'x-ap\u0130key', 'x-ap\u0130-key', 'X_AP\u0130KEY', 'mult\u0130\u0130x', 'mult\u0130i-x', 'multi-\u0130x', 'x-api\u0130ey',
    '\u212a8s-id', '\u212A8S_ID', '\u0130x', '\u{10400}', 'x\u{10400}vonage-sub', '_x-vonage-sub', '',
    'X-HTTP-METHOD', 'x http method', 'x-http-method-overridE', 'x-http-method-override2', 'Content-Type', 'Authorization'
  ]
  for (const name of cases) {
    const long = table.includes(foldHeaderName(name)) ? foldHeaderName(name) : undefined
    t.equal(names.get(name), long, JSON.stringify(name))
  }
  t.equal(names.get('x-ap\u0130key'), 'x-api-key', 'U+0130 folds onto i- and is found, one character shorter')
  t.equal(names.get('mult\u0130\u0130x'), 'multi-i-x', 'twice, two characters shorter')
  t.equal(names.get('\u212a8s-id'), 'k8s-id', 'the Kelvin sign folds onto k and is found')
  const overrides = new FoldedNames(Object.entries(METHOD_OVERRIDE_HEADERS))
  t.equal(overrides.get('X.Http.Method'), 'X-HTTP-Method')
  t.equal(overrides.get('X-Http-Methods'), undefined)
})
