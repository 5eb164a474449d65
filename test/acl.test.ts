import t from 'tap'
import {
  compileAcl, createAclCompiler, decide, MAX_PATTERNS,
  PATTERN_CACHE_MAX
} from '../lib/acl.js'
import { MINIMATCH_OPTIONS } from '../lib/glob.js'
import type { AclContext, AclFilter, AclRule, CompiledAcl, MatchRule } from '../lib/acl.js'
import { GuardError } from '../lib/errors.js'
import { CLIENT_SDK_ACL, DENIED, decisions } from './helpers/acl-table.js'

const manyPatterns = (n: number): Record<string, object> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`/p${i}/**`, {}]))

t.test('MINIMATCH_OPTIONS are the pinned, frozen options', async t => {
  t.ok(Object.isFrozen(MINIMATCH_OPTIONS))
  t.strictSame({ ...MINIMATCH_OPTIONS }, { dot: true, nobrace: true, noext: true, nonegate: true, nocomment: true, platform: 'linux' })
})

t.test('compileAcl refuses every bad shape with 401 VJG_CLAIM_INVALID', async t => {
  const bad: Array<[string, unknown]> = [
    ['null', null],
    ['undefined', undefined],
    ['a string', '{"paths":{}}'],
    ['a number', 42],
    ['a boolean', true],
    ['an array', [{ paths: {} }]],
    ['no paths', {}],
    ['paths null', { paths: null }],
    ['paths an array', { paths: ['/a'] }],
    ['paths a string', { paths: '/a' }],
    ['paths a Map', { paths: new Map([['/a', {}]]) }],
    ['paths a class instance', { paths: new (class Paths {})() }],
    ['paths only inherited', Object.create({ paths: { '/a': {} } })],
    ['acl a class instance', new (class Acl { paths = { '/a': {} } })()],
    ['rule null', { paths: { '/a': null } }],
    ['rule an array', { paths: { '/a': [] } }],
    ['rule true', { paths: { '/a': true } }],
    ['rule a string', { paths: { '/a': 'GET' } }],
    ['methods a string', { paths: { '/a': { methods: 'GET' } } }],
    ['methods null', { paths: { '/a': { methods: null } } }],
    ['methods an object', { paths: { '/a': { methods: { 0: 'GET' } } } }],
    ['methods with an empty string', { paths: { '/a': { methods: ['GET', ''] } } }],
    ['methods with a number', { paths: { '/a': { methods: [1] } } }],
    ['methods with null', { paths: { '/a': { methods: [null] } } }],
    ['filters an array', { paths: { '/a': { filters: [] } } }],
    ['filters null', { paths: { '/a': { filters: null } } }],
    ['filters a string', { paths: { '/a': { filters: 'x' } } }],
    ['pattern without a leading slash', { paths: { 'v1/users': {} } }],
    ['empty pattern', { paths: { '': {} } }],
    ['pattern "*"', { paths: { '*': {} } }],
    ['pattern "**"', { paths: { '**': {} } }],
    ['negated pattern', { paths: { '!/a': {} } }],
    ['comment pattern', { paths: { '#/a': {} } }],
    ['pattern with "\\"', { paths: { '/a\\*': {} } }],
    ['pattern with "%"', { paths: { '/a%2F*': {} } }],
    ['pattern with a ".." segment', { paths: { '/v1/users/../admin': {} } }],
    ['pattern ending in ".."', { paths: { '/v1/..': {} } }],
    ['pattern of 513 characters', { paths: { ['/' + 'a'.repeat(512)]: {} } }],
    ['129 patterns', { paths: manyPatterns(MAX_PATTERNS + 1) }],
    ['one bad pattern among good ones', { paths: { '/a': {}, b: {}, '/c': {} } }],
    ['__proto__ from JSON.parse', JSON.parse('{"paths":{"__proto__":{"methods":["GET"]}}}')],
    ['constructor', { paths: { constructor: {} } }],
    ['paths __proto__ from JSON.parse', JSON.parse('{"paths":{"__proto__":{"/a":{}}}}')]
  ]
  for (const [name, acl] of bad) {
    t.throws(() => compileAcl(acl), { name: 'GuardError', code: 'VJG_CLAIM_INVALID', statusCode: 401 }, name)
  }
})

