/**
 * createVerifier(): the claim and lifetime rules of SPEC 2.1 as a table at the boundaries,
 * the verified-token cache, and option validation.
 */
import t from 'tap'
import { createVerifier, type GuardOptions, type VerifiedToken } from '../lib/index.js'
import { normalizeOptions } from '../lib/options.js'
import { APP_ID, claims, keys, NOW, NOW_MS, signRaw, token } from './helpers/keys.js'

type Expect = 'ok' | `VJG_${string}`

interface LifetimeCase {
  name: string
  claims: Record<string, unknown>
  options?: Partial<GuardOptions>
  expect: Expect
  /** The effective expiry when the token passes. */
  expiresAt?: number
  /** Claims the verified token must hand out as they came. */
  kept?: Record<string, unknown>
}

const lifetimeCases: LifetimeCase[] = [
  { name: 'exp given', claims: { iat: NOW - 10, exp: NOW + 60 }, expect: 'ok', expiresAt: NOW + 60 },
  { name: 'no exp: iat + 900', claims: { iat: NOW - 10, exp: undefined }, expect: 'ok', expiresAt: NOW + 890 },
  { name: 'no exp: defaultLifetime honoured', claims: { iat: NOW - 10, exp: undefined }, options: { defaultLifetime: 60 }, expect: 'ok', expiresAt: NOW + 50 },
  { name: 'no exp, 930 s old: within tolerance', claims: { iat: NOW - 929, exp: undefined }, expect: 'ok', expiresAt: NOW - 29 },
  { name: 'no exp, 930 s old: expired at the tolerance edge', claims: { iat: NOW - 930, exp: undefined }, expect: 'VJG_TOKEN_EXPIRED' },
  { name: 'exp just past, inside tolerance', claims: { iat: NOW - 100, exp: NOW - 29 }, expect: 'ok', expiresAt: NOW - 29 },
  { name: 'exp past by the tolerance exactly', claims: { iat: NOW - 100, exp: NOW - 30 }, expect: 'VJG_TOKEN_EXPIRED' },
  { name: 'tolerance 0', claims: { iat: NOW - 100, exp: NOW }, options: { clockTolerance: 0 }, expect: 'VJG_TOKEN_EXPIRED' },
  { name: 'iat 30 s ahead: tolerated', claims: { iat: NOW + 30, exp: NOW + 600 }, expect: 'ok', expiresAt: NOW + 600 },
  { name: 'iat 31 s ahead', claims: { iat: NOW + 31, exp: NOW + 600 }, expect: 'VJG_TOKEN_NOT_YET_VALID' },
  { name: 'nbf 31 s ahead', claims: { iat: NOW - 1, nbf: NOW + 31 }, expect: 'VJG_TOKEN_NOT_YET_VALID' },
  { name: 'nbf 30 s ahead: tolerated', claims: { iat: NOW - 1, nbf: NOW + 30 }, expect: 'ok' },
  { name: 'cap: a week-long token lives 24 h from iat', claims: { iat: NOW - 10, exp: NOW + 7 * 86_400 }, expect: 'ok', expiresAt: NOW - 10 + 86_400 },
  { name: 'cap: maxLifetime honoured', claims: { iat: NOW - 10, exp: NOW + 7 * 86_400 }, options: { maxLifetime: 3600 }, expect: 'ok', expiresAt: NOW - 10 + 3600 },
  { name: 'cap: past iat + 24 h', claims: { iat: NOW - 86_431, exp: NOW + 86_400 }, expect: 'VJG_TOKEN_EXPIRED' },
  { name: 'reject: exactly 24 h is fine', claims: { iat: NOW - 10, exp: NOW - 10 + 86_400 }, options: { lifetimePolicy: 'reject' }, expect: 'ok' },
  { name: 'reject: 24 h + 1 s', claims: { iat: NOW - 10, exp: NOW - 10 + 86_401 }, options: { lifetimePolicy: 'reject' }, expect: 'VJG_LIFETIME_EXCEEDED' },
  { name: 'minLifetime off by default: exp = iat', claims: { iat: NOW - 10, exp: NOW - 10 }, expect: 'ok', expiresAt: NOW - 10 },
  { name: 'minLifetime: exp - iat just under', claims: { iat: NOW - 10, exp: NOW + 19 }, options: { minLifetime: 30 }, expect: 'VJG_LIFETIME_TOO_SHORT' },
  { name: 'minLifetime: exp - iat exactly at it', claims: { iat: NOW - 10, exp: NOW + 20 }, options: { minLifetime: 30 }, expect: 'ok', expiresAt: NOW + 20 },
  { name: 'minLifetime: a string exp is measured as read', claims: { iat: NOW - 10, exp: String(NOW + 19) }, options: { minLifetime: 30 }, expect: 'VJG_LIFETIME_TOO_SHORT' },
  { name: 'minLifetime: no exp lives defaultLifetime', claims: { iat: NOW - 10, exp: undefined }, options: { minLifetime: 900 }, expect: 'ok', expiresAt: NOW + 890 },
  { name: 'minLifetime: no iat states no lifetime', claims: { iat: undefined, exp: NOW + 5 }, options: { minLifetime: 30, requiredClaims: ['application_id'] }, expect: 'ok', expiresAt: NOW + 5 },
  { name: 'minLifetime: a millisecond exp is long enough, then capped', claims: { iat: NOW - 10, exp: (NOW + 60) * 1000 }, options: { minLifetime: 30 }, expect: 'ok', expiresAt: NOW - 10 + 86_400 },
  { name: 'no iat (not required), exp near', claims: { iat: undefined, exp: NOW + 60 }, options: { requiredClaims: ['application_id'] }, expect: 'ok', expiresAt: NOW + 60 },
  { name: 'no iat (not required), exp beyond maxLifetime', claims: { iat: undefined, exp: NOW + 2 * 86_400 }, options: { requiredClaims: ['application_id'] }, expect: 'VJG_LIFETIME_EXCEEDED' },
  { name: 'neither iat nor exp', claims: { iat: undefined, exp: undefined }, options: { requiredClaims: [] }, expect: 'VJG_CLAIM_MISSING' },
  { name: 'exp before iat', claims: { iat: NOW, exp: NOW - 1 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'nbf after exp', claims: { iat: NOW - 5, nbf: NOW + 10, exp: NOW + 5 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'iat 0', claims: { iat: 0 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'iat negative', claims: { iat: -1 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'exp 2^53', claims: { exp: 2 ** 53 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'iat fractional is a NumericDate', claims: { iat: NOW - 0.5 }, expect: 'ok' },
  { name: 'iat null', claims: { iat: null }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'iat boolean', claims: { iat: true }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'application_id a number', claims: { application_id: 42 }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'jti over 256 chars', claims: { jti: 'j'.repeat(257) }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'sub an object', claims: { sub: { name: 'x' } }, expect: 'VJG_CLAIM_INVALID' },
  { name: 'custom required claim missing', claims: {}, options: { requiredClaims: ['application_id', 'iat', 'jti', 'sub'] }, expect: 'VJG_CLAIM_MISSING' },
  { name: 'applicationId allow-list, string', claims: {}, options: { applicationId: APP_ID }, expect: 'ok' },
  { name: 'applicationId allow-list, miss', claims: {}, options: { applicationId: ['x', 'y'] }, expect: 'VJG_APPLICATION_MISMATCH' },
  { name: 'unknown claims are kept and ignored', claims: { custom: { deep: [1, 2] }, 'x-tenant': 'acme', n: 0 }, expect: 'ok', expiresAt: NOW + 890, kept: { custom: { deep: [1, 2] }, 'x-tenant': 'acme', n: 0 } }
]

t.test('lifetime and claims at the boundaries', async t => {
  for (const c of lifetimeCases) {
    const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, ...c.options })
    const result = verifier.verify(await token(c.claims))
    if (c.expect === 'ok') {
      const verified = await result
      if (c.expiresAt !== undefined) t.equal(verified.expiresAt, c.expiresAt, `${c.name}: expiresAt`)
      else t.pass(c.name)
      for (const [name, value] of Object.entries(c.kept ?? {})) t.strictSame(verified.claims[name], value, `${c.name}: ${name} handed out as it came`)
    } else {
      await t.rejects(result, { code: c.expect, statusCode: 401 }, c.name)
    }
  }
})

interface StringDateCase {
  name: string
  claims: Record<string, unknown>
  options?: Partial<GuardOptions>
  /** 'ok', or the 401 VJG_CLAIM_INVALID message it must give. */
  expect: 'ok' | RegExp
  expiresAt?: number
}

const NAMES_OPTION = /allowNumericStringDates/
const OUT_OF_RANGE = /out of the NumericDate range/

/** Under `vonage` (the default profile) a string of decimal digits is that NumericDate; nothing else is. */
const stringDateCases: StringDateCase[] = [
  { name: 'exp as in Vonage\'s guide', claims: { exp: String(NOW + 60) }, expect: 'ok', expiresAt: NOW + 60 },
  { name: 'iat as in a Vonage walkthrough, no exp', claims: { iat: String(NOW - 5), exp: undefined }, expect: 'ok', expiresAt: NOW + 895 },
  { name: 'iat, exp and nbf all strings', claims: { iat: String(NOW - 5), nbf: String(NOW - 5), exp: String(NOW + 60) }, expect: 'ok', expiresAt: NOW + 60 },
  { name: 'a string exp is capped like a number', claims: { exp: String(NOW + 7 * 86_400) }, expect: 'ok', expiresAt: NOW - 10 + 86_400 },
  { name: 'a string exp in milliseconds is capped too', claims: { exp: String((NOW + 60) * 1000) }, expect: 'ok', expiresAt: NOW - 10 + 86_400 },
  { name: 'a string exp before iat', claims: { exp: String(NOW - 20) }, expect: /before "iat"/ },
  { name: 'leading zero', claims: { exp: `0${NOW + 60}` }, expect: NAMES_OPTION },
  { name: '"0"', claims: { iat: '0' }, expect: OUT_OF_RANGE },
  { name: '"00"', claims: { iat: '00' }, expect: NAMES_OPTION },
  { name: '16 digits, 2^53', claims: { exp: String(2 ** 53) }, expect: OUT_OF_RANGE },
  { name: '17 digits', claims: { exp: '1' + '0'.repeat(16) }, expect: OUT_OF_RANGE },
  { name: '400 digits (Infinity)', claims: { exp: '9'.repeat(400) }, expect: OUT_OF_RANGE },
  { name: 'empty string', claims: { exp: '' }, expect: NAMES_OPTION },
  { name: 'exponent', claims: { exp: '1e10' }, expect: NAMES_OPTION },
  { name: 'fraction', claims: { exp: `${NOW + 60}.0` }, expect: NAMES_OPTION },
  { name: 'sign', claims: { exp: `+${NOW + 60}` }, expect: NAMES_OPTION },
  { name: 'negative', claims: { exp: '-1' }, expect: NAMES_OPTION },
  { name: 'leading space', claims: { exp: ` ${NOW + 60}` }, expect: NAMES_OPTION },
  { name: 'trailing newline', claims: { exp: `${NOW + 60}\n` }, expect: NAMES_OPTION },
  { name: 'hexadecimal', claims: { exp: '0x6b03f340' }, expect: NAMES_OPTION },
  { name: 'fullwidth digits', claims: { exp: '１７９５４３５２６０' }, expect: NAMES_OPTION },
  { name: 'a date string', claims: { exp: '2026-11-23T12:01:00Z' }, expect: NAMES_OPTION },
  { name: 'off: digits are refused, naming the option', claims: { exp: String(NOW + 60) }, options: { allowNumericStringDates: false }, expect: /set allowNumericStringDates: true/ },
  { name: 'off: another string is refused, naming the option', claims: { exp: 'soon' }, options: { allowNumericStringDates: false }, expect: /allowNumericStringDates is off/ },
  { name: 'a number is still a number when off', claims: { exp: NOW + 60 }, options: { allowNumericStringDates: false }, expect: 'ok', expiresAt: NOW + 60 }
]

t.test('numeric string dates: decimal digits only, read once, handed out as numbers', async t => {
  for (const c of stringDateCases) {
    const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, ...c.options })
    const result = verifier.verify(await token(c.claims))
    if (c.expect === 'ok') {
      const verified = await result
      if (c.expiresAt !== undefined) t.equal(verified.expiresAt, c.expiresAt, `${c.name}: expiresAt`)
      for (const name of ['iat', 'exp', 'nbf']) {
        const value = (verified.claims as Record<string, unknown>)[name]
        if (value !== undefined) t.equal(typeof value, 'number', `${c.name}: claims.${name} is handed out as a number`)
        if (typeof c.claims[name] === 'string') t.equal(value, Number(c.claims[name]), `${c.name}: claims.${name} is the number read`)
      }
    } else {
      await t.rejects(result, { code: 'VJG_CLAIM_INVALID', statusCode: 401, message: c.expect }, c.name)
    }
  }
})

t.test('1e309 (Infinity once parsed) is refused, though jose accepts it', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const tok = signRaw({ alg: 'RS256' }, `{"application_id":"${APP_ID}","iat":${NOW},"jti":"j","exp":1e309}`)
  await t.rejects(verifier.verify(tok), { code: 'VJG_CLAIM_INVALID', message: /NumericDate/ })
})

