/**
 * Property-based fuzzing with fast-check. Invariants:
 * - every outcome of the verifier, the ACL and the HTTP pipeline is a success or a coded
 *   GuardError (4xx, or 503) with a challenge: never an uncoded throw, a 5xx or a hang;
 * - jose's compactVerify and our signature layer agree on every signature verdict over canonical
 *   inputs (the inputs where we are deliberately stricter are excluded, each named below).
 *
 * Bounded so `npm test` stays fast. `VJG_FUZZ_RUNS` sets the run count (`npm run fuzz` runs
 * 20,000); `VJG_FUZZ_SEED` replays a failure fast-check reported.
 */
import { sign as cryptoSign } from 'node:crypto'
import fc from 'fast-check'
import { compactVerify } from 'jose'
import t from 'tap'
import { canonicalPath, createVerifier, errors, GuardError } from '../lib/index.js'
import { verifySignature } from '../lib/signature.js'
import { preparePublicKey } from '../lib/keys.js'
import { checkHeader, decodeJsonObject, splitCompact } from '../lib/token.js'
import { buildApp } from './helpers/app.js'
import { APP_ID, b64, keys, NOW, NOW_MS, otherKeys, signRaw } from './helpers/keys.js'

const RUNS = Number(process.env.VJG_FUZZ_RUNS ?? 150)
const SEED = process.env.VJG_FUZZ_SEED === undefined ? undefined : Number(process.env.VJG_FUZZ_SEED)
/** RSA signing is the slow part of a run: properties that sign per run get a share of the count. */
const SIGNED_RUNS = Math.max(20, Math.floor(RUNS / 3))
const HANG_MS = 2000

function params (numRuns: number): fc.Parameters<unknown> {
  return { numRuns, ...(SEED === undefined ? {} : { seed: SEED }) }
}

