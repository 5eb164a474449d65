import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { GuardError, errors, challenge, isGuardError, problemBody, type ErrorCode } from '../lib/errors.js'

/** The whole table, pinned: code -> status, the challenge's error (RFC 6750; none: realm only), the title, the check. */
const TABLE: Record<ErrorCode, [number, string | null, string, string]> = {
  VJG_TOKEN_MISSING: [401, null, 'Unauthorized', 'token'],
  VJG_TOKEN_MALFORMED: [401, 'invalid_token', 'Unauthorized', 'format'],
  VJG_TOKEN_AMBIGUOUS: [400, 'invalid_request', 'Bad Request', 'token'],
  VJG_ALG_NOT_ALLOWED: [401, 'invalid_token', 'Unauthorized', 'header'],
  VJG_SIGNATURE_INVALID: [401, 'invalid_token', 'Unauthorized', 'signature'],
  VJG_KEY_UNKNOWN: [401, 'invalid_token', 'Unauthorized', 'key'],
  VJG_CLAIM_MISSING: [401, 'invalid_token', 'Unauthorized', 'required'],
  VJG_CLAIM_INVALID: [401, 'invalid_token', 'Unauthorized', 'claim'],
  VJG_APPLICATION_MISMATCH: [401, 'invalid_token', 'Unauthorized', 'application'],
  VJG_TOKEN_EXPIRED: [401, 'invalid_token', 'Unauthorized', 'lifetime'],
  VJG_TOKEN_NOT_YET_VALID: [401, 'invalid_token', 'Unauthorized', 'lifetime'],
  VJG_LIFETIME_EXCEEDED: [401, 'invalid_token', 'Unauthorized', 'lifetime'],
  VJG_LIFETIME_TOO_SHORT: [401, 'invalid_token', 'Unauthorized', 'lifetime'],
  VJG_TOKEN_REPLAYED: [401, 'invalid_token', 'Unauthorized', 'replay'],
  VJG_TOKEN_REVOKED: [401, 'invalid_token', 'Unauthorized', 'revocation'],
  VJG_ACL_DENIED: [403, 'insufficient_scope', 'Forbidden', 'acl'],
  VJG_PATH_INVALID: [400, 'invalid_request', 'Bad Request', 'path'],
  VJG_FORWARD_INVALID: [400, 'invalid_request', 'Bad Request', 'request'],
  VJG_IDENTITY_HEADER: [400, 'invalid_request', 'Bad Request', 'request'],
  VJG_METHOD_OVERRIDE: [400, 'invalid_request', 'Bad Request', 'request'],
  VJG_URL_REWRITE: [400, 'invalid_request', 'Bad Request', 'request'],
  VJG_HEADERS_TOO_MANY: [431, 'invalid_request', 'Request Header Fields Too Large', 'request'],
  VJG_UNAVAILABLE: [503, null, 'Service Unavailable', 'dependency']
}

t.test('the code table, pinned: status, challenge, title and check of every code', async t => {
  t.strictSame(Object.keys(errors).sort(), Object.keys(TABLE).sort(), 'no code added or removed without this table')
  for (const [code, [status, kind, title, check]] of Object.entries(TABLE) as Array<[ErrorCode, typeof TABLE[ErrorCode]]>) {
    const error = new GuardError(code)
    t.equal(error.statusCode, status, `${code}: status`)
    t.equal(error.status, status, `${code}: status for Express`)
    t.equal(error.error, title, `${code}: title`)
    t.equal(problemBody(error, 'req-1').title, title, `${code}: problem title`)
    t.equal(error.check, check, `${code}: check`)
    t.equal(error.message, errors[code].message, `${code}: the table's message by default`)
    t.ok(error.message.length > 10, `${code}: a message a person can act on`)
    t.equal(error.headers['www-authenticate'], kind === null
      ? 'Bearer realm="vonage-jwt-guard"'
      : `Bearer realm="vonage-jwt-guard", error="${kind}", error_description="${errors[code].message.replace(/"/g, "'")}"`, `${code}: challenge`)
  }
})

t.test('challenge shapes follow RFC 6750', async t => {
  t.equal(challenge('VJG_TOKEN_MISSING', 'r', 'x'), 'Bearer realm="r"')
  t.equal(challenge('VJG_TOKEN_EXPIRED', 'r', 'gone "now"'), `Bearer realm="r", error="invalid_token", error_description="gone 'now'"`)
  const e = new GuardError('VJG_ACL_DENIED', 'GET /x').withRealm('api')
  t.equal(e.statusCode, 403)
  t.equal(e.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope", error_description="GET /x"')
})

t.test('a refusal carries what it compared as fields', async t => {
  const e = new GuardError('VJG_TOKEN_EXPIRED', 'words', { claim: 'exp', limit: 100, actual: 200 })
  t.match(e, { check: 'lifetime', claim: 'exp', limit: 100, actual: 200, expected: undefined })
  t.equal(new GuardError('VJG_TOKEN_MALFORMED', 'x', { check: 'header', claim: 'typ' }).check, 'header', 'a refusal may name another check than its code\'s')
})

t.test('isGuardError recognizes the errors of another installed copy of the package', async t => {
  const dir = t.testdir({ a: {}, b: {} })
  const built = new URL('../dist/errors.js', import.meta.url)
  copyFileSync(built, join(dir, 'a', 'errors.js'))
  copyFileSync(built, join(dir, 'b', 'errors.js'))
  const a = await import(pathToFileURL(join(dir, 'a', 'errors.js')).href) as typeof import('../lib/errors.js')
  const b = await import(pathToFileURL(join(dir, 'b', 'errors.js')).href) as typeof import('../lib/errors.js')
  const fromB = new b.GuardError('VJG_ACL_DENIED')
  t.notOk(fromB instanceof a.GuardError, 'two copies, two classes: instanceof cannot tell')
  t.ok(a.isGuardError(fromB), 'copy a recognizes copy b\'s error')
  t.ok(b.isGuardError(new a.GuardError('VJG_TOKEN_MISSING')), 'and the other way round')
  t.ok(isGuardError(fromB), 'so does this copy')
  const others: Array<[string, unknown]> = [['an Error', new Error('x')], ['a look-alike object', { code: 'VJG_ACL_DENIED', statusCode: 403 }], ['null', null],
    ['undefined', undefined], ['a code string', 'VJG_ACL_DENIED'], ['a null-prototype object', Object.create(null)]]
  for (const [name, value] of others) t.notOk(a.isGuardError(value), `${name} is not one`)
})