t.test('compileAcl accepts the good shapes', async t => {
  t.equal(compileAcl({ paths: {} }).rules.length, 0, 'no patterns: nothing granted, but not malformed')
  t.equal(compileAcl(CLIENT_SDK_ACL).rules.length, 10)
  t.equal(compileAcl({ paths: manyPatterns(MAX_PATTERNS) }).rules.length, MAX_PATTERNS)
  t.equal(compileAcl({ paths: { ['/' + 'a'.repeat(511)]: {} } }).rules.length, 1, '512 characters')
  t.equal(compileAcl({ paths: { '/a': {} }, other: 'ignored' }).rules.length, 1, 'other keys are ignored')
  t.equal(compileAcl({ paths: Object.assign(Object.create(null), { '/a': {} }) }).rules.length, 1, 'a null-prototype object')
  t.equal(compileAcl({ paths: { '/a..b/..c': {} } }).rules.length, 1, 'dots inside a segment are not a ".." segment')

  const [rule] = compileAcl({ paths: { '/a': { methods: ['get', 'Post'], filters: { team: 'x' } } } }).rules
  t.strictSame([...rule!.methods!], ['GET', 'POST'], 'methods are upper-cased')
  t.strictSame(rule!.filters, { team: 'x' })
  t.ok(Object.isFrozen(rule))

  const [plain] = compileAcl({ paths: { '/a': { filters: {} } } }).rules
  t.equal(plain!.methods, null, 'no methods: every method')
  t.equal(plain!.filters, null, 'empty filters: no filters')
})

t.test('__proto__ and constructor do not pollute Object.prototype', async t => {
  t.throws(() => compileAcl(JSON.parse('{"paths":{"__proto__":{"polluted":true}}}')), { code: 'VJG_CLAIM_INVALID' })
  t.equal(compileAcl(JSON.parse('{"paths":{"/a":{}},"__proto__":{"polluted":true}}')).rules.length, 1, 'an own __proto__ key of acl is ignored')
  t.equal(({} as Record<string, unknown>).polluted, undefined)

  // a `__proto__` key inside a rule is an own key, not the rule's prototype
  const [rule] = compileAcl(JSON.parse('{"paths":{"/a":{"__proto__":{"methods":["POST"]}}}}')).rules
  t.equal(rule!.methods, null, 'methods comes from own keys only')
  t.equal(({} as Record<string, unknown>).methods, undefined)

  // a pattern may be named /__proto__ and works like any other
  const acl = compileAcl(JSON.parse('{"paths":{"/__proto__":{},"/constructor/**":{}}}'))
  t.strictSame(decide(acl, 'GET', '/__proto__'), { granted: true, grantedBy: '/__proto__' })
  t.strictSame(decide(acl, 'GET', '/constructor/x'), { granted: true, grantedBy: '/constructor/**' })
})

t.test('an already polluted Object.prototype cannot supply methods or filters', async t => {
  const proto = Object.prototype as Record<string, unknown>
  proto.methods = ['DELETE']
  proto.filters = { x: 1 }
  try {
    const [rule] = compileAcl({ paths: { '/a': {} } }).rules
    t.equal(rule!.methods, null)
    t.equal(rule!.filters, null)
  } finally {
    delete proto.methods
    delete proto.filters
  }
})

t.test('decide: pattern, method, path', async t => {
  for (const [label, paths, method, path, expected] of decisions) {
    const acl = compileAcl({ paths })
    const name = `${label}: ${method} ${path} with ${Object.keys(paths).join(' ') || '(none)'}`
    if (expected === DENIED) {
      t.throws(() => decide(acl, method, path), { name: 'GuardError', code: 'VJG_ACL_DENIED', statusCode: DENIED }, `${name} is denied`)
    } else {
      t.strictSame(decide(acl, method, path), { granted: true, grantedBy: expected }, `${name} by ${expected}`)
    }
  }
})

t.test('filters are decided by aclFilter, and only a strict true grants', async t => {
  const acl = compileAcl({ paths: { '/a': { filters: { team: 'red' } } } })
  const claims = { sub: 'alice' }
  const request = { id: 'req-1' }
  const seen: Array<[Readonly<Record<string, unknown>>, AclContext]> = []
  const filter = (result: unknown): AclFilter => (filters, context) => {
    seen.push([filters, context])
    return result as boolean
  }

  t.strictSame(decide(acl, 'GET', '/a', { aclFilter: filter(true), claims, request }), { granted: true, grantedBy: '/a' })
  t.strictSame(seen[0], [{ team: 'red' }, { method: 'GET', path: '/a', claims, request }], 'called with the filters and the context')
  t.equal(seen[0]![1].request, request, 'the very request object')

  for (const result of [false, 1, 'yes', {}, [], null, undefined]) {
    t.throws(() => decide(acl, 'GET', '/a', { aclFilter: filter(result) }), { code: 'VJG_ACL_DENIED', statusCode: 403 }, `${JSON.stringify(result)} does not grant`)
  }

  seen.length = 0
  t.throws(() => decide(acl, 'GET', '/b', { aclFilter: filter(true) }), { code: 'VJG_ACL_DENIED', statusCode: 403 })
  t.equal(seen.length, 0, 'not called when the pattern does not match')
  t.throws(() => decide(acl, 'GET', null, { aclFilter: filter(true) }), { code: 'VJG_ACL_DENIED', statusCode: 403 })
  t.equal(seen.length, 0, 'not called for a null path')

  const boom = new Error('policy store down')
  t.throws(() => decide(acl, 'GET', '/a', { aclFilter: () => { throw boom } }), boom, 'a throwing aclFilter propagates as is')
  let caught: unknown
  try {
    decide(acl, 'GET', '/a', { aclFilter: () => { throw boom } })
  } catch (error) {
    caught = error
  }
  t.equal(caught, boom)
  t.notOk(caught instanceof GuardError)
})

