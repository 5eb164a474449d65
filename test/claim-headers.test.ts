/**
 * `claimHeaders` and `grantedByHeader`: claims of the operator's choosing, and the granting ACL
 * pattern, as headers of a forward-auth grant; a value a header cannot carry refused while
 * verifying; a client's copy refused in every spelling; a name the guard owns refused at
 * registration.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import { forwardAuth, type ForwardAuthOptions } from '../lib/forward-auth.js'
import { patternHeaderValue } from '../lib/claim-headers.js'
import { rawRequest } from './helpers/http.js'
import { keys, NOW_MS, token } from './helpers/keys.js'

const CLAIM_HEADERS = { sub: 'X-User-Id', 'video.role': 'X-Role', tier: 'X-Tier' }

async function listening (options: Partial<ForwardAuthOptions> = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: false })
  await app.register(forwardAuth, { publicKey: keys.publicPem, now: () => NOW_MS, claimHeaders: CLAIM_HEADERS, grantedByHeader: 'X-Acl-Pattern', ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

const check = (method: string, target: string): Record<string, string> => ({ 'X-Forwarded-Method': method, 'X-Forwarded-Uri': target })

t.test('a grant carries the named claims (strings and numbers, nested by path) and the granting pattern', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token({ sub: 'alice', video: { role: 'moderator' }, tier: 3 })
  const res = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...check('GET', '/v1/users/abc') })
  t.equal(res.status, 200, res.body)
  t.equal(res.headers['x-user-id'], 'alice')
  t.equal(res.headers['x-role'], 'moderator', 'a nested claim named by its path')
  t.equal(res.headers['x-tier'], '3', 'a number as its decimal text')
  t.equal(res.headers['x-acl-pattern'], '/*/users/**', 'the pattern that granted')
  t.equal(res.headers['x-vonage-sub'], 'alice', 'the identity headers as before')

  const bare = await rawRequest(port, '/auth', { authorization: `Bearer ${await token({ sub: undefined, acl: undefined })}`, ...check('GET', '/anything') })
  t.equal(bare.status, 200, bare.body)
  for (const name of ['x-user-id', 'x-role', 'x-tier', 'x-acl-pattern']) {
    t.equal(bare.headers[name], '', `${name}: a claim the token lacks (or a root token's pattern) is an empty header, never absent`)
  }
})

t.test('Envoy: a claim header the grant does not set is one Envoy is asked to remove', async t => {
  const { app, port } = await listening({ envoyPathPrefix: '/envoy' })
  t.teardown(() => app.close())
  const res = await rawRequest(port, '/envoy/v1/users/abc', { authorization: `Bearer ${await token({ sub: 'alice' })}` })
  t.equal(res.status, 200, res.body)
  t.equal(res.headers['x-envoy-auth-headers-to-remove'], 'x-role, x-tier')
})

t.test('a named claim a header cannot carry refuses the token while verifying (401 VJG_CLAIM_INVALID)', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const cases: Array<[string, Record<string, unknown>]> = [
    ['a boolean', { tier: true }],
    ['an object', { video: { role: { name: 'x' } } }],
    ['an array', { tier: [1] }],
    ['null', { tier: null }],
    ['a line break', { sub: 'alice\r\nX-Admin: 1' }],
    ['a non-ASCII letter', { sub: 'alicé' }]
  ]
  for (const [name, over] of cases) {
    const res = await rawRequest(port, '/auth', { authorization: `Bearer ${await token(over)}`, ...check('GET', '/v1/users/abc') })
    t.equal(res.status, 401, name)
    t.equal(res.headers['x-vonage-guard-code'], 'VJG_CLAIM_INVALID', name)
    t.equal(res.headers['x-user-id'], undefined, `${name}: nothing granted`)
  }
  // The same check is the verifier's own: the library refuses such a token wherever it verifies.
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, claimHeaders: { tier: 'X-Tier' } })
  await t.rejects(verifier.verify(await token({ tier: false })), { code: 'VJG_CLAIM_INVALID' })
  t.ok(await verifier.verify(await token({ tier: 'gold' })))
})

t.test('a client\'s copy of a claim header is refused in every spelling', async t => {
  const { app, port } = await listening()
  t.teardown(() => app.close())
  const jwt = await token({ sub: 'alice' })
  for (const name of ['X-User-Id', 'x-user-id', 'X_User_Id', 'X.User.Id', 'X-ACL-PATTERN', 'x_acl.pattern', 'X-Role']) {
    const res = await rawRequest(port, '/auth', { authorization: `Bearer ${jwt}`, ...check('GET', '/v1/users/abc'), [name]: 'forged' })
    t.equal(res.status, 400, name)
    t.equal(res.headers['x-vonage-guard-code'], 'VJG_IDENTITY_HEADER', name)
  }
})

t.test('names the guard owns, hop-by-hop and framing headers, and non-claims are refused at registration', async t => {
  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ['an identity header', { claimHeaders: { sub: 'X-Vonage-Sub' } }, /claimHeaders\.sub.*sets or strips/],
    ['a pair header', { claimHeaders: { sub: 'X-Forwarded-Uri' } }, /sets or strips/],
    ['a forwarding header', { claimHeaders: { sub: 'X-Forwarded-For' } }, /sets or strips/],
    ['a URL rewrite header', { claimHeaders: { sub: 'X-Original-URL' } }, /sets or strips/],
    ['a method override', { claimHeaders: { sub: 'X-HTTP-Method-Override' } }, /sets or strips/],
    ['hop-by-hop', { claimHeaders: { sub: 'Connection' } }, /hop-by-hop/],
    ['hop-by-hop', { grantedByHeader: 'Transfer-Encoding' }, /grantedByHeader.*hop-by-hop/],
    ['framing', { claimHeaders: { sub: 'Content-Length' } }, /framing/],
    ['the credential', { claimHeaders: { sub: 'Authorization' } }, /sets or strips/],
    ['the guard\'s code header', { grantedByHeader: 'X-Vonage-Guard-Code' }, /sets or strips/],
    ['a token source header', { tokenSources: [{ header: 'x-token' }], claimHeaders: { sub: 'X-Token' } }, /sets or strips/],
    ['an underscore, folded as a dash', { claimHeaders: { sub: 'X_User' } }, /letters, digits and single dashes/],
    ['a dot', { claimHeaders: { sub: 'X.User' } }, /letters, digits and single dashes/],
    ['an empty name', { claimHeaders: { sub: '' } }, /letters, digits/],
    ['not a string', { claimHeaders: { sub: 1 } }, /letters, digits/],
    ['two claims, one header', { claimHeaders: { sub: 'X-User', jti: 'x-user' } }, /claimHeaders\.jti.*as claimHeaders\.sub does/],
    ['the pattern in a claim\'s header', { claimHeaders: { sub: 'X-User' }, grantedByHeader: 'X-USER' }, /grantedByHeader.*as claimHeaders\.sub does/],
    ['the acl claim', { claimHeaders: { acl: 'X-Acl' } }, /acl claim/],
    ['a path into acl', { claimHeaders: { 'acl.paths': 'X-Acl' } }, /acl claim/],
    ['an empty path step', { claimHeaders: { 'video..role': 'X-Role' } }, /must name a claim/],
    ['the prototype', { claimHeaders: { '__proto__.x': 'X-Role' } }, /must name a claim/],
    ['not an object', { claimHeaders: ['sub'] }, /must be an object/]
  ]
  for (const [name, options, message] of refused) {
    const app = Fastify({ logger: false })
    await t.rejects(app.register(forwardAuth, { publicKey: keys.publicPem, ...options } as ForwardAuthOptions).ready(), { name: 'TypeError', message }, name)
    await app.close()
  }
})

t.test('the granting pattern travels percent-encoded where a header could not carry it', async t => {
  const table: Array<[string, string]> = [
    ['/*/users/**', '/*/users/**'],
    ['/v1/a b/**', '/v1/a%20b/**'],
    ['/v1/100%/**', '/v1/100%25/**'],
    ['/v1/café/**', '/v1/caf%C3%A9/**'],
    ['/v1/\r\n/**', '/v1/%0D%0A/**']
  ]
  for (const [pattern, value] of table) {
    t.equal(patternHeaderValue(pattern), value, pattern)
    t.equal(decodeURIComponent(value), pattern, `${pattern}: decodes back`)
  }
})