t.test('claims are trusted only after the signature verifies', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  // An expired payload with a bad signature is a signature failure, not an expiry.
  const tok = await token({ iat: NOW - 5000, exp: NOW - 4000 })
  await t.rejects(verifier.verify(`${tok.slice(0, -4)}AAAA`), { code: 'VJG_SIGNATURE_INVALID' })
})

t.test('verified claims are frozen: a handler cannot change what the cache serves', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const tok = await token({ acl: { paths: { '/a/**': { methods: ['GET'] } } } })
  const once = await verifier.verify(tok)
  t.ok(Object.isFrozen(once.claims), 'seen once (not cached): frozen at the top')
  t.throws(() => { (once.claims as Record<string, unknown>).sub = 'admin' })
  const kept = await verifier.verify(tok)
  const paths = (kept.claims.acl as { paths: Record<string, { methods: string[] }> }).paths
  t.ok(Object.isFrozen(kept.claims), 'seen twice (cached from now on): frozen')
  t.ok(Object.isFrozen(paths), 'deeply')
  t.throws(() => { paths['/a/**']?.methods.push('POST') }, 'an inner array too')
  t.equal(await verifier.verify(tok), kept, 'the frozen one is what the cache serves')
})

t.test('the verified-token cache', async t => {
  let clock = NOW_MS
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => clock })
  const tok = await token({ iat: NOW - 10, exp: NOW + 100 })
  await verifier.verify(tok)
  const first = await verifier.verify(tok)
  t.equal(await verifier.verify(tok), first, 'kept from its second sighting: a hit returns the same verified token')

  clock = (NOW + 129) * 1000
  t.equal(await verifier.verify(tok), first, 'still served inside the tolerance')
  clock = (NOW + 130) * 1000
  await t.rejects(verifier.verify(tok), { code: 'VJG_TOKEN_EXPIRED' }, 'never served past the effective expiry')

  clock = (NOW - 60) * 1000
  await t.rejects(verifier.verify(tok), { code: 'VJG_TOKEN_NOT_YET_VALID' }, 'not served before it is valid either')
})