t.test('a root token (no acl claim) is granted everywhere unless requireAcl', async t => {
  t.strictSame(decide(null, 'DELETE', '/v1/accounts'), { granted: true, grantedBy: null })
  t.strictSame(decide(null, 'GET', null), { granted: true, grantedBy: null })
  t.strictSame(decide(null, 'GET', '/a', { requireAcl: false }), { granted: true, grantedBy: null })
  t.throws(() => decide(null, 'GET', '/a', { requireAcl: true }), { name: 'GuardError', code: 'VJG_ACL_DENIED', statusCode: 403, message: /^GET \/a / })
  t.throws(() => decide(null, 'GET', null, { requireAcl: true }), { code: 'VJG_ACL_DENIED', statusCode: 403 })
})

t.test('the 403 names the method and the canonical path, bounded', async t => {
  const acl = compileAcl(CLIENT_SDK_ACL)
  t.throws(() => decide(acl, 'GET', '/v1/accounts'), { message: 'GET /v1/accounts is not granted by the token acl' })
  t.throws(() => decide(acl, 'post', '/v1/accounts'), { message: 'POST /v1/accounts is not granted by the token acl' })
  t.throws(() => decide(acl, 'GET', null), { message: /^GET \(a path outside the acl path space\) / })

  const long = '/v1/' + 'x'.repeat(3000)
  let error: GuardError | undefined
  try {
    decide(acl, 'GET', long)
  } catch (caught) {
    error = caught as GuardError
  }
  t.equal(error?.code, 'VJG_ACL_DENIED')
  t.ok(error!.message.startsWith('GET /v1/xxxx'))
  t.ok(error!.message.length < 260, `${error!.message.length} characters`)

  const emoji = '/' + 'a'.repeat(198) + '😀' + 'b'.repeat(10)
  t.throws(() => decide(acl, 'GET', emoji), { message: /^GET \/a{198}\.\.\. is not granted/ }, 'a surrogate pair is not cut')
})

/** A compiled rule's match, which the public AclRule type leaves out. */
function testOf (rule: AclRule | undefined): MatchRule['test'] | undefined {
  return (rule as MatchRule | undefined)?.test
}

t.test('a pattern is compiled once per compiler (one per verifier), in a bounded cache', async t => {
  const compiler = createAclCompiler()
  t.equal(compiler.patternCount, 0)
  const first = compiler.compileAcl(CLIENT_SDK_ACL)
  t.equal(compiler.patternCount, 10)
  const second = compiler.compileAcl(CLIENT_SDK_ACL)
  t.equal(compiler.patternCount, 10, 'no new entries')
  first.rules.forEach((rule, i) => t.equal(testOf(second.rules[i]), testOf(rule), `${rule.pattern} compiled once`))
  const shared = compiler.compileAcl({ paths: { '/*/users/**': { methods: ['GET'] } } })
  t.equal(testOf(shared.rules[0]), testOf(first.rules[0]), 'shared by rules with other methods')
  const slashed = compiler.compileAcl({ paths: { '/*/users/**/': {} } })
  t.equal(testOf(slashed.rules[0]), testOf(first.rules[0]), 'a pattern with one trailing slash shares the compiled test of the one without')
  t.equal(slashed.rules[0]!.pattern, '/*/users/**/', 'the rule keeps the pattern as the token states it')
  t.equal(compiler.patternCount, 10, 'and takes no entry of its own')

  const other = createAclCompiler()
  t.equal(other.patternCount, 0, 'another compiler (another verifier) starts empty')
  const third = other.compileAcl(CLIENT_SDK_ACL)
  t.not(testOf(third.rules[0]), testOf(first.rules[0]), 'and compiles its own')
  t.strictSame(decide(third, 'GET', '/v1/users'), { granted: true, grantedBy: '/*/users/**' })
  t.equal(compiler.patternCount, 10, 'the first compiler is left as it was')
  t.not(testOf(compileAcl(CLIENT_SDK_ACL).rules[0]), testOf(first.rules[0]), 'compileAcl alone keeps no process-wide cache')

  // fill past the bound: the oldest pattern goes first
  const filled = createAclCompiler()
  const oldest = testOf(filled.compileAcl({ paths: { '/oldest': {} } }).rules[0])
  for (let i = 0; i < PATTERN_CACHE_MAX; i += MAX_PATTERNS) {
    filled.compileAcl({ paths: Object.fromEntries(Array.from({ length: Math.min(MAX_PATTERNS, PATTERN_CACHE_MAX - i) }, (_, j) => [`/fill/${i + j}`, {}])) })
  }
  t.equal(filled.patternCount, PATTERN_CACHE_MAX, 'bounded')
  t.not(testOf(filled.compileAcl({ paths: { '/oldest': {} } }).rules[0]), oldest, 'the oldest was evicted')
  t.equal(filled.patternCount, PATTERN_CACHE_MAX)
})