/** Rejects when a promise does not settle in time: a hang is a failure, not a slow test. */
function withinTime<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`hang: ${what}`)), HANG_MS) })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The invariant of every refusal: a GuardError from the one table, with its challenge. */
function assertCoded (error: unknown, where: string): GuardError {
  if (!(error instanceof GuardError)) throw new Error(`${where}: an uncoded throw: ${String(error)}`)
  const spec = errors[error.code]
  if (spec === undefined) throw new Error(`${where}: unknown code ${error.code}`)
  if (error.statusCode !== spec.statusCode || !(error.statusCode === 503 || (error.statusCode >= 400 && error.statusCode < 500))) {
    throw new Error(`${where}: status ${error.statusCode} for ${error.code}`)
  }
  if (!/^Bearer realm="[^"]*"/.test(error.headers['www-authenticate'] ?? '')) throw new Error(`${where}: no challenge`)
  return error
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const b64urlText = fc.string({ unit: fc.constantFrom(...B64URL), maxLength: 80 })
const anyText = fc.string({ unit: 'binary', maxLength: 120 })

/** Strings that look like tokens, and strings that do not. */
const tokenish = fc.oneof(
  anyText,
  fc.tuple(b64urlText, b64urlText, b64urlText).map(parts => parts.join('.')),
  fc.array(fc.oneof(b64urlText, fc.constantFrom('', '=', '==', '.', ' ', '+', '/')), { maxLength: 8 }).map(parts => parts.join('.')),
  fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.uint8Array({ maxLength: 300 })).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${Buffer.from(s).toString('base64url')}`)
)

const numericish = fc.oneof(
  fc.integer({ min: NOW - 100_000, max: NOW + 100_000 }),
  fc.double(),
  fc.constantFrom(0, -1, 1.5, 2 ** 53, 2 ** 60, Number.MAX_SAFE_INTEGER, NOW, NOW - 10, NOW + 10),
  fc.integer().map(String),
  fc.jsonValue()
)

const PATH_UNIT = fc.constantFrom('v1', 'users', 'abc', 'x.y', ...'/abc.%2eE5Cf0A~-_!$&\'()*+,;=:@?#\\ é'.split(''), '%2e', '%2F', '%5C', '%25', '%C3%A9', '%EF%BC%8E', '%C0%AF', '..', '/', '**', '*')
const pathish = fc.string({ unit: PATH_UNIT, maxLength: 40 }).map(s => `/${s}`)

const pattern = fc.oneof(
  pathish,
  fc.array(fc.constantFrom('*', '**', 'v1', 'users', '.', '..', 'a?', '[ab]', '{a,b}', '!x', '+(a)', '#', '%41', '\\'), { maxLength: 6 }).map(s => `/${s.join('/')}`),
  anyText
)

/** Patterns a real token would carry: segments, `*` and `**`. */
const cleanPattern = fc.array(fc.constantFrom('v1', 'users', 'abc', 'x.y', 'é', '*', '**'), { minLength: 1, maxLength: 5 }).map(s => `/${s.join('/')}`)

const rule = fc.oneof(
  fc.record({
    methods: fc.oneof(fc.array(fc.constantFrom('GET', 'get', 'POST', 'HEAD', 'DELETE', '', '*')), fc.jsonValue()),
    filters: fc.oneof(fc.constant({}), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }), fc.jsonValue())
  }, { requiredKeys: [] }),
  fc.jsonValue()
)

const acl = fc.oneof(
  { arbitrary: fc.record({ paths: fc.dictionary(cleanPattern, fc.record({ methods: fc.array(fc.constantFrom('GET', 'get', 'POST', 'HEAD')) }, { requiredKeys: [] }), { maxKeys: 6 }) }), weight: 3 },
  { arbitrary: fc.record({ paths: fc.dictionary(pattern, rule, { maxKeys: 6 }) }), weight: 2 },
  { arbitrary: fc.record({ paths: fc.jsonValue() }), weight: 1 },
  { arbitrary: fc.jsonValue(), weight: 1 }
)

/** Mostly the valid value, sometimes a hostile one: so that many tokens get past the claims. */
const mostly = <T, U>(valid: T, hostile: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
  fc.oneof({ arbitrary: fc.constant(valid), weight: 12 }, { arbitrary: hostile, weight: 1 })

/** Valid claims with any subset replaced by hostile values; optional claims sometimes present. */
const claimSet = fc.record({
  application_id: mostly(APP_ID, fc.jsonValue()),
  iat: mostly(NOW - 10, numericish),
  exp: mostly(NOW + 600, numericish),
  jti: mostly('j', fc.jsonValue()),
  nbf: mostly(undefined, numericish),
  sub: mostly(undefined, fc.jsonValue()),
  acl: fc.oneof({ arbitrary: acl, weight: 4 }, { arbitrary: fc.constant(undefined), weight: 1 }),
  __proto__: fc.jsonValue(),
  extra: fc.jsonValue()
}, { requiredKeys: ['application_id', 'iat', 'exp', 'jti', 'nbf', 'sub', 'acl'] })

/** Raw JSON number texts JSON.stringify never writes: they must not crash the claim checks. */
const rawNumber = fc.constantFrom('1e309', '-1e309', '-0', '1E400', '0.0000001', '1795435190.999999999', '17954351900000000000000')

const header = fc.oneof(
  { arbitrary: fc.constant({ alg: 'RS256', typ: 'JWT' }), weight: 4 },
  { arbitrary: fc.record({ alg: fc.oneof(fc.constantFrom('RS256', 'none', 'HS256', 'RS384'), fc.jsonValue()), typ: fc.jsonValue(), kid: fc.jsonValue(), crit: fc.jsonValue(), b64: fc.jsonValue() }, { requiredKeys: [] }), weight: 1 }
)

// ---------------------------------------------------------------------------------------------

t.test('arbitrary tokens: success or a coded refusal, never a throw or a hang', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  await fc.assert(fc.asyncProperty(tokenish, async (token) => {
    await withinTime(verifier.verify(token).catch(error => assertCoded(error, 'verify')), 'verify')
  }), params(RUNS))
  t.pass(`${RUNS} runs`)
})

t.test('signed tokens with hostile headers and claims: success or coded, and the ACL answers coded too', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false, aclFilter: (filters) => Object.keys(filters).length % 2 === 0 })
  let verified = 0
  const refusedBy: Record<string, number> = {}
  await fc.assert(fc.asyncProperty(header, claimSet, mostly(null, rawNumber), fc.constantFrom('GET', 'HEAD', 'POST', 'delete'), pathish, async (head, claims, raw, method, path) => {
    let payload = JSON.stringify(claims)
    if (raw !== null) payload = payload.replace(/"iat":[^,}]*/, `"iat":${raw}`)
    const input = `${b64(head)}.${b64(payload)}`
    const token = `${input}.${cryptoSign('sha256', Buffer.from(input), keys.privateKey).toString('base64url')}`
    let result
    try {
      result = await withinTime(verifier.verify(token), 'verify')
    } catch (error) {
      const code = assertCoded(error, 'verify').code
      refusedBy[code] = (refusedBy[code] ?? 0) + 1
      return
    }
    verified++
    let canonical: string
    try {
      canonical = canonicalPath(path)
    } catch (error) {
      if (assertCoded(error, 'canonicalPath').code !== 'VJG_PATH_INVALID') throw new Error('canonicalPath: wrong code')
      return
    }
    try {
      const decision = verifier.authorize(result, method, canonical)
      const patterns = Object.keys((result.claims.acl as { paths?: object } | undefined)?.paths ?? {})
      if (decision.grantedBy !== null && !patterns.includes(decision.grantedBy)) throw new Error('granted by a pattern the token does not hold')
      if (decision.grantedBy === null && result.claims.acl !== undefined) throw new Error('a token with an acl granted as root')
    } catch (error) {
      const coded = assertCoded(error, 'authorize')
      if (coded.code !== 'VJG_ACL_DENIED' && coded.code !== 'VJG_CLAIM_INVALID') throw new Error(`authorize: ${coded.code}`)
    }
  }), params(SIGNED_RUNS))
  t.comment(`refused: ${JSON.stringify(refusedBy)}`)
  t.ok(verified > SIGNED_RUNS / 10, `${verified} of ${SIGNED_RUNS} tokens verified: the ACL was exercised`)
})

t.test('one token, one string: every edit of a valid token is refused', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false })
  const original = signRaw({ alg: 'RS256', typ: 'JWT' }, { application_id: APP_ID, iat: NOW - 10, exp: NOW + 600, jti: 'j' })
  await verifier.verify(original) // the unedited token verifies
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), char: fc.constantFrom(...B64URL, '.', '=', ' ', '+', '/') }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), char: fc.constantFrom(...B64URL, '.', '=') }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), char: fc.constant('') }),
    // The last character of a part, where unused base64url bits live.
    fc.record({ kind: fc.constant('tail' as const), at: fc.nat(2), char: fc.constantFrom(...B64URL) })
  )
  await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
    let token = original
    for (const { kind, at, char } of edits) {
      if (kind === 'tail') {
        const ends = [token.indexOf('.') - 1, token.lastIndexOf('.') - 1, token.length - 1]
        const i = ends[at]!
        token = token.slice(0, i) + char + token.slice(i + 1)
        continue
      }
      const i = at % (token.length + 1)
      token = kind === 'insert' ? token.slice(0, i) + char + token.slice(i) : token.slice(0, i) + char + token.slice(i + (kind === 'replace' || kind === 'delete' ? 1 : 0))
    }
    if (token === original) return
    // Every other string is refused, the ones that decode to the same bytes included (a
    // non-canonical last character, padding): a lax decoder would accept those.
    const outcome = await withinTime(verifier.verify(token).then(() => 'accepted', (error: unknown) => assertCoded(error, 'verify').code), 'verify')
    if (outcome === 'accepted') throw new Error(`an edited token verified: ${JSON.stringify(edits)}`)
  }), params(RUNS * 2))
  t.pass()
})

t.test('arbitrary paths: canonical or VJG_PATH_INVALID, and a canonical path has no ambiguity left', async t => {
  await fc.assert(fc.property(fc.oneof(pathish, anyText), (target) => {
    let path: string
    try {
      path = canonicalPath(target)
    } catch (error) {
      if (assertCoded(error, 'canonicalPath').code !== 'VJG_PATH_INVALID') throw new Error('wrong code')
      return
    }
    if (!path.startsWith('/')) throw new Error(`not rooted: ${path}`)
    if (path !== '/' && path.endsWith('/')) throw new Error(`trailing slash kept: ${path}`)
    const parts = path.split('/').slice(1)
    if (path !== '/' && parts.some(s => s === '' || s === '.' || s === '..')) throw new Error(`ambiguous segment in ${path}`)
    if (/[\\\p{Cc}]/u.test(path)) throw new Error(`control or backslash in ${JSON.stringify(path)}`)
    if (parts.length > 64) throw new Error('too many segments')
    // A path made only of unreserved characters is its own canonical form.
    if (/^[\w\-.~/]*$/.test(path)) {
      if (canonicalPath(path) !== path) throw new Error(`not idempotent: ${path}`)
    }
  }), params(RUNS * 4))
  t.pass()
})

t.test('differential: an accepted target means the same to WHATWG URL and to decodeURIComponent', async t => {
  let accepted = 0
  await fc.assert(fc.property(pathish, (target) => {
    let path: string
    try {
      path = canonicalPath(target)
    } catch {
      return
    }
    accepted++
    const raw = target.split('?')[0]!
    // WHATWG URL (browsers, undici, many proxies) resolves dot segments, `%2e` included, turns
    // `\` into `/` and re-encodes some characters: for an accepted target it must change nothing.
    const pathname = new URL(target, 'http://h').pathname
    if (pathname !== raw) throw new Error(`WHATWG URL reads ${JSON.stringify(raw)} as ${JSON.stringify(pathname)}`)
    // Decoding segment by segment (what a router does to a parameter) gives the canonical path.
    const segments = raw.split('/').slice(1)
    if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop()
    const decoded = '/' + segments.map(decodeURIComponent).join('/')
    if (decoded !== path) throw new Error(`decodeURIComponent reads ${JSON.stringify(raw)} as ${JSON.stringify(decoded)}, we as ${JSON.stringify(path)}`)
  }), params(RUNS * 4))
  t.ok(accepted > 0, `${accepted} accepted targets compared`)
})

t.test('over HTTP: arbitrary Authorization values and targets never give a 5xx, and every VJG refusal carries its challenge', async t => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const authorization = fc.oneof(
    tokenish.map(s => `Bearer ${s}`),
    fc.string({ unit: fc.constantFrom(...'Bearer bearer BASIC . - _ = , " \\ \t'.split(''), ...B64URL.slice(0, 10).split('')), maxLength: 60 })
  )
  const target = fc.oneof(pathish, fc.string({ unit: fc.constantFrom(...'/abc%2e5FfC0.;?#~'.split('')), maxLength: 30 }).map(s => `/${s}`))
  let sent = 0
  let notSent = 0
  await fc.assert(fc.asyncProperty(authorization, target, async (auth, url) => {
    // Header values the HTTP layer itself cannot carry are not the guard's input.
    if (!/^[\t\x20-\x7e]*$/.test(auth)) return
    let res
    try {
      res = await withinTime(app.inject({ url, headers: { authorization: auth } }), 'inject')
    } catch (error) {
      // light-my-request refuses some URLs before sending (it validates like a client).
      if (error instanceof Error && /hang/.test(error.message)) throw error
      notSent++
      return
    }
    sent++
    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${url}: ${res.body}`)
    if (res.statusCode === 200) return
    const body = res.json() as { code?: string }
    if (body.code?.startsWith('VJG_') === true) {
      if (!/^Bearer realm="vonage-jwt-guard"/.test(String(res.headers['www-authenticate']))) throw new Error(`no challenge for ${body.code}`)
      if (errors[body.code as keyof typeof errors].statusCode !== res.statusCode) throw new Error(`status ${res.statusCode} for ${body.code}`)
    } else if (res.statusCode !== 400 && res.statusCode !== 404) {
      throw new Error(`${res.statusCode} ${res.body}`)
    }
  }), params(RUNS))
  t.ok(sent > notSent * 4, `${sent} requests sent, ${notSent} refused by the client`)
})

