/**
 * aclCoverage() and its parts, without a server: where a document is mounted, the value each
 * path parameter is tested with, and the grant of each operation.
 */
import t from 'tap'
import { aclCoverage, openApiMount, openApiOperations, sampleParameter, servedPath } from '../lib/index.js'

t.test('openApiMount: the path of servers[0].url, or basePath', async t => {
  const cases: Array<[unknown, string | undefined, string]> = [
    [{ servers: [{ url: 'https://api.nexmo.com/v0.1' }] }, undefined, '/v0.1'],
    [{ servers: [{ url: 'https://api.nexmo.com/v1/calls/' }] }, undefined, '/v1/calls'],
    [{ servers: [{ url: '/v2' }, { url: '/v3' }] }, undefined, '/v2'],
    [{ servers: [{ url: 'https://{region}.example.com/{version}', variables: { region: { default: 'eu' }, version: { default: 'v9' } } }] }, undefined, '/v9'],
    [{ servers: [{ url: 'https://api.nexmo.com' }] }, undefined, ''],
    [{}, undefined, ''],
    [{ servers: [{ url: 'https://api.nexmo.com/v0.1' }] }, '/v1', '/v1'],
    [{ servers: [{ url: 'https://api.nexmo.com/v0.1' }] }, '/', ''],
    [{ servers: [{ url: 'https://api.nexmo.com/v0.1' }] }, 'v1/', '/v1']
  ]
  for (const [document, basePath, mount] of cases) {
    t.equal(openApiMount(document, basePath === undefined ? {} : { basePath }), mount, `${JSON.stringify(document)} ${basePath ?? ''}`)
  }
  t.equal(servedPath('/v1/calls', '/'), '/v1/calls')
  t.equal(servedPath('', '/'), '/')
  t.equal(servedPath('/v1', '/users/{id}'), '/v1/users/{id}')
})

t.test('sampleParameter: the documented value first, else one of its type', async t => {
  const document = { components: { examples: { user: { value: 'USR-from-ref' } }, schemas: { Id: { type: 'string', example: 'from-schema-ref' } } } }
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ example: 'USR-1', schema: { example: 'no' } }, 'USR-1'],
    [{ examples: { a: { value: 'CON-1' } } }, 'CON-1'],
    [{ examples: { a: { $ref: '#/components/examples/user' } } }, 'USR-from-ref'],
    [{ schema: { $ref: '#/components/schemas/Id' } }, 'from-schema-ref'],
    [{ schema: { type: 'string', examples: ['x1'] } }, 'x1'],
    [{ schema: { type: 'string', default: 'd' } }, 'd'],
    [{ schema: { type: 'string', enum: ['asc', 'desc'] } }, 'asc'],
    [{ schema: { type: 'integer', minimum: 5 } }, '5'],
    [{ schema: { type: ['null', 'number'] } }, '1'],
    [{ schema: { type: 'boolean' } }, 'true'],
    [{ schema: { type: 'string', format: 'uuid' } }, '00000000-0000-4000-8000-000000000000'],
    [{}, 'sample']
  ]
  for (const [parameter, value] of cases) t.equal(sampleParameter(parameter, document), value, JSON.stringify(parameter))
})

t.test('aclCoverage: each operation tested on its sample path by the guard\'s own decision', async t => {
  const document = {
    openapi: '3.0.3',
    servers: [{ url: 'https://api.nexmo.com/v0.1' }],
    components: { parameters: { id: { name: 'user_id', in: 'path', required: true, example: 'USR-1' } } },
    paths: {
      '/users/{user_id}': {
        parameters: [{ $ref: '#/components/parameters/id' }],
        get: { operationId: 'getUser', responses: {} },
        delete: { responses: {} }
      },
      '/files/{name}': { get: { operationId: 'getFile', parameters: [{ name: 'name', in: 'path', example: 'a b/c' }], responses: {} } },
      '/legs': { get: { operationId: 'listLegs', responses: {} } }
    }
  }
  const acl = { paths: { '/*/users/USR-1': { methods: ['GET'] }, '/*/files/*': {}, '/*/legs/**': { filters: { x: 1 } } } }
  const rows: Array<[string, string, string | null, string, boolean, string | null]> = [
    ['GET', '/v0.1/users/{user_id}', 'getUser', '/v0.1/users/USR-1', true, '/*/users/USR-1'],
    ['DELETE', '/v0.1/users/{user_id}', null, '/v0.1/users/USR-1', false, null],
    ['GET', '/v0.1/files/{name}', 'getFile', '/v0.1/files/a%20b%2Fc', false, null],
    ['GET', '/v0.1/legs', 'listLegs', '/v0.1/legs', false, null]
  ]
  t.same(aclCoverage(document, acl), rows.map(([method, path, operationId, target, granted, grantedBy]) => ({ method, path, operationId, target, granted, grantedBy })))
  t.same(openApiOperations(document, { basePath: '/v1' }).map(o => o.path), ['/v1/users/{user_id}', '/v1/users/{user_id}', '/v1/files/{name}', '/v1/legs'])
  t.ok(aclCoverage(document, null).every(o => o.granted && o.grantedBy === null), 'a root token: everything, by no pattern')
  t.ok(aclCoverage(document, null, { requireAcl: true }).every(o => !o.granted), 'requireAcl: a root token, nothing')
  t.same(aclCoverage('not a document', acl), [])
  t.throws(() => aclCoverage(document, { paths: [] }), { code: 'VJG_CLAIM_INVALID' })
})
