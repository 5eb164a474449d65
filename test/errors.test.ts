import t from 'tap'
import { GuardError, errors, challenge } from '../lib/errors.js'

t.test('every code has a status and a message', async t => {
  for (const [code, spec] of Object.entries(errors)) {
    t.ok(spec.statusCode >= 400, code)
    t.ok(spec.message.length > 10, code)
  }
})

t.test('challenge shapes follow RFC 6750', async t => {
  t.equal(challenge('VJG_TOKEN_MISSING', 'r', 'x'), 'Bearer realm="r"')
  t.equal(challenge('VJG_TOKEN_EXPIRED', 'r', 'gone "now"'), `Bearer realm="r", error="invalid_token", error_description="gone 'now'"`)
  const e = new GuardError('VJG_ACL_DENIED', 'GET /x').withRealm('api')
  t.equal(e.statusCode, 403)
  t.equal(e.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope", error_description="GET /x"')
})