t.test('over HTTP: cookie, query and custom-header token sources never give a 5xx', async t => {
  const app = await buildApp({ tokenSources: [{ cookie: 'vjg' }, { query: 'token' }, { header: 'x-token', scheme: null }] })
  t.teardown(() => app.close())
  const text = fc.string({ unit: fc.constantFrom(...B64URL.slice(0, 8), '.', ';', '=', '"', ' ', '%', '&', ',', 'vjg', 'token'), maxLength: 40 })
  const statuses: Record<number, number> = {}
  await fc.assert(fc.asyncProperty(fc.option(text), fc.option(text), fc.option(fc.oneof(text, tokenish)), async (cookie, query, header) => {
    const headers: Record<string, string> = {}
    if (cookie !== null) headers.cookie = cookie
    if (header !== null && /^[\x20-\x7e]*$/.test(header)) headers['x-token'] = header
    const url = query === null ? '/v1/users' : `/v1/users?${query}`
    let res
    try {
      res = await withinTime(app.inject({ url, headers }), 'inject')
    } catch (error) {
      if (error instanceof Error && /hang/.test(error.message)) throw error
      return
    }
    statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
    if (res.statusCode >= 500) throw new Error(`${res.statusCode}: ${res.body}`)
    if (res.statusCode !== 200 && !/^Bearer realm="vonage-jwt-guard"/.test(String(res.headers['www-authenticate']))) {
      throw new Error(`${res.statusCode} without a challenge: ${res.body}`)
    }
  }), params(RUNS))
  t.ok((statuses[401] ?? 0) > 0, `statuses: ${JSON.stringify(statuses)}`)
})

