/**
 * vonage-jwt-guard/mint: generateKeys makes an RSA pair on the thread pool, so a server that
 * calls it (the CLI's serve with no keys given) keeps answering meanwhile.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import { generateKeys, mintToken } from '../lib/mint.js'

t.test('generateKeys: a PKCS#8 / SPKI pair of 2048 bits that signs tokens the guard accepts', async t => {
  const { privateKey, publicKey } = await generateKeys()
  t.match(privateKey, /^-----BEGIN PRIVATE KEY-----\n/)
  t.match(publicKey, /^-----BEGIN PUBLIC KEY-----\n/)
  t.equal(createPrivateKey(privateKey).asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(createPublicKey(publicKey).asymmetricKeyDetails?.publicExponent, 65537n)
  const token = await mintToken({}, privateKey, { applicationId: 'app' })
  t.equal((await createVerifier({ publicKey }).verify(token)).claims.application_id, 'app')
})

t.test('generateKeys does not block the event loop while the key is made', async t => {
  let ticks = 0
  let running = true
  let last = performance.now()
  let longestGap = 0
  const tick = (): void => {
    const at = performance.now()
    longestGap = Math.max(longestGap, at - last)
    last = at
    ticks++
    if (running) setImmediate(tick)
  }
  const started = performance.now()
  setImmediate(tick)
  const { privateKey, publicKey } = await generateKeys({ modulusLength: 3072 })
  running = false
  const took = performance.now() - started
  t.ok(ticks > 1, `the event loop turned ${ticks} times while the key was made`)
  // Made on the calling thread, the key would hold the loop for the whole time in one gap.
  t.ok(longestGap < took * 0.8, `no turn of the event loop waited for the key: longest gap ${longestGap.toFixed(1)} ms of ${took.toFixed(1)} ms`)
  t.equal(createPrivateKey(privateKey).asymmetricKeyDetails?.modulusLength, 3072, 'the key asked for')
  t.equal(createPublicKey(publicKey).asymmetricKeyDetails?.modulusLength, 3072)
})