t.test('the cache is bounded and can be turned off', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: { max: 2 } })
  const tokens = await Promise.all([token(), token(), token()])
  /** Two sightings: kept. */
  const keep = async (tok: string): Promise<VerifiedToken> => {
    await verifier.verify(tok)
    return await verifier.verify(tok)
  }
  const a = await keep(tokens[0]!)
  t.equal(await verifier.verify(tokens[0]!), a, 'kept')
  await keep(tokens[1]!)
  await keep(tokens[2]!)
  t.not(await verifier.verify(tokens[0]!), a, 'the oldest entry was evicted and verified again')

  const uncached = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false })
  const b = await uncached.verify(tokens[1]!)
  t.not(await uncached.verify(tokens[1]!), b, 'cache: false verifies every time')
})

t.test('authorize(): ACL decision on a verified token', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const verified = await verifier.verify(await token())
  t.same(verifier.authorize(verified, 'GET', '/v1/users/abc'), { granted: true, grantedBy: '/*/users/**' })
  t.throws(() => verifier.authorize(verified, 'GET', '/v1/calls'), { code: 'VJG_ACL_DENIED', statusCode: 403, message: /GET \/v1\/calls/ })
  const root = await verifier.verify(await token({ acl: undefined }))
  t.same(verifier.authorize(root, 'DELETE', '/anything'), { granted: true, grantedBy: null })
})

