/**
 * verify --openapi: what a token, or an --acl before anything is minted, grants of every
 * operation of OpenAPI documents; and aclCoverage(), the same from the library.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import $RefParser from '@apidevtools/json-schema-ref-parser'
import t from 'tap'
import { aclCoverage } from 'vonage-jwt-guard'
import { CLIENT_ACL, keys, otherKeys } from '../../test/helpers/keys.js'
import { liveToken, run } from './helpers/bin.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/openapi/', import.meta.url))
const CONVERSATION = join(FIXTURES, 'conversation.yaml')
const CALLS = join(FIXTURES, 'calls.json')

/** operationId -> the pattern granting it (null: not granted), for the Client SDK ACL over the fixtures. */
const CLIENT_SDK_GRANTS: Array<[string, string, string, string | null]> = [
  ['GET', '/v1/users', 'listUsers', '/*/users/**'],
  ['POST', '/v1/users', 'createUser', '/*/users/**'],
  ['GET', '/v1/users/{user_id}', 'getUser', '/*/users/**'],
  ['DELETE', '/v1/users/{user_id}', 'deleteUser', '/*/users/**'],
  ['PATCH', '/v1/users/{user_id}', 'updateUser', '/*/users/**'],
  ['GET', '/v1/users/{user_id}/conversations', 'listUserConversations', '/*/users/**'],
  ['GET', '/v1/conversations', 'listConversations', '/*/conversations/**'],
  ['POST', '/v1/conversations', 'createConversation', '/*/conversations/**'],
  ['GET', '/v1/conversations/{conversation_id}', 'getConversation', '/*/conversations/**'],
  ['DELETE', '/v1/conversations/{conversation_id}', 'deleteConversation', '/*/conversations/**'],
  ['GET', '/v1/status', 'getStatus', null],
  ['GET', '/v1/legacy/export', 'exportLegacy', null],
  ['GET', '/v1/calls', 'listCalls', null],
  ['POST', '/v1/calls', 'createCall', null],
  ['GET', '/v1/calls/{uuid}', 'getCall', null]
]

t.test('verify --acl --openapi --json: every operation, granted or not, and by what', async t => {
  const result = await run(['verify', '--acl', JSON.stringify(CLIENT_ACL), '--openapi', CONVERSATION, '--base-path', '/v1', '--openapi', CALLS, '--json'])
  t.equal(result.code, 0)
  const { operations } = JSON.parse(result.stdout) as { operations: Array<{ method: string, path: string, operationId: string, granted: boolean, grantedBy: string | null }> }
  t.same(operations, CLIENT_SDK_GRANTS.map(([method, path, operationId, grantedBy]) => ({ method, path, operationId, granted: grantedBy !== null, grantedBy })))
})

t.test('verify --acl --openapi: the table', async t => {
  const acl = { paths: { '/*/users/*': { methods: ['GET'] }, '/*/calls/**': {} } }
  const result = await run(['verify', '--acl', JSON.stringify(acl), '--openapi', CONVERSATION, '--openapi', CALLS])
  t.equal(result.code, 0)
  t.match(result.stdout, /conversation\.yaml at \/v0\.1: 1 of 12 operations granted/, 'mounted at its servers[0] path without --base-path')
  t.match(result.stdout, /calls\.json at \/v1\/calls: 3 of 3 operations granted/)
  t.match(result.stdout, /\n {2}GET {5}\/v0\.1\/users\/\{user_id\} +getUser +\/\*\/users\/\*\n/, 'a path parameter tested with its documented example')
  t.match(result.stdout, /\n {2}DELETE {2}\/v0\.1\/users\/\{user_id\} +deleteUser +- {2}not granted\n/, 'a method the rule does not list')
  t.match(result.stdout, /in all: 4 of 15 operations granted\n$/)
})

