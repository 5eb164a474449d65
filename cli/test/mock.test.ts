/**
 * mock --openapi: documents served behind the guard, answered as documented, requests checked
 * against them; the guard decides first; bad documents are one line with exit 2.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { keys } from '../../test/helpers/keys.js'
import { rawRequest } from '../../test/helpers/http.js'
import { REALM, liveToken, portOf, run, start, stop } from './helpers/bin.js'

const FIXTURES = fileURLToPath(new URL('./fixtures/openapi/', import.meta.url))
const CONVERSATION = join(FIXTURES, 'conversation.yaml')
const CALLS = join(FIXTURES, 'calls.json')
const ALICE = 'USR-82e028d9-5201-4f1e-8188-604b2d3471ec'

interface Answer {
  status: number
  headers: Headers
  text: string
  json: Record<string, unknown> | null
}

async function call (base: string, path: string, init: { method?: string, token?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers }
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  if (init.body !== undefined) headers['content-type'] ??= 'application/json'
  const response = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers, body: init.body })
  const text = await response.text()
  let json: Record<string, unknown> | null = null
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    json = null
  }
  return { status: response.status, headers: response.headers, text, json }
}

t.test('mock --openapi: answers, paging, Prefer, validation, 404/405/501, and the guard first', async t => {
  const server = await start(['mock', '--openapi', CONVERSATION, '--base-path', '/v1', '--openapi', CALLS, '--public-key', keys.publicPem, '--port', '0', '--log-level', 'warn'])
  t.teardown(() => stop(server))
  t.match(server.stdout(), /mock: 15 operations of .*conversation\.yaml at \/v1, .*calls\.json at \/v1\/calls/)
  const base = server.base
  const token = await liveToken({ acl: { paths: { '/*/users/**': {}, '/*/conversations/**': {}, '/*/calls/**': { methods: ['GET'] } } } })

  // The documented answers: status, content type, body.
  const list = await call(base, '/v1/users', { token })
  t.equal(list.status, 200)
  t.match(list.headers.get('content-type'), /^application\/json/)
  const users = (list.json!._embedded as { users: Array<{ id: string }> }).users
  t.same(users.map(u => u.id), [ALICE, 'USR-5a1e7a4c-1b2b-4c3d-8e4f-0a1b2c3d4e5f'], 'the documented example')
  const next = (list.json!._links as { next?: { href: string } }).next
  t.ok(next, 'the first page links to the next, as documented')
  const cursor = new URL(next!.href).searchParams.get('cursor')!
  const last = await call(base, `/v1/users?page_size=2&cursor=${encodeURIComponent(cursor)}`, { token })
  t.equal(last.status, 200)
  t.notOk((last.json!._links as Record<string, unknown>).next, 'following next: the last page, without next')

  const rows: Array<[string, string, Record<string, string>, string | undefined, number, (a: Answer) => void]> = [
    ['a named example is the first of examples', `/v1/users/${ALICE}`, {}, undefined, 200, a => t.equal(a.json!.name, 'alice')],
    ['Prefer: example=bob', `/v1/users/${ALICE}`, { prefer: 'example=bob' }, undefined, 200, a => {
      t.equal(a.json!.name, 'bob')
      t.equal(a.headers.get('preference-applied'), 'example=bob')
    }],
    ['Prefer: code=404 answers the documented 404', `/v1/users/${ALICE}`, { prefer: 'code=404' }, undefined, 404, a => t.equal(a.json!.title, 'User not found.')],
    ['Prefer: a code not documented is 400', `/v1/users/${ALICE}`, { prefer: 'code=418' }, undefined, 400, a => t.match(a.json!.detail, /code=418.*documented: 200, 404/)],
    ['Prefer: an example not documented is 400', `/v1/users/${ALICE}`, { prefer: 'example=carol' }, undefined, 400, a => t.match(a.json!.detail, /documented: alice, bob/)],
    ['a body sampled from the schema (external $ref), no next link', '/v1/users/USR-82e028d9-5201-4f1e-8188-604b2d3471ec/conversations', {}, undefined, 200, a => {
      t.type((a.json!._embedded as { conversations: unknown[] }).conversations, Array)
      t.notOk((a.json!._links as Record<string, unknown>).next, 'a sampled link leads nowhere: dropped')
    }],
    ['a 204 has no body', `/v1/users/${ALICE}`, {}, 'DELETE', 204, a => t.equal(a.text, '')],
    ['POST: the documented 201, sampled', '/v1/users', { 'x-body': '{"name":"carol"}' }, 'POST', 201, a => t.equal(typeof a.json!.id, 'string')],
    ['a 3.1 document at its servers[0].url path (/v1/calls + /)', '/v1/calls', {}, undefined, 200, a => t.type(a.json!._embedded, 'object')]
  ]
  for (const [name, path, headers, method, status, check] of rows) {
    const { 'x-body': body, ...rest } = headers
    const answer = await call(base, path, { token, headers: rest, ...(method === undefined ? {} : { method }), ...(body === undefined ? {} : { body }) })
    t.equal(answer.status, status, `${name}: status`)
    check(answer)
  }

  // Requests checked against the document: 400 in Vonage's shape, each failing field named.
  const invalid: Array<[string, string, string | undefined, string | undefined, Array<[string, RegExp]>]> = [
    ['a path parameter off its pattern', '/v1/users/USR-nope', undefined, undefined, [['user_id', /must match pattern/]]],
    ['query: out of range, not in the enum', '/v1/users?page_size=500&order=sideways', undefined, undefined, [['page_size', /must be <= 100/], ['order', /allowed values/]]],
    ['query: not an integer', '/v1/users?page_size=ten', undefined, undefined, [['page_size', /must be integer/]]],
    ['body: a required field missing (readOnly id is not asked for), a wrong type not coerced', '/v1/conversations', 'POST', '{"display_name":5,"properties":{"ttl":null}}', [['name', /is required/], ['display_name', /must be string/]]],
    ['body: nullable is honoured, its type still checked', '/v1/conversations', 'POST', '{"name":"a","properties":{"ttl":"soon"}}', [['properties.ttl', /must be integer/]]],
    ['body: missing when required', '/v1/conversations', 'POST', undefined, [['body', /must be object/]]],
    ['body: an optional body, sent wrong', `/v1/users/${ALICE}`, 'PATCH', '{"name":"a b"}', [['name', /must match pattern/]]],
    ['3.1: a type list with null', '/v1/calls', 'POST', '{"to":[],"answer_url":7}', [['to', /must NOT have fewer than 1 items/], ['answer_url', /must be array,null/]]]
  ]
  const callsToken = await liveToken({ acl: { paths: { '/*/calls/**': {} } } })
  for (const [name, path, method, body, fields] of invalid) {
    const answer = await call(base, path, { token: path.startsWith('/v1/calls') ? callsToken : token, ...(method === undefined ? {} : { method }), ...(body === undefined ? {} : { body }) })
    t.equal(answer.status, 400, `${name}: status`)
    t.equal(answer.json!.title, 'Bad Request', `${name}: Vonage's shape`)
    t.match(answer.json, { type: /^https:\/\//, detail: String, instance: String }, `${name}: type, detail, instance`)
    const named = answer.json!.invalid_parameters as Array<{ name: string, reason: string }>
    t.same(named.map(p => p.name).sort(), fields.map(f => f[0]).sort(), `${name}: the failing fields`)
    for (const [field, reason] of fields) t.match(named.find(p => p.name === field)?.reason, reason, `${name}: ${field}`)
  }
  const optionalAbsent = await call(base, `/v1/users/${ALICE}`, { token, method: 'PATCH' })
  t.equal(optionalAbsent.status, 200, 'an optional body may be left out')
  const nullable = await call(base, '/v1/conversations', { token, method: 'POST', body: '{"name":"a","properties":{"ttl":null}}' })
  t.equal(nullable.status, 201, 'nullable: null accepted')

  // Unknown path, method the path lacks, nothing to answer with.
  const unknown = await call(base, '/v1/users/x/y/z', { token })
  t.equal(unknown.status, 404)
  t.equal(unknown.json!.title, 'Not Found')
  const method = await call(base, '/v1/users', { token, method: 'PUT' })
  t.equal(method.status, 405)
  t.equal(method.headers.get('allow'), 'GET, POST, HEAD')
  t.equal(method.json!.title, 'Method Not Allowed')
  const legacyToken = await liveToken({ acl: { paths: { '/*/legacy/**': {} } } })
  const nothing = await call(base, '/v1/legacy/export', { token: legacyToken })
  t.equal(nothing.status, 501, 'neither example nor schema: 501, never 500')
  t.match(nothing.json!.detail, /GET \/v1\/legacy\/export: the documented 200 response \(application\/json\) has neither an example nor a schema/)

  // The guard decides first; security: [] stays open.
  const other = await liveToken({ acl: { paths: { '/*/users/**': {} } } }, (await import('../../test/helpers/keys.js')).otherKeys.privateKey)
  const guardRows: Array<[string, string, string | undefined, string | undefined, number, string | null]> = [
    ['no token on a valid operation', '/v1/users', undefined, undefined, 401, 'VJG_TOKEN_MISSING'],
    ['no token on a bad request: the guard answers, not the validator', '/v1/users?page_size=500', undefined, undefined, 401, 'VJG_TOKEN_MISSING'],
    ['no token on an unknown path', '/v1/nowhere', undefined, undefined, 401, 'VJG_TOKEN_MISSING'],
    ['no token on a method the path lacks', '/v1/users', undefined, 'PUT', 401, 'VJG_TOKEN_MISSING'],
    ['a token signed by another key', '/v1/users', other, undefined, 401, 'VJG_SIGNATURE_INVALID'],
    ['outside the ACL', '/v1/calls', token, 'POST', 403, 'VJG_ACL_DENIED'],
    ['outside the ACL, bad body: the guard first', '/v1/calls', token, 'POST', 403, 'VJG_ACL_DENIED'],
    ['security: [] is open', '/v1/status', undefined, undefined, 200, null]
  ]
  for (const [name, path, bearer, verb, status, code] of guardRows) {
    const answer = await call(base, path, { ...(bearer === undefined ? {} : { token: bearer }), ...(verb === undefined ? {} : { method: verb }), ...(verb === 'POST' ? { body: '{}' } : {}) })
    t.equal(answer.status, status, `${name}: status`)
    if (code !== null) {
      t.equal(answer.json!.code, code, `${name}: code`)
      t.match(answer.headers.get('www-authenticate'), REALM, `${name}: challenge`)
    }
  }
  // fetch() would resolve the dots itself: sent byte for byte.
  const unsafe = await rawRequest(portOf(base), '/v1/users/%2e%2e/calls', { authorization: `Bearer ${token}` })
  t.equal(unsafe.status, 400, 'an unsafe path: the guard\'s 400')
  t.equal(JSON.parse(unsafe.body).code, 'VJG_PATH_INVALID')
  t.notMatch(server.stdout() + server.stderr(), token.split('.')[2]!, 'no token in the logs')
})

t.test('mock: bad documents are one line naming the source and the pointer, exit 2', async t => {
  const dir = t.testdir({
    'swagger.yaml': 'swagger: "2.0"\ninfo: { title: x, version: "1" }\npaths: {}\n',
    'not-yaml.yaml': 'openapi: 3.0.0\n  bad: [\n',
    'no-paths.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\n',
    'bad-response.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths:\n  /a:\n    get:\n      responses: {}\n',
    'bad-ref.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths:\n  /a:\n    get:\n      responses:\n        "200": { $ref: "#/components/responses/Nope" }\n',
    'bad-external.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths:\n  /a:\n    get:\n      responses:\n        "200": { $ref: "missing.yaml#/Nope" }\n',
    'bad-schema.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths:\n  /a:\n    get:\n      parameters:\n        - { name: q, in: query, schema: { type: strung } }\n      responses:\n        "200": { description: ok }\n',
    'bad-param.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths:\n  /a:\n    get:\n      parameters:\n        - { name: q, in: body }\n      responses:\n        "200": { description: ok }\n',
    'v1.yaml': 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\nservers: [{ url: "https://api.example.com/v1" }]\npaths:\n  /a:\n    get:\n      responses:\n        "204": { description: ok }\n',
    'v1-again.json': JSON.stringify({ openapi: '3.1.0', info: { title: 'y', version: '1' }, servers: [{ url: '/v1/' }], paths: { '/b': { get: { responses: { 204: { description: 'ok' } } } } } }),
    'v1-a.json': JSON.stringify({ openapi: '3.1.0', info: { title: 'y', version: '1' }, servers: [{ url: '/v1/a' }], paths: { '/': { get: { responses: { 204: { description: 'ok' } } } } } })
  })
  writeFileSync(join(dir, 'not-openapi.json'), '{"hello": "world"}')
  const cases: Array<[string, string[], RegExp]> = [
    ['a missing file', ['--openapi', join(dir, 'nope.yaml')], /--openapi .*nope\.yaml: cannot read it: .*ENOENT/],
    ['not YAML', ['--openapi', join(dir, 'not-yaml.yaml')], /--openapi .*not-yaml\.yaml: cannot read it: .*bad indentation/],
    ['not OpenAPI', ['--openapi', join(dir, 'not-openapi.json')], /not-openapi\.json: #\/openapi: must be an OpenAPI version 3\.0\.x or 3\.1\.x/],
    ['Swagger 2.0', ['--openapi', join(dir, 'swagger.yaml')], /swagger\.yaml: #\/swagger: a Swagger 2\.0 document/],
    ['no paths', ['--openapi', join(dir, 'no-paths.yaml')], /no-paths\.yaml: #\/paths: absent/],
    ['no responses', ['--openapi', join(dir, 'bad-response.yaml')], /bad-response\.yaml: #\/paths\/~1a\/get\/responses: must be an object with at least one response/],
    ['a bad parameter', ['--openapi', join(dir, 'bad-param.yaml')], /bad-param\.yaml: #\/paths\/~1a\/get\/parameters\/0\/in: must be path, query, header or cookie/],
    ['a $ref that resolves nowhere', ['--openapi', join(dir, 'bad-ref.yaml')], /bad-ref\.yaml: #\/paths\/~1a\/get\/responses\/200\/\$ref: the \$ref "#\/components\/responses\/Nope" resolves nowhere/],
    ['an external $ref that resolves nowhere', ['--openapi', join(dir, 'bad-external.yaml')], /bad-external\.yaml: #\/paths\/~1a\/get\/responses\/200\/\$ref: the \$ref "missing\.yaml#\/Nope" resolves nowhere/],
    ['a schema ajv refuses', ['--openapi', join(dir, 'bad-schema.yaml')], /bad-schema\.yaml: #\/paths\/~1a\/get: schema is invalid: .*type must be equal to one of the allowed values/],
    ['two documents at one mount', ['--openapi', join(dir, 'v1.yaml'), '--openapi', join(dir, 'v1-again.json')], /--openapi .*v1\.yaml and --openapi .*v1-again\.json are both mounted at \/v1: give one of them --base-path/],
    ['two documents serving one path', ['--openapi', join(dir, 'v1.yaml'), '--openapi', join(dir, 'v1-a.json')], /v1-a\.json: #\/paths\/~1\/get: GET \/v1\/a is served by --openapi .*v1\.yaml \(#\/paths\/~1a\/get\) too/],
    ['--base-path first', ['--base-path', '/v1', '--openapi', join(dir, 'v1.yaml')], /--base-path mounts the --openapi document given before it/],
    ['a URL nobody answers', ['--openapi', 'http://127.0.0.1:9/openapi.yaml'], /--openapi http:\/\/127\.0\.0\.1:9\/openapi\.yaml: cannot read it/]
  ]
  for (const [name, args, message] of cases) {
    const result = await run(['mock', ...args, '--public-key', keys.publicPem, '--port', '0'])
    t.equal(result.code, 2, `${name}: exit 2`)
    t.match(result.stderr, message, `${name}: the message`)
    t.equal(result.stderr.trim().split('\n').length, 1, `${name}: one line`)
    t.equal(result.stdout, '', `${name}: nothing on stdout`)
  }
  // Mounted elsewhere, the same two documents start.
  const server = await start(['mock', '--openapi', join(dir, 'v1.yaml'), '--openapi', join(dir, 'v1-again.json'), '--base-path', '/v2', '--public-key', keys.publicPem, '--port', '0', '--log-level', 'warn'])
  t.teardown(() => stop(server))
  const token = await liveToken({ acl: { paths: { '/**': {} } } })
  t.equal((await call(server.base, '/v2/b', { token })).status, 204, '--base-path mounts the document before it')
  t.equal((await call(server.base, '/v1/a', { token })).status, 204)
})

t.test('mock without --openapi is serve: dev keys and a curl line', async t => {
  const cwd = t.testdir()
  const server = await start(['mock', '--port', '0', '--log-level', 'warn'], { cwd })
  t.teardown(() => stop(server))
  t.match(server.stdout(), /dev keys created in/)
  const line = server.stdout().split('\n').find(l => l.startsWith('curl '))!
  const bearer = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(line)![1]!
  const echo = await call(server.base, '/v1/users', { token: bearer })
  t.equal(echo.status, 200)
  t.equal(echo.json!.grantedBy, '/*/users/**')
})
