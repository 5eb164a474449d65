import t from 'tap'
import { canonicalPath, isCanonicalRoutePath, MAX_PATH_LENGTH, MAX_SEGMENTS } from '../lib/canonical-path.js'
import { GuardError } from '../lib/errors.js'

const REFUSED = 400

const segments = (n: number): string => Array.from({ length: n }, (_, i) => `/s${i}`).join('')

/**
 * [raw request target, canonical path or 400], in the spirit of minimatch's patterns.js.
 * Each row says one thing; the comment says what.
 */
const cases: Array<[string, string | typeof REFUSED]> = [
  // plain paths, the fast path
  ['/', '/'],
  ['/v1/users', '/v1/users'],
  ['/v1/users/', '/v1/users'], // one trailing slash dropped
  ['/a/b/c/', '/a/b/c'],
  ['/v0.3/conversations/CON-1/events', '/v0.3/conversations/CON-1/events'],
  ['/...', '/...'], // three dots is a name, not a dot segment
  ['/a./b..', '/a./b..'],
  ['/.well-known/jwks.json', '/.well-known/jwks.json'],
  ['/@', '/@'],
  ['/a:b', '/a:b'],
  ['/a+b', '/a+b'],
  ["/!$&'()*,=", "/!$&'()*,="],
  ['/users/alice@example.com', '/users/alice@example.com'],
  ['/A-Z_a~z.0-9', '/A-Z_a~z.0-9'],

  // the query is dropped and never checked
  ['/v1/users?page=2', '/v1/users'],
  ['/?a=b', '/'],
  ['/v1/users/?page=2', '/v1/users'],
  ['/a?b/../c', '/a'],
  ['/a?%zz\\ é;', '/a'],
  ['/a?', '/a'],
  ['/?', '/'],

  // fragments: refused anywhere, the query included
  ['/a#b', REFUSED],
  ['/#', REFUSED],
  ['/a?b#c', REFUSED],
  ['/a?#', REFUSED],

  // not origin-form
  ['', REFUSED],
  ['*', REFUSED],
  ['a/b', REFUSED],
  ['http://a/b', REFUSED],
  ['https://a.example/v1/users', REFUSED],
  ['//', REFUSED],
  ['//evil.example/v1/users', REFUSED],
  ['\\a', REFUSED],

  // empty and dot segments
  ['/a//b', REFUSED],
  ['/a//', REFUSED],
  ['/a/./b', REFUSED],
  ['/a/../b', REFUSED],
  ['/.', REFUSED],
  ['/..', REFUSED],
  ['/a/.', REFUSED],
  ['/a/..', REFUSED],
  ['/a/./', REFUSED],
  ['/../', REFUSED],

  // encoded dots, separators, backslash, percent, semicolon
  ['/%2e', REFUSED],
  ['/%2e%2e/x', REFUSED],
  ['/%2E%2E', REFUSED],
  ['/a/%2e%2E/b', REFUSED],
  ['/a%2e', REFUSED],
  ['/a%2Fb', REFUSED],
  ['/a%2fb', REFUSED],
  ['/%2e%2E%2f', REFUSED],
  ['/a%5Cb', REFUSED],
  ['/a%5cb', REFUSED],
  ['/a%25', REFUSED],
  ['/a%252e', REFUSED], // a double encoding of "."
  ['/a%3Bjsessionid=1', REFUSED],

  // encoded control characters
  ['/a%00', REFUSED],
  ['/a%0a', REFUSED],
  ['/a%0D%0A', REFUSED],
  ['/a%1F', REFUSED],
  ['/a%7F', REFUSED],
  ['/a%C2%85', REFUSED], // U+0085, a C1 control (NEL)

  // encoded characters that need no escaping have two spellings: refused
  ['/%41', REFUSED],
  ['/a%61', REFUSED],
  ['/a%30', REFUSED],
  ['/a%2D', REFUSED],
  ['/a%5F', REFUSED],
  ['/a%7E', REFUSED],

  // malformed escapes
  ['/a%', REFUSED],
  ['/a%2', REFUSED],
  ['/a%2/b', REFUSED],
  ['/a%zz', REFUSED],
  ['/a%%32%65', REFUSED],
  ['/%uFF0E', REFUSED], // IIS-style %u escapes are not percent-escapes

  // escapes that are fine, decoded
  ['/a%20b', '/a b'],
  ['/a/%20/', '/a/ '],
  ['/a%C3%A9', '/aé'],
  ['/a%c3%a9', '/aé'], // hex digits are case-insensitive
  ['/a%E4%B8%AD', '/a中'],
  ['/%E2%82%AC', '/€'],
  ['/%F0%9F%98%80', '/😀'],
  ['/a%21', '/a!'], // reserved characters may be encoded; the ACL sees them decoded
  ['/a%40b', '/a@b'],
  ['/a%3F', '/a?'],
  ['/a%23', '/a#'],
  ['/a%22b', '/a"b'],
  ['/%EF%BB%BFa', '/\uFEFFa'], // a leading BOM is kept, not silently stripped

  // invalid UTF-8 once decoded
  ['/a%C0%AE', REFUSED], // overlong "."
  ['/a%C0%AF', REFUSED], // overlong "/"
  ['/a%E0%80%AE', REFUSED], // three-byte overlong "."
  ['/a%FF', REFUSED],
  ['/a%80', REFUSED], // lone continuation byte
  ['/a%C3', REFUSED], // truncated
  ['/a%C3/b', REFUSED], // truncated at the segment end
  ['/a%E2%82', REFUSED],
  ['/a%ED%A0%80', REFUSED], // UTF-16 surrogate U+D800
  ['/a%F4%90%80%80', REFUSED], // above U+10FFFF

  // fullwidth and compatibility characters: valid UTF-8, kept as they are, unless the
  // segment would become a dot segment or hold a separator under NFKC
  ['/a%EF%BC%8Eb', '/a．b'],
  ['/%EF%BC%8E', REFUSED], // U+FF0E, "." under NFKC
  ['/%EF%BC%8E%EF%BC%8E/x', REFUSED], // ".." under NFKC
  ['/a/%EF%BC%8E.', REFUSED],
  ['/%E2%80%A4', REFUSED], // U+2024 ONE DOT LEADER, "." under NFKC
  ['/a%EF%BC%8Fb', REFUSED], // U+FF0F FULLWIDTH SOLIDUS, "/" under NFKC
  ['/a%EF%BC%BCb', REFUSED], // U+FF3C FULLWIDTH REVERSE SOLIDUS

  // characters outside RFC 3986 path characters
  ['/a;jsessionid=1', REFUSED],
  ['/a\\b', REFUSED],
  ['/a\\..\\b', REFUSED],
  ['/a b', REFUSED],
  ['/a\tb', REFUSED],
  ['/a\r\nb', REFUSED],
  ['/a\u0000b', REFUSED],
  ['/café', REFUSED], // raw non-ASCII
  ['/a\uFF0Eb', REFUSED],
  ['/a"b', REFUSED],
  ['/a<b', REFUSED],
  ['/a>b', REFUSED],
  ['/a|b', REFUSED],
  ['/a^b', REFUSED],
  ['/a`b', REFUSED],
  ['/a{b', REFUSED],
  ['/a}b', REFUSED],
  ['/a[b', REFUSED],
  ['/a]b', REFUSED],

  // limits
  ['/' + 'a'.repeat(MAX_PATH_LENGTH - 1), '/' + 'a'.repeat(MAX_PATH_LENGTH - 1)],
  ['/' + 'a'.repeat(MAX_PATH_LENGTH), REFUSED],
  ['/' + 'a'.repeat(MAX_PATH_LENGTH - 2) + '/', '/' + 'a'.repeat(MAX_PATH_LENGTH - 2)],
  ['/a?' + 'q'.repeat(5000), '/a'], // the limit is on the path, the query is not matched
  [segments(MAX_SEGMENTS), segments(MAX_SEGMENTS)],
  [segments(MAX_SEGMENTS) + '/', segments(MAX_SEGMENTS)], // a trailing slash is not a segment
  [segments(MAX_SEGMENTS + 1), REFUSED],
  [segments(MAX_SEGMENTS - 1) + '/%20', segments(MAX_SEGMENTS - 1) + '/ '],
  [segments(MAX_SEGMENTS) + '/%20', REFUSED]
]