t.test('verify TOKEN --openapi: the verifier decides each row; a refused token grants nothing', async t => {
  const token = await liveToken({ acl: { paths: { '/*/conversations/*': {} } } })
  const result = await run(['verify', token, '--public-key', keys.publicPem, '--openapi', CONVERSATION, '--base-path', '/v1', '--json'])
  t.equal(result.code, 0)
  const granted = (JSON.parse(result.stdout) as { operations: Array<{ operationId: string, granted: boolean }> }).operations.filter(o => o.granted).map(o => o.operationId)
  t.same(granted, ['getConversation', 'deleteConversation'])

  const table = await run(['verify', token, '--public-key', keys.publicPem, '--openapi', CONVERSATION])
  t.equal(table.code, 0)
  t.match(table.stdout, /conversation\.yaml at \/v0\.1: 2 of 12 operations granted/)

  const forged = await liveToken({}, otherKeys.privateKey)
  const refused = await run(['verify', forged, '--public-key', keys.publicPem, '--openapi', CONVERSATION])
  t.equal(refused.code, 1)
  t.match(refused.stdout, /FAIL {2}signature .*\[VJG_SIGNATURE_INVALID\]/)

  const root = await liveToken({ acl: undefined })
  const rootTable = await run(['verify', root, '--public-key', keys.publicPem, '--openapi', CALLS])
  t.match(rootTable.stdout, /3 of 3 operations granted/)
  t.match(rootTable.stdout, /\(no acl claim: a root token\)/)
  const required = await run(['verify', root, '--public-key', keys.publicPem, '--openapi', CALLS, '--require-acl'])
  t.equal(required.code, 0)
  t.match(required.stdout, /0 of 3 operations granted/, '--require-acl: a root token is granted nothing')
})

t.test('verify --openapi: usage errors exit 2 with one line', async t => {
  const cases: Array<[string, string[], RegExp]> = [
    ['a token and --acl', ['tok', '--acl', '{"paths":{}}', '--openapi', CALLS], /give a token or --acl, not both/],
    ['neither', ['--openapi', CALLS], /give a token .*or --acl/],
    ['--acl without --openapi', ['--acl', '{"paths":{}}'], /--acl measures an acl against --openapi documents/],
    ['--acl not JSON', ['--acl', '{paths', '--openapi', CALLS], /Expected an acl claim as JSON/],
    ['--acl not an acl', ['--acl', '{"paths":5}', '--openapi', CALLS], /--acl: .*acl/],
    ['--path with --openapi', ['--acl', '{"paths":{}}', '--openapi', CALLS, '--path', '/v1/calls'], /give it without --path/],
    ['a bad document', ['--acl', '{"paths":{}}', '--openapi', join(FIXTURES, 'common.yaml')], /common\.yaml: #\/openapi: must be an OpenAPI version/]
  ]
  for (const [name, args, message] of cases) {
    const result = await run(['verify', ...args])
    t.equal(result.code, 2, `${name}: exit 2`)
    t.match(result.stderr, message, `${name}: message`)
    // Commander adds "(add --help for usage)" under a flag it refused itself.
    t.equal(result.stderr.trim().split('\n').filter(l => !l.startsWith('(add --help')).length, 1, `${name}: one line`)
  }
})

t.test('aclCoverage(): the library helper over a parsed document', async t => {
  const document = await $RefParser.dereference(CONVERSATION)
  const rows = aclCoverage(document, { paths: { '/v2/users/*': { methods: ['GET'] } } }, { basePath: '/v2' })
  t.same(rows.filter(r => r.granted).map(r => [r.method, r.target, r.grantedBy]), [
    ['GET', '/v2/users/USR-82e028d9-5201-4f1e-8188-604b2d3471ec', '/v2/users/*']
  ])
  t.equal(rows.length, 12)
  t.equal(aclCoverage(document, null, { requireAcl: true }).filter(r => r.granted).length, 0, 'a root token under requireAcl')
  t.equal(aclCoverage(document, null).filter(r => r.granted).length, 12, 'a root token')
  t.equal(aclCoverage({ hello: 'world' }, CLIENT_ACL).length, 0, 'not a document: no operations')
  t.throws(() => aclCoverage(document, { paths: 5 }), { code: 'VJG_CLAIM_INVALID' })
})
