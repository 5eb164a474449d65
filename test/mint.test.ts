/**
 * vonage-jwt-guard/mint: generateKeys makes an RSA pair on the thread pool, so a server that
 * calls it (the CLI's serve with no keys given) keeps answering meanwhile.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto'
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
  const tick = (): void => {
    ticks++
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  await generateKeys({ modulusLength: 3072 })
  running = false
  t.ok(ticks > 1, `the event loop turned ${ticks} times while the key was made`)
})