t.test('a compiled acl is immutable', async t => {
  const acl: CompiledAcl = compileAcl({ paths: { '/a': {} } })
  t.ok(Object.isFrozen(acl))
  t.ok(Object.isFrozen(acl.rules))
  t.throws(() => { (acl.rules as unknown[]).push({}) }, TypeError)
})

t.test("a verified token's acl compiles a pattern when a decision first needs it, into the compiler's bounded cache", async t => {
  const compiler = createAclCompiler()
  const own = (n: number): unknown => JSON.parse(JSON.stringify({ paths: Object.fromEntries(Array.from({ length: 9 }, (_, k) => [`/v1/users/u${n}-${k}/**`, {}])) }))
  const acl = compiler.compileAclClaim(own(0))
  t.equal(compiler.patternCount, 0, 'nothing compiled by verifying the token')
  t.ok(acl.rules.every(rule => !Object.hasOwn(rule, 'test')), 'its rules hold no compiled test')
  t.strictSame(decide(acl, 'GET', '/v1/users/u0-2/x'), { granted: true, grantedBy: '/v1/users/u0-2/**' })
  t.equal(compiler.patternCount, 3, 'the decision compiled the three patterns it tried')
  decide(acl, 'GET', '/v1/users/u0-2/y')
  t.equal(compiler.patternCount, 3, 'and compiles none again')
  t.throws(() => decide(acl, 'GET', '/v1/users/u1-0/x'), { code: 'VJG_ACL_DENIED' })
  t.equal(compiler.patternCount, 9)

  // Many tokens, each with patterns of its own: the cache stays bounded, and every acl still decides.
  const acls = Array.from({ length: Math.ceil(PATTERN_CACHE_MAX / 9) + 200 }, (_, n) => compiler.compileAclClaim(own(n + 1)))
  acls.forEach((each, n) => { decide(each, 'GET', `/v1/users/u${n + 1}-8/x`) })
  t.equal(compiler.patternCount, PATTERN_CACHE_MAX, 'bounded')
  t.strictSame(decide(acls[0]!, 'GET', '/v1/users/u1-8/x'), { granted: true, grantedBy: '/v1/users/u1-8/**' }, 'an acl whose patterns left the cache compiles them again')
})

t.test('compileAclClaim decides the whole table as compileAcl does', async t => {
  for (const [label, paths, method, path, expected] of decisions) {
    const lazy = createAclCompiler().compileAclClaim(JSON.parse(JSON.stringify({ paths })))
    const name = `${label}: ${method} ${path} with ${Object.keys(paths).join(' ') || '(none)'}`
    if (expected === DENIED) t.throws(() => decide(lazy, method, path), { code: 'VJG_ACL_DENIED' }, name)
    else t.strictSame(decide(lazy, method, path), { granted: true, grantedBy: expected }, name)
  }
})

t.test('a remembered acl is a snapshot: changing a claim object later changes no decision', async t => {
  const compiler = createAclCompiler()
  const claim = JSON.parse('{"paths":{"/a/**":{"methods":["GET"]},"/b":{}}}') as { paths: Record<string, unknown> }
  const first = compiler.compileAclClaim(claim)
  delete claim.paths['/b']
  const narrower = compiler.compileAclClaim(JSON.parse('{"paths":{"/a/**":{"methods":["GET"]}}}'))
  t.not(narrower, first, 'a token without /b does not share the acl remembered with /b')
  t.throws(() => decide(narrower, 'GET', '/b'), { code: 'VJG_ACL_DENIED' })
  t.equal(compiler.compileAclClaim(JSON.parse('{"paths":{"/a/**":{"methods":["GET"]},"/b":{}}}')), first, 'the same JSON as the first still shares it')
})