// ---------------------------------------------------------------------------------------------
// Differential: jose is the reference for every signature verdict.
//
// Excluded on purpose, since we are stricter there than jose and a differential would only
// re-find the rule: non-canonical base64url (unused trailing bits set, `=` padding: the
// generator only writes canonical base64url), duplicate member names and a BOM in the header
// (headers come from JSON.stringify), `crit` and `b64` (refused outright), `typ` other than JWT
// and `kid` not a short string (refused as malformed), an empty payload (not compact JWS for us).

const prepared = preparePublicKey(keys.publicPem, 'publicKey')
const RESERVED = new Set(['alg', 'crit', 'b64', 'typ', 'kid', 'jwk', 'jku', 'x5u', 'x5c', 'zip', 'enc'])

function ourVerdict (token: string): boolean {
  try {
    const parts = splitCompact(token, 1 << 20)
    const alg = checkHeader(decodeJsonObject(parts.header, 'header'), new Set(['RS256']))
    return verifySignature(alg, Buffer.from(parts.signingInput, 'latin1'), parts.signature, prepared)
  } catch (error) {
    assertCoded(error, 'signature layer')
    return false
  }
}

async function joseVerdict (token: string): Promise<boolean> {
  try {
    await compactVerify(token, keys.publicKey, { algorithms: ['RS256'] })
    return true
  } catch {
    return false
  }
}

