/**
 * A guarded mock for people who already run Prism: `proxy` in front of the real Prism
 * (@stoplight/prism-cli from npm) mocking the same document as mock.test.ts. The guard's
 * refusals never reach Prism; granted calls return Prism's answer.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import $RefParser from '@apidevtools/json-schema-ref-parser'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { CLIENT_ACL, keys } from '../../test/helpers/keys.js'
import { freePort, liveToken, portOf, REALM, start, stop, waitFor } from './helpers/bin.js'

const CONVERSATION = join(fileURLToPath(new URL('./fixtures/openapi/', import.meta.url)), 'conversation.yaml')
const PRISM = join(createRequire(import.meta.url).resolve('@stoplight/prism-cli/package.json'), '..', 'dist', 'index.js')

t.test('proxy in front of Prism: refusals never reach it, granted calls get its answer', async t => {
  // Prism serves a document's paths at its root, whatever its servers say: the same document,
  // its $refs resolved (a bundled $ref may point into a path renamed here), with the version
  // prefix the SDKs call written into its paths.
  const bundled = await $RefParser.dereference(CONVERSATION) as { paths: Record<string, unknown> }
  bundled.paths = Object.fromEntries(Object.entries(bundled.paths).map(([path, item]) => [`/v1${path}`, item]))
  const dir = t.testdir()
  writeFileSync(join(dir, 'conversation.json'), JSON.stringify(bundled))

  const port = await freePort()
  const prism = spawn(process.execPath, [PRISM, 'mock', '-h', '127.0.0.1', '-p', String(port), join(dir, 'conversation.json')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } })
  let log = ''
  prism.stdout.on('data', (chunk: Buffer) => { log += chunk.toString() })
  prism.stderr.on('data', (chunk: Buffer) => { log += chunk.toString() })
  t.teardown(() => { prism.kill('SIGKILL') })
  await waitFor('Prism to listen', () => log.includes('Prism is listening'), 60_000).catch((error: Error) => {
    throw new Error(`${error.message}:\n${log}`)
  })
  const received = (): number => log.split('Request received').length - 1

  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${port}`, '--public-key', keys.publicPem, '--port', '0', '--log-level', 'warn'])
  t.teardown(() => stop(proxy))
  const at = portOf(proxy.base)
  const token = await liveToken({ acl: CLIENT_ACL })
  const usersOnly = await liveToken({ acl: { paths: { '/*/users/**': {} } } })

  const refusals: Array<[string, string, Record<string, string>, number, string]> = [
    ['no token', '/v1/users', {}, 401, 'VJG_TOKEN_MISSING'],
    ['outside the ACL', '/v1/conversations', { authorization: `Bearer ${usersOnly}` }, 403, 'VJG_ACL_DENIED'],
    ['an unsafe path', '/v1/users/%2e%2e/conversations', { authorization: `Bearer ${usersOnly}` }, 400, 'VJG_PATH_INVALID'],
    ['a forged signature', '/v1/users', { authorization: `Bearer ${token.slice(0, -4)}AAAA` }, 401, 'VJG_SIGNATURE_INVALID']
  ]
  for (const [name, target, headers, status, code] of refusals) {
    const answer = await rawRequest(at, target, headers)
    t.equal(answer.status, status, `${name}: status`)
    t.equal(JSON.parse(answer.body).code, code, `${name}: code`)
    t.match(answer.headers['www-authenticate'], REALM, `${name}: challenge`)
  }
  t.equal(received(), 0, 'no refusal reached Prism')

  const granted = await rawRequest(at, '/v1/users', { authorization: `Bearer ${token}` })
  t.equal(granted.status, 200)
  t.same(JSON.parse(granted.body)._embedded.users.map((u: { name: string }) => u.name), ['alice', 'bob'], 'Prism\'s answer: the documented example')
  const preferred = await rawRequest(at, '/v1/users/USR-82e028d9-5201-4f1e-8188-604b2d3471ec', { authorization: `Bearer ${token}`, prefer: 'code=404' })
  t.equal(preferred.status, 404, 'Prefer reaches Prism')
  t.equal(JSON.parse(preferred.body).title, 'User not found.')
  const invalid = await rawRequest(at, '/v1/users?page_size=500', { authorization: `Bearer ${token}` })
  t.equal(invalid.status, 422, 'a granted but invalid request: Prism\'s own validation answers')
  t.equal(received(), 3, 'the three granted requests, and only they, reached Prism')
})
