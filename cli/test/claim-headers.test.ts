/**
 * `--claim-header` and `--granted-by-header` (and `claimHeaders` in a config file): the proxy
 * sends the named claims upstream and strips a client's copy in every spelling; forward-auth
 * grants with them; a name the guard owns is refused at start with one line, exit 2.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { keys } from '../../test/helpers/keys.js'
import { inTurns, liveToken, portOf, run, start } from './helpers/bin.js'
import { recordingUpstream as upstream, spellings } from './helpers/http.js'

t.test('proxy: the named claims and the granting pattern go upstream; a client\'s copy never does, in any spelling', async t => {
  const up = await upstream(t)
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-key', keys.publicPem, '--log-level', 'warn',
    '--claim-header', 'sub=X-User-Id', '--claim-header', 'video.role=X-Role', '--granted-by-header', 'X-Acl-Pattern'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const jwt = await liveToken({ sub: 'alice', video: { role: 'publisher' } })
  const res = await rawRequest(port, '/v1/users/abc', {
    authorization: `Bearer ${jwt}`, 'X-User-Id': 'mallory', X_User_Id: 'mallory', 'x.role': 'admin', 'X-ACL-Pattern': '/**'
  })
  t.equal(res.status, 200, res.body)
  const seen = up.seen[0]!
  t.same(spellings(seen, 'x-user-id'), [['x-user-id', 'alice']], 'one X-User-Id, the verified sub')
  t.same(spellings(seen, 'x-role'), [['x-role', 'publisher']], 'the nested claim, the client\'s copy gone')
  t.same(spellings(seen, 'x-acl-pattern'), [['x-acl-pattern', '/*/users/**']], 'the granting pattern')

  const without = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken({ sub: 'bob' })}`, 'X_Role': 'admin' })
  t.equal(without.status, 200, without.body)
  t.same(spellings(up.seen[1]!, 'x-role'), [], 'a claim the token lacks: no header, and the client\'s copy stripped')

  const bad = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken({ sub: 'carol', video: { role: true } })}` })
  t.equal(bad.status, 401)
  t.equal(JSON.parse(bad.body).code, 'VJG_CLAIM_INVALID', 'a claim a header cannot carry: refused, not forwarded')
  t.equal(up.seen.length, 2)
})

t.test('forward-auth: claimHeaders from the config file, the flags over it', async t => {
  const dir = t.testdir({})
  const config = join(dir, 'guard.json')
  writeFileSync(config, JSON.stringify({ publicKey: keys.publicPem, claimHeaders: { sub: 'X-User-Id' } }))
  const jwt = await liveToken({ sub: 'alice', tier: 2 })
  const check = { authorization: `Bearer ${jwt}`, 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/v1/users/abc' }
  for (const [name, extra, expected] of [
    ['the file', [], { 'x-user-id': 'alice', 'x-tier': undefined }],
    ['the flags replace the file\'s table', ['--claim-header', 'tier=X-Tier'], { 'x-user-id': undefined, 'x-tier': '2' }]
  ] as const) {
    const server = await start(['forward-auth', '--port', '0', '--config', config, '--log-level', 'warn', ...extra])
    const res = await rawRequest(portOf(server.base), '/auth', check)
    server.child.kill('SIGKILL')
    t.equal(res.status, 200, `${name}: ${res.body}`)
    for (const [header, value] of Object.entries(expected)) t.equal(res.headers[header], value, `${name}: ${header}`)
  }
})

t.test('a claim header the guard owns, a hop-by-hop one or a malformed flag is refused at start: one error line, exit 2', async t => {
  const base = ['forward-auth', '--public-key', keys.publicPem]
  const cases: Array<[string, string[], RegExp]> = [
    ['an identity header', ['--claim-header', 'sub=X-Vonage-Sub'], /--claim-header: .*claimHeaders\.sub.*X-Vonage-Sub, a header the guard sets or strips/],
    ['a hop-by-hop header', ['--claim-header', 'sub=Keep-Alive'], /hop-by-hop/],
    ['the check\'s own pair', ['--granted-by-header', 'X-Original-URI'], /--granted-by-header: .*grantedByHeader/],
    ['a forwarding header (proxy)', ['--claim-header', 'sub=X-Real-IP'], /sets or strips/],
    ['no header name', ['--claim-header', 'sub'], /Expected CLAIM=Header-Name/],
    ['a claim given twice', ['--claim-header', 'sub=X-A', '--claim-header', 'sub=X-B'], /given twice/],
    ['the acl claim', ['--claim-header', 'acl=X-Acl'], /acl claim/]
  ]
  const results = await inTurns(cases, ([name, args]) => run([...(name.includes('(proxy)') ? ['proxy', '--upstream', 'http://127.0.0.1:1', '--public-key', keys.publicPem] : base), ...args]))
  for (const [i, [name, , message]] of cases.entries()) {
    t.equal(results[i]!.code, 2, `${name}: exit 2`)
    t.match(results[i]!.stderr, message, `${name}: says why`)
    t.equal(results[i]!.stderr.split('\n').filter(line => line.startsWith('error:')).length, 1, `${name}: one error line`)
  }
})