t.test('table of request targets', async t => {
  t.ok(cases.length >= 80, `${cases.length} cases`)
  for (const [target, expected] of cases) {
    const name = JSON.stringify(target.length > 60 ? `${target.slice(0, 60)}...(${target.length})` : target)
    if (expected === REFUSED) {
      t.throws(() => canonicalPath(target), { name: 'GuardError', code: 'VJG_PATH_INVALID', statusCode: REFUSED }, `${name} is refused`)
    } else {
      t.equal(canonicalPath(target), expected, `${name} -> ${JSON.stringify(expected.length > 60 ? expected.slice(0, 60) : expected)}`)
    }
  }
})

t.test('a refusal is a GuardError whose message is short and does not echo the input', async t => {
  const junk = 'x'.repeat(1500)
  for (const target of [`/${junk}\\`, `/${junk}%2F`, `/${junk}%C3`, `/${junk}é`, `/${junk}//`, `/${junk}/../`]) {
    let caught: unknown
    try {
      canonicalPath(target)
    } catch (error) {
      caught = error
    }
    t.ok(caught instanceof GuardError, 'GuardError')
    const error = caught as GuardError
    t.equal(error.code, 'VJG_PATH_INVALID')
    t.equal(error.statusCode, 400)
    t.ok(error.message.length < 160, error.message)
    t.notOk(error.message.includes('xxxxxxxx'), 'the input is not echoed')
  }
})