type Mutation = 'none' | 'other key' | 'flip signature bit' | 'flip payload bit' | 'alg RS384' | 'truncate signature' | 'extend signature' | 'swap payload'

t.test('jose compactVerify and our signature layer agree on every verdict', async t => {
  const extraHeader = fc.dictionary(fc.string({ maxLength: 8 }).filter(k => !RESERVED.has(k) && k !== '__proto__'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
  const mutation = fc.constantFrom<Mutation>('none', 'none', 'other key', 'flip signature bit', 'flip payload bit', 'alg RS384', 'truncate signature', 'extend signature', 'swap payload')
  const verdicts = { true: 0, false: 0 }
  await fc.assert(fc.asyncProperty(extraHeader, fc.uint8Array({ minLength: 1, maxLength: 200 }), mutation, fc.nat(), async (extra, bytes, change, position) => {
    const head = { ...extra, alg: change === 'alg RS384' ? 'RS384' : 'RS256' }
    let payload = Buffer.from(bytes)
    const input = `${b64(head)}.${payload.toString('base64url')}`
    let signature = cryptoSign(change === 'alg RS384' ? 'sha384' : 'sha256', Buffer.from(input), change === 'other key' ? otherKeys.privateKey : keys.privateKey)
    if (change === 'flip signature bit') signature[position % signature.length]! ^= 1 << (position % 8)
    if (change === 'truncate signature') signature = signature.subarray(0, position % signature.length)
    if (change === 'extend signature') signature = Buffer.concat([Buffer.alloc(1), signature])
    if (change === 'flip payload bit') {
      payload = Buffer.from(payload)
      payload[position % payload.length]! ^= 1 << (position % 8)
    }
    if (change === 'swap payload') payload = Buffer.concat([payload, Buffer.from('x')])
    const token = `${b64(head)}.${payload.toString('base64url')}.${signature.toString('base64url')}`
    const ours = ourVerdict(token)
    const theirs = await joseVerdict(token)
    verdicts[String(ours) as 'true' | 'false']++
    if (ours !== theirs) throw new Error(`disagreement (${change}): ours ${String(ours)}, jose ${String(theirs)}`)
  }), params(SIGNED_RUNS))
  t.ok(verdicts.true > 0 && verdicts.false > 0, `both verdicts seen: ${JSON.stringify(verdicts)}`)
})