t.test('verify() input that is not a token string', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  for (const bad of ['', 42, null, undefined, {}, 'a.b', `${'a'.repeat(9000)}.b.c`]) {
    await t.rejects(verifier.verify(bad as never), { code: 'VJG_TOKEN_MALFORMED', statusCode: 401 }, String(bad).slice(0, 20))
  }
  await t.rejects(verifier.verify(signRaw({ alg: 'RS256' }, claims()).replace(/.$/, 'B')), { code: /VJG_(TOKEN_MALFORMED|SIGNATURE_INVALID)/ })
})

t.test('bad options throw a TypeError naming the option', async t => {
  const key = { publicKey: keys.publicPem }
  const cases: Array<[string, Record<string, unknown>]> = [
    ['options', null as never],
    ['clockTolerance', { ...key, clockTolerance: 301 }],
    ['clockTolerance', { ...key, clockTolerance: -1 }],
    ['clockTolerance', { ...key, clockTolerance: '30' }],
    ['maxLifetime', { ...key, maxLifetime: 86_401 }],
    ['defaultLifetime', { ...key, defaultLifetime: 0 }],
    ['defaultLifetime', { ...key, defaultLifetime: 7200, maxLifetime: 3600 }],
    ['lifetimePolicy', { ...key, lifetimePolicy: 'maybe' }],
    ['algorithms', { ...key, algorithms: [] }],
    ['algorithms', { ...key, algorithms: ['NONE'] }],
    ['algorithms', { ...key, algorithms: ['HS256'] }],
    ['algorithms', { ...key, algorithms: ['ES256'] }],
    ['applicationId', { ...key, applicationId: '' }],
    ['requiredClaims', { ...key, requiredClaims: 'jti' }],
    ['allowNumericStringDates', { ...key, allowNumericStringDates: 'yes' }],
    ['minLifetime', { ...key, minLifetime: -1 }],
    ['minLifetime', { ...key, minLifetime: 1.5 }],
    ['minLifetime', { ...key, minLifetime: '30' }],
    ['minLifetime', { ...key, minLifetime: 901 }],
    ['minLifetime', { ...key, minLifetime: 120, defaultLifetime: 60 }],
    ['minLifetime', { ...key, minLifetime: 7200, defaultLifetime: 3600, maxLifetime: 3600 }],
    ['requireAcl', { ...key, requireAcl: 1 }],
    ['aclPath', { ...key, aclPath: 'api' }],
    ['aclPath', { ...key, aclPath: '/api/' }],
    ['aclFilter', { ...key, aclFilter: true }],
    ['tokenSources', { ...key, tokenSources: [] }],
    ['tokenSources[0]', { ...key, tokenSources: [{ body: 'token' }] }],
    ['tokenSources[0].header', { ...key, tokenSources: [{ header: 'bad header' }] }],
    ['getToken', { ...key, getToken: 'authorization' }],
    ['maxTokenLength', { ...key, maxTokenLength: 10 }],
    ['cache', { ...key, cache: true }],
    ['cache.max', { ...key, cache: { max: 0 } }],
    ['errorFormat', { ...key, errorFormat: 'xml' }],
    ['realm', { ...key, realm: 'a"b' }],
    ['now', { ...key, now: 5 }],
    ['profile', { ...key, profile: 'twilio' }],
    ['clocktolerance', { ...key, clocktolerance: 5 }]
  ]
  for (const [option, options] of cases) {
    t.throws(() => createVerifier(options as never), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option }, `${option}: ${JSON.stringify(options?.[option] ?? null)}`)
  }
})

