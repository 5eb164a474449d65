/**
 * --public-keys-dir: keys by application, picked up again while the server runs (added,
 * replaced, removed), a bad file keeping the last good set, and a request in flight finishing
 * across a reload.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID, keys, makeKeyPair, otherKeys } from '../../test/helpers/keys.js'
import { liveToken, portOf, run, start, stop, waitFor } from './helpers/bin.js'
import { recordingUpstream } from './helpers/http.js'

const APP_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'

t.test('a key added, replaced or removed is picked up without a restart; a bad file keeps the last good set', async t => {
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

  // A bad file: the last good set stays, the log names the file.
  writeFileSync(join(dir, 'cccccccc.pem'), 'this is not a key')
  await waitFor('the refusal to be logged', () => /cccccccc\.pem: vonage-jwt-guard: option \\"publicKeys\.cccccccc\\" is a string that is neither PEM nor JWK JSON","msg":"vonage-jwt-guard: a key in the directory is refused: the last good set stays in use"/.test(proxy.stdout()))
  t.equal(await codeOf(tokenB), 'granted', 'a bad file does not take the server down: the last good set stays')
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