t.test('reasons are specific', async t => {
  const reasons: Array<[string, RegExp]> = [
    ['*', /origin-form/],
    ['//a', /"\/\/"/],
    ['/a#b', /"#"/],
    ['/a//b', /empty segment at offset 3/],
    ['/a/../b', /"\.\." segment at offset 3/],
    ['/a%2Fb', /"%2F" at offset 2 encodes "\/"/],
    ['/a%41', /needs no escaping/],
    ['/a%00', /control character/],
    ['/a%zz', /malformed percent-escape at offset 2/],
    ['/a%FF', /not valid UTF-8/],
    ['/a\\b', /"\\" \(U\+005C\) at offset 2/],
    ['/a b', /U\+0020 at offset 2/],
    ['/café', /U\+00E9 at offset 4/],
    ['/%EF%BC%8E', /Unicode normalization/],
    [segments(MAX_SEGMENTS + 1), /more than 64 segments/],
    ['/' + 'a'.repeat(MAX_PATH_LENGTH), /longer than 2048/]
  ]
  for (const [target, reason] of reasons) {
    t.throws(() => canonicalPath(target), { code: 'VJG_PATH_INVALID', message: reason }, reason.source)
  }
})

t.test('a non-string target is refused, not crashed on', async t => {
  t.throws(() => canonicalPath(undefined as unknown as string), { code: 'VJG_PATH_INVALID', statusCode: 400 })
})

/** A small deterministic generator, so a failure reproduces. */
function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 0x100000000
  }
}

t.test('fuzz: anything accepted is decoded, dot-free and agrees with decodeURIComponent', async t => {
  const alphabet = ['/', '/', '.', 'a', 'b', '%', '2', 'e', 'F', 'C', '3', 'A', '9', '%20', '%C3%A9', '%2e', '%2F', '?', '#', ';', '\\', ' ', '~', '@']
  const next = random(20240611)
  let accepted = 0
  for (let i = 0; i < 20000; i++) {
    let target = '/'
    const length = Math.floor(next() * 12)
    for (let j = 0; j < length; j++) target += alphabet[Math.floor(next() * alphabet.length)]
    let canonical: string
    try {
      canonical = canonicalPath(target)
    } catch (error) {
      if (!(error instanceof GuardError) || error.code !== 'VJG_PATH_INVALID') {
        t.fail(`unexpected error for ${JSON.stringify(target)}: ${String(error)}`)
        return
      }
      continue
    }
    accepted++
    const raw = target.split('?')[0]!
    const expected = decodeURIComponent(raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw)
    const sound = canonical === expected &&
      !target.includes('#') &&
      (canonical === '/' || !canonical.endsWith('/')) &&
      !canonical.includes('//') &&
      !canonical.split('/').some(segment => segment === '.' || segment === '..')
    if (!sound) {
      t.fail(`${JSON.stringify(target)} -> ${JSON.stringify(canonical)}`)
      return
    }
  }
  t.ok(accepted > 1000, `${accepted} accepted`)
})

t.test('isCanonicalRoutePath: a route the guard mounts itself is canonical, of at least one segment', async t => {
  const rows: Array<[unknown, boolean]> = [
    ['/healthz', true], ['/envoy/check', true], ['/', false], ['/healthz/', false], ['/a?b', false], ['/a#b', false],
    ['/a/../b', false], ['/a%2Fb', false], ['healthz', false], ['', false], [42, false], [undefined, false]
  ]
  for (const [value, expected] of rows) t.equal(isCanonicalRoutePath(value), expected, JSON.stringify(value) ?? 'undefined')
})
