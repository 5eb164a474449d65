/**
 * Interop with Vonage's own Node SDK: a token made by @vonage/jwt's tokenGenerate (jsonwebtoken
 * underneath) passes on an ACL path and is refused with 403 outside it.
 */
import { tokenGenerate } from '@vonage/jwt'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import { bearer, buildApp } from './helpers/app.js'
import { APP_ID, CLIENT_ACL, keys } from './helpers/keys.js'

// The SDK stamps iat with the real clock, so these tests use the real clock too.
const options = { now: Date.now }

t.test('a @vonage/jwt token is accepted on an ACL path and refused outside it', async t => {
  const sdkToken = tokenGenerate(APP_ID, keys.privatePem, { sub: 'alice', acl: CLIENT_ACL })
  const app = await buildApp({ ...options, applicationId: APP_ID })

  const granted = await app.inject({ url: '/v1/users/alice/conversations', headers: bearer(sdkToken) })
  t.equal(granted.statusCode, 200)
  const { auth } = granted.json()
  t.equal(auth.claims.application_id, APP_ID)
  t.equal(auth.claims.sub, 'alice')
  t.equal(auth.grantedBy, '/*/users/**')
  t.equal(auth.expiresAt, auth.claims.iat + 900, 'the SDK default ttl is 15 minutes')

  const denied = await app.inject({ url: '/v1/calls', headers: bearer(sdkToken) })
  t.equal(denied.statusCode, 403)
  t.equal(denied.json().code, 'VJG_ACL_DENIED')
  t.match(denied.headers['www-authenticate'], /^Bearer realm="vonage-jwt-guard", error="insufficient_scope"/)
  await app.close()
})

t.test('a @vonage/jwt token without acl is a root token, and refused when an ACL is required', async t => {
  const sdkToken = tokenGenerate(APP_ID, keys.privatePem)
  const verifier = createVerifier({ publicKey: keys.publicPem, ...options })
  const verified = await verifier.verify(sdkToken)
  t.same(verifier.authorize(verified, 'POST', '/v0.3/calls'), { granted: true, grantedBy: null })

  const strict = createVerifier({ publicKey: keys.publicPem, requireAcl: true, ...options })
  t.throws(() => strict.authorize(verified, 'GET', '/v1/users'), { code: 'VJG_ACL_DENIED', statusCode: 403 })
})

t.test('a @vonage/jwt token with a long ttl is capped at 24 hours', async t => {
  const sdkToken = tokenGenerate(APP_ID, keys.privatePem, { ttl: 7 * 86_400 })
  const verifier = createVerifier({ publicKey: keys.publicPem, ...options })
  const verified = await verifier.verify(sdkToken)
  t.equal(verified.expiresAt, (verified.claims.iat as number) + 86_400)
  const strict = createVerifier({ publicKey: keys.publicPem, lifetimePolicy: 'reject', ...options })
  await t.rejects(strict.verify(sdkToken), { code: 'VJG_LIFETIME_EXCEEDED', statusCode: 401 })
})