t.test('defaultAcl: compiled once at registration, checked like an acl claim', async t => {
  const defaultAcl = { paths: { '/session/**': {} as Record<string, unknown> } }
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, defaultAcl })
  // Later changes to the object given do nothing: the option was read once.
  defaultAcl.paths['/**'] = {}
  const rootless = await verifier.verify(await token({ acl: undefined }))
  t.same(verifier.authorize(rootless, 'GET', '/session/abc'), { granted: true, grantedBy: '/session/**' })
  t.throws(() => verifier.authorize(rootless, 'GET', '/v1/users'), { code: 'VJG_ACL_DENIED', statusCode: 403, message: 'GET /v1/users is not granted by defaultAcl (the token has no acl claim)' })
  const own = await verifier.verify(await token())
  t.throws(() => verifier.authorize(own, 'GET', '/session/abc'), { code: 'VJG_ACL_DENIED', message: 'GET /session/abc is not granted by the token acl' }, 'a token with an acl is judged by its own')
  t.equal(rootless.claims.acl, undefined, 'the claims stay as the token had them')

  const bad: Array<[string, unknown]> = [
    ['a string', '/session/**'],
    ['paths an array', { paths: ['/session/**'] }],
    ['a pattern without a slash', { paths: { 'session/**': {} } }],
    ['a pattern with %', { paths: { '/a%2F': {} } }],
    ['methods a string', { paths: { '/a': { methods: 'GET' } } }],
    ['a function inside', { paths: { '/a': { methods: ['GET'], filters: { f: () => true } } } }],
    ['129 patterns', { paths: Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`/p${i}`, {}])) }]
  ]
  for (const [name, value] of bad) {
    t.throws(() => createVerifier({ publicKey: keys.publicPem, defaultAcl: value as never }), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: 'defaultAcl' }, name)
  }
  t.throws(() => createVerifier({ publicKey: keys.publicPem, requireAcl: true, defaultAcl: { paths: { '/a': {} } } }), { code: 'VJG_INVALID_OPTION', option: 'defaultAcl' }, 'beside requireAcl')
  t.ok(createVerifier({ publicKey: keys.publicPem, requireAcl: true, defaultAcl: null }), 'null beside requireAcl is no contradiction')
  t.equal(normalizeOptions({ publicKey: keys.publicPem }).defaultAcl, null, 'vonage: none, a token without acl is root')
  t.equal(normalizeOptions({ publicKey: keys.publicPem, profile: 'vonage-video' }).defaultAcl?.rules[0]?.pattern, '/session/**', 'vonage-video: /session/**')
  t.equal(normalizeOptions({ publicKey: keys.publicPem, profile: 'vonage-video', requireAcl: true }).defaultAcl, null, 'requireAcl drops the profile default')
})
