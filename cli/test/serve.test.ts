/**
 * serve: a guarded mock API; its printed curl line works; dev keys made once and reused.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { importSPKI, jwtVerify } from 'jose'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { CLIENT_ACL, keys, otherKeys } from '../../test/helpers/keys.js'
import { REALM, freePort, liveToken, portOf, run, start, stop } from './helpers/bin.js'


/** Run a printed curl line the way a user does: pasted into a shell. Falls back to node's http client without curl. */
async function runCurlLine (line: string): Promise<{ status: number, body: string }> {
  const hasCurl = await new Promise<boolean>((resolve) => execFile('curl', ['--version'], (error) => resolve(error === null)))
  if (hasCurl) {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
      execFile('sh', ['-c', line], { timeout: 10_000 }, (error, stdout) => error === null ? resolve({ stdout }) : reject(error))
    })
    const split = stdout.indexOf('\r\n\r\n')
    return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(stdout)?.[1]), body: stdout.slice(split + 4) }
  }
  const match = /^curl -i -H '([^']+)' (\S+)$/.exec(line)
  if (match === null) throw new Error(`cannot read the curl line: ${line}`)
  const [name, value] = match[1]!.split(': ')
  return new Promise((resolve, reject) => {
    const req = httpRequest(match[2]!, { headers: { [name!]: value }, timeout: 10_000 }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('serve: the printed curl line answers 200; no token is 401; dev keys are made once and reused', async t => {
  const cwd = t.testdir()
  const server = await start(['serve', '--port', '0', '--log-level', 'warn'], { cwd })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const out = server.stdout()
  t.match(out, /dev keys created in .*\.vonage-jwt-guard/)
  t.match(out, /\(Ctrl-C to stop\)/)
  const line = out.split('\n').find(l => l.startsWith('curl '))
  if (line === undefined) throw new Error(`no curl line in:\n${out}`)

  const answer = await runCurlLine(line)
  t.equal(answer.status, 200, 'the printed curl line works')
  const echo = JSON.parse(answer.body) as { method: string, path: string, grantedBy: string, claims: Record<string, unknown> }
  t.equal(echo.method, 'GET')
  t.equal(echo.path, '/v1/users')
  t.equal(echo.grantedBy, '/*/users/**')
  t.equal(echo.claims.sub, 'alice')
  t.same(echo.claims.acl, CLIENT_ACL, 'the standard Client SDK ACL')

  const sample = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(line)![1]!
  const publicPem = readFileSync(join(cwd, '.vonage-jwt-guard', 'public.key'), 'utf8')
  const verified = await jwtVerify(sample, await importSPKI(publicPem, 'RS256'))
  t.equal(verified.payload.sub, 'alice', 'the sample token verifies with jose against the dev public key')
  t.equal(statSync(join(cwd, '.vonage-jwt-guard', 'private.key')).mode & 0o777, 0o600)

  const port = portOf(server.base)
  const echoed = await rawRequest(port, '/v1/conversations/CON-1/events?page=2', { authorization: `Bearer ${sample}` }, 'POST')
  t.equal(echoed.status, 200)
  t.same(JSON.parse(echoed.body).path, '/v1/conversations/CON-1/events', 'the canonical path, query dropped')
  t.same(JSON.parse(echoed.body).method, 'POST', 'any method')

  const refusals: Array<[string, Record<string, string>, number, string, string]> = [
    ['/v1/users', {}, 401, 'VJG_TOKEN_MISSING', REALM],
    ['/v1/calls', { authorization: `Bearer ${sample}` }, 403, 'VJG_ACL_DENIED', `${REALM}, error="insufficient_scope"`],
    ['/v1/users/%2e%2e/calls', { authorization: `Bearer ${sample}` }, 400, 'VJG_PATH_INVALID', `${REALM}, error="invalid_request"`]
  ]
  for (const [target, headers, status, code, challenge] of refusals) {
    const res = await rawRequest(port, target, headers)
    t.equal(res.status, status, `${target}: status`)
    t.equal(JSON.parse(res.body).code, code, `${target}: code`)
    t.match(res.headers['www-authenticate'], challenge, `${target}: challenge`)
  }

  t.equal(await stop(server), 0, 'SIGTERM closes the server and exits 0')

  // A second run reuses the keys: the first run's token still works against it, even with the
  // public half lost.
  rmSync(join(cwd, '.vonage-jwt-guard', 'public.key'))
  const again = await start(['serve', '--port', '0', '--log-level', 'warn'], { cwd })
  t.teardown(() => { again.child.kill('SIGKILL') })
  t.match(again.stdout(), /dev keys reused in/)
  t.equal(readFileSync(join(cwd, '.vonage-jwt-guard', 'public.key'), 'utf8'), publicPem)
  const old = await rawRequest(portOf(again.base), '/v1/users', { authorization: `Bearer ${sample}` })
  t.equal(old.status, 200, 'a token minted by the first run verifies on the second')
  t.equal(await stop(again), 0)
})

t.test('serve honours PORT and --public-key (then no token is minted)', async t => {
  const dir = t.testdir({ 'public.key': keys.publicPem })
  const port = await freePort()
  const server = await start(['serve', '--public-key', join(dir, 'public.key'), '--log-level', 'warn'], { cwd: dir, env: { PORT: String(port) } })
  t.teardown(() => { server.child.kill('SIGKILL') })
  t.equal(portOf(server.base), port, 'PORT is honoured')
  t.notMatch(server.stdout(), /^curl /m, 'no sample token without the private key')
  t.notOk(existsSync(join(dir, '.vonage-jwt-guard')), 'no dev keys made')
  const ok = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken()}` })
  t.equal(ok.status, 200)
  const taken = await run(['serve', '--public-key', join(dir, 'public.key'), '--port', String(port), '--log-level', 'silent'], { cwd: dir })
  t.equal(taken.code, 1, 'a port in use: the command failed, exit 1')
  t.match(taken.stderr, /cannot listen on 127\.0\.0\.1:\d+ .*EADDRINUSE/)
  const other = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${await liveToken({}, otherKeys.privateKey)}` })
  t.equal(other.status, 401)
  t.equal(JSON.parse(other.body).code, 'VJG_SIGNATURE_INVALID')
  t.equal(await stop(server), 0)

  const bad = await run(['serve', '--port', 'eighty'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--port/)
})
