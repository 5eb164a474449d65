/**
 * --public-keys-dir: keys by application, picked up again while the server runs (added,
 * replaced, removed), a bad file keeping the last good set, and a request in flight finishing
 * across a reload.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys, makeKeyPair, otherKeys } from '../../test/helpers/keys.js'
import { liveToken, portOf, run, start, stop, waitFor } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

const APP_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'

t.test('a key added, replaced or removed is picked up without a restart; a bad file is left out', async t => {
  // A slow route upstream: a request in flight across a reload must finish.
  const up = await recordingUpstream(t, (req, res) => {
    const wait = req.url === '/v1/users/slow' ? 1500 : 0
    setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"upstream":true}') }, wait)
  })
  const dir = t.testdir({ [`${APP_ID}.pem`]: keys.publicPem, 'README': 'not a key', '.hidden.pem': 'not a key either' })
  const proxy = await start(['proxy', '--upstream', `http://127.0.0.1:${up.port}`, '--port', '0', '--public-keys-dir', dir, '--log-level', 'info'])
  t.teardown(() => { proxy.child.kill('SIGKILL') })
  const port = portOf(proxy.base)
  const tokenA = await liveToken()
  const tokenB = await liveToken({ application_id: APP_B }, otherKeys.privateKey)
  const codeOf = async (jwt: string, path = '/v1/users/abc'): Promise<string> => {
    const res = await rawRequest(port, path, { authorization: `Bearer ${jwt}` })
    return res.status === 200 ? 'granted' : JSON.parse(res.body).code as string
  }
  t.equal(await codeOf(tokenA), 'granted', 'the key of application A')
  t.equal(await codeOf(tokenB), 'VJG_KEY_UNKNOWN', 'no key for application B yet')

  // Added, while a request is in flight: it finishes (on the old guard), the new key is used.
  const slow = rawRequest(port, '/v1/users/slow', { authorization: `Bearer ${tokenA}` })
  await new Promise(resolve => setTimeout(resolve, 200))
  writeFileSync(join(dir, `${APP_B}.key`), otherKeys.publicPem)
  await waitFor('application B to be granted', async () => await codeOf(tokenB) === 'granted')
  t.equal((await slow).status, 200, 'the request in flight during the reload was answered')
  t.match(proxy.stdout(), /"applications":\[[^\]]*"bbbbbbbb-/, 'the reload is logged with the applications')

  // Replaced (a new file renamed over the old one, as deployment tools do).
  const rotated = makeKeyPair()
  writeFileSync(join(dir, 'next.tmp'), rotated.publicPem)
  renameSync(join(dir, 'next.tmp'), join(dir, `${APP_ID}.pem`))
  await waitFor('the old key of A to be refused', async () => await codeOf(tokenA) === 'VJG_SIGNATURE_INVALID')
  t.equal(await codeOf(await liveToken({}, rotated.privateKey)), 'granted', 'the new key of A verifies')

  // A bad file: it is left out, the others stay; the log names the file.
  writeFileSync(join(dir, 'cccccccc.pem'), 'this is not a key')
  await waitFor('the refusal to be logged', () => /cccccccc\.pem: vonage-jwt-guard: option \\"publicKeys\.cccccccc\\" is a string that is neither PEM nor JWK JSON","msg":"vonage-jwt-guard: a key in the directory is refused: it is left out"/.test(proxy.stdout()))
  t.equal(await codeOf(tokenB), 'granted', 'a bad file does not take the server down: the other keys stay')
  t.notMatch(proxy.stdout(), /"stack"/, 'no stack in the log')
  rmSync(join(dir, 'cccccccc.pem'))

  // Removed.
  rmSync(join(dir, `${APP_B}.key`))
  await waitFor('application B to be refused', async () => await codeOf(tokenB) === 'VJG_KEY_UNKNOWN')
  t.equal(await stop(proxy), 0)
})

t.test('an empty directory refuses every token until a key is added; a bad directory at start is exit 1 or 2', async t => {
  const dir = t.testdir({})
  const server = await start(['serve', '--port', '0', '--public-keys-dir', dir, '--log-level', 'warn'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const jwt = await liveToken()
  t.equal(JSON.parse((await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` })).body).code, 'VJG_KEY_UNKNOWN')
  writeFileSync(join(dir, `${APP_ID}.pem`), keys.publicPem)
  await waitFor('the first key', async () => (await rawRequest(port, '/v1/users', { authorization: `Bearer ${jwt}` })).status === 200)
  t.equal(await stop(server), 0)

  const bad = t.testdir({ notKey: { 'app.pem': 'not a key' }, twice: { 'twice.pem': keys.publicPem, 'twice.key': keys.publicPem }, file: 'x' })
  const notAKey = await run(['serve', '--port', '0', '--public-keys-dir', join(bad, 'notKey')])
  t.equal(notAKey.code, 2)
  t.match(notAKey.stderr, /^error: .*app\.pem: vonage-jwt-guard: option "publicKeys\.app" is a string that is neither PEM nor JWK JSON\n$/)
  const twice = await run(['serve', '--port', '0', '--public-keys-dir', join(bad, 'twice')])
  t.equal(twice.code, 2)
  t.match(twice.stderr, /twice\.key and twice\.pem both hold the key of application twice: keep one/)
  const missing = await run(['serve', '--port', '0', '--public-keys-dir', join(bad, 'file', 'x')])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^error: cannot read the directory ".*file\/x": a part of the path is a file, not a directory \(ENOTDIR\)\n$/)
})

/** A server on `dir`, and the code each token gets. */
async function serveDir (t: Test, dir: string): Promise<{ server: Awaited<ReturnType<typeof start>>, codeOf: (jwt: string) => Promise<string> }> {
  const server = await start(['serve', '--port', '0', '--public-keys-dir', dir, '--log-level', 'info'])
  t.teardown(() => { server.child.kill('SIGKILL') })
  const port = portOf(server.base)
  const codeOf = async (jwt: string): Promise<string> => {
    const res = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${jwt}` })
    return res.status === 200 ? 'granted' : JSON.parse(res.body).code as string
  }
  return { server, codeOf }
}

/** The bound docs/cli.md states: the directory is read again every 5 s, whatever the watcher saw. */
const BOUND = 5000 + 2000

t.test('a removal is applied whatever happens to the directory: replaced by rm -rf and mkdir, swapped by mv, removed, a symlinked key whose target is deleted', async t => {
  const root = t.testdir({ keys: { [`${APP_ID}.pem`]: keys.publicPem, [`${APP_B}.pem`]: otherKeys.publicPem }, secrets: { 'b.pem': otherKeys.publicPem } })
  const dir = join(root, 'keys')
  const { server, codeOf } = await serveDir(t, dir)
  const tokenA = await liveToken()
  const tokenB = await liveToken({ application_id: APP_B }, otherKeys.privateKey)
  t.same([await codeOf(tokenA), await codeOf(tokenB)], ['granted', 'granted'])

  // Replaced: the watcher of the old directory sees it go; the new one is watched.
  rmSync(dir, { recursive: true })
  mkdirSync(dir)
  writeFileSync(join(dir, `${APP_ID}.pem`), keys.publicPem)
  await waitFor('B to be refused after rm -rf and mkdir', async () => await codeOf(tokenB) === 'VJG_KEY_UNKNOWN', BOUND)
  t.equal(await codeOf(tokenA), 'granted', 'A, written into the new directory, verifies')
  // And a later removal in the new directory is seen too.
  writeFileSync(join(dir, `${APP_B}.pem`), otherKeys.publicPem)
  await waitFor('B to be added to the new directory', async () => await codeOf(tokenB) === 'granted', BOUND)
  rmSync(join(dir, `${APP_B}.pem`))
  await waitFor('B to be refused once removed from the new directory', async () => await codeOf(tokenB) === 'VJG_KEY_UNKNOWN', BOUND)

  // Swapped with mv: the directory at the path is another one.
  const next = join(root, 'next')
  mkdirSync(next)
  writeFileSync(join(next, `${APP_B}.pem`), otherKeys.publicPem)
  renameSync(dir, join(root, 'old'))
  renameSync(next, dir)
  await waitFor('A to be refused after an mv swap', async () => await codeOf(tokenA) === 'VJG_KEY_UNKNOWN', BOUND)
  t.equal(await codeOf(tokenB), 'granted', 'B, in the swapped-in directory, verifies')

  // A symlinked key (a mounted Secret) whose target is deleted: no event, the poll sees it; and
  // a removal beside that unreadable entry is applied too.
  rmSync(join(dir, `${APP_B}.pem`))
  writeFileSync(join(dir, `${APP_ID}.pem`), keys.publicPem)
  symlinkSync(join(root, 'secrets', 'b.pem'), join(dir, `${APP_B}.pem`))
  await waitFor('A and B through the symlink', async () => await codeOf(tokenA) === 'granted' && await codeOf(tokenB) === 'granted', BOUND)
  rmSync(join(root, 'secrets', 'b.pem'))
  await waitFor('B to be refused once its link dangles', async () => await codeOf(tokenB) === 'VJG_KEY_UNKNOWN', BOUND)
  t.match(server.stdout(), /"file":"bbbbbbbb-[^"]*\.pem".*"msg":"vonage-jwt-guard: a key file cannot be read: it is left out"/, 'the dangling link is logged')
  rmSync(join(dir, `${APP_ID}.pem`))
  await waitFor('A to be refused, beside the dangling link', async () => await codeOf(tokenA) === 'VJG_KEY_UNKNOWN', BOUND)

  // Nothing can be read: every token is refused, and said so; then it comes back.
  rmSync(dir, { recursive: true })
  writeFileSync(join(root, 'secrets', 'b.pem'), otherKeys.publicPem)
  await waitFor('the failure to be logged', () => server.stdout().includes('the keys directory cannot be read: every token is refused until it can'), BOUND)
  t.equal(await codeOf(tokenB), 'VJG_KEY_UNKNOWN', 'fail closed while the directory is gone')
  mkdirSync(dir)
  writeFileSync(join(dir, `${APP_ID}.pem`), keys.publicPem)
  await waitFor('A once the directory is back', async () => await codeOf(tokenA) === 'granted', BOUND)
  t.match(server.stdout(), /"removed":\["bbbbbbbb-/, 'removals are logged by application')
  t.equal(await stop(server), 0)
})

t.test('key files named after Object.prototype members are applications like any other; a name with control characters is printed escaped', async t => {
  const names = ['constructor', 'toString', 'hasOwnProperty', '__proto__']
  const dir = t.testdir(Object.fromEntries(names.map(name => [`${name}.pem`, keys.publicPem])))
  const { server, codeOf } = await serveDir(t, dir)
  for (const name of names) t.equal(await codeOf(await liveToken({ application_id: name })), 'granted', `${name}.pem: its application verifies`)
  t.equal(await codeOf(await liveToken({ application_id: 'valueOf' })), 'VJG_KEY_UNKNOWN', 'valueOf has no file')

  // Added while running: later reloads still apply.
  writeFileSync(join(dir, 'valueOf.pem'), keys.publicPem)
  await waitFor('valueOf to be added', async () => await codeOf(await liveToken({ application_id: 'valueOf' })) === 'granted', BOUND)
  rmSync(join(dir, 'constructor.pem'))
  await waitFor('constructor to be removed', async () => await codeOf(await liveToken({ application_id: 'constructor' })) === 'VJG_KEY_UNKNOWN', BOUND)

  writeFileSync(join(dir, '\u001b[31mred\u0007.pem'), 'not a key')
  await waitFor('the bad file to be logged', () => server.stdout().includes('a key in the directory is refused'), BOUND)
  t.equal(await stop(server), 0)
  // eslint-disable-next-line no-control-regex -- what must not reach a terminal
  t.notMatch(server.stdout() + server.stderr(), /[\u0000-\u0009\u000b-\u001f]/, 'no control character printed')
  t.match(server.stdout(), /\\\\u001b\[31mred\\\\u0007\.pem/, 'the name, escaped')

  const started = await run(['serve', '--port', '0', '--public-keys-dir', t.testdir({ 'constructor.key': keys.publicPem, 'constructor.pem': keys.publicPem })])
  t.equal(started.code, 2, 'two files for application constructor: exit 2, no crash')
  t.match(started.stderr, /constructor\.key and constructor\.pem both hold the key of application constructor/)
  t.notMatch(started.stderr, /\n\s+at /, 'no stack')
  const escaped = await run(['serve', '--port', '0', '--public-keys-dir', t.testdir({ '\u001b[2Jx.key': keys.publicPem, '\u001b[2Jx.pem': keys.publicPem })])
  t.equal(escaped.code, 2)
  t.match(escaped.stderr, /\\u001b\[2Jx\.key and \\u001b\[2Jx\.pem both hold the key of application \\u001b\[2Jx/, 'names printed escaped')
  // eslint-disable-next-line no-control-regex -- what must not reach a terminal
  t.notMatch(escaped.stderr, /\u001b/, 'no raw escape on the terminal')
})
