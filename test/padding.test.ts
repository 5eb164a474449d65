/**
 * EMSA-PKCS1-v1_5 forgeries on a real, claims-valid token. Each block is built by hand, mutated,
 * and raised to the private exponent with RSA_NO_PADDING, so the signature is a genuine RSA
 * operation on a wrong block: only a verifier that checks the whole block (RFC 8017 8.2.2: encode
 * and compare, not parse) refuses every one. The unmutated block must verify, which proves the
 * builder right. Bleichenbacher'06 (CVE-2006-4339) and the e = 1 / e = 3 keys are here too.
 */
import { constants, createHash, createPublicKey, generateKeyPairSync, privateEncrypt, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto'
import { compactVerify } from 'jose'
import t from 'tap'
import { createVerifier, GuardError } from '../lib/index.js'
import { bearer, buildApp } from './helpers/app.js'
import { b64, claims, keys, NOW_MS } from './helpers/keys.js'

const K = 256 // bytes of the 2048-bit modulus
const SHA256_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex')

const header = { alg: 'RS256', typ: 'JWT' }
const signingInput = `${b64(header)}.${b64(claims())}`
const digest = createHash('sha256').update(signingInput).digest()

/** `00 01 FF.. 00 T`, padded to K bytes. `ps` overrides the padding string, `tail` follows T. */
function block ({ type = 0x01, ps, separator = Buffer.from([0x00]), t = Buffer.concat([SHA256_PREFIX, digest]), tail = Buffer.alloc(0), lead = Buffer.from([0x00]) }: {
  type?: number, ps?: Buffer, separator?: Buffer, t?: Buffer, tail?: Buffer, lead?: Buffer
} = {}): Buffer {
  const fixed = lead.length + 1 + separator.length + t.length + tail.length
  const padding = ps ?? Buffer.alloc(K - fixed, 0xff)
  const em = Buffer.concat([lead, Buffer.from([type]), padding, separator, t, tail])
  if (em.length !== K) throw new Error(`block is ${em.length} bytes`)
  return em
}

/** m^d mod n: the signature of a block, whatever the block says. */
function raise (em: Buffer): Buffer {
  return privateEncrypt({ key: keys.privateKey, padding: constants.RSA_NO_PADDING }, em)
}

const ff = (n: number): Buffer => Buffer.alloc(n, 0xff)

/** [name, block]: each is one way a lax parser has been fooled. */
const forgeries: Array<[string, Buffer]> = [
  ['padding byte 0xFE in PS', (() => { const em = block(); em[10] = 0xfe; return em })()],
  ['padding byte 0x00 in PS', (() => { const em = block(); em[100] = 0x00; return em })()],
  ['block type 2 (encryption padding)', block({ type: 0x02 })],
  ['block type 0', block({ type: 0x00 })],
  ['block type 1 without the leading 00', block({ lead: Buffer.alloc(0), ps: ff(K - 1 - 1 - 51) })],
  ['missing 00 separator', block({ separator: Buffer.alloc(0) })],
  ['separator 01 instead of 00', block({ separator: Buffer.from([0x01]) })],
  ['DigestInfo without the NULL parameter', block({ t: Buffer.concat([Buffer.from('302f300b0609608648016503040201', 'hex'), Buffer.from('0420', 'hex'), digest]) })],
  ['wrong OID: SHA-384 with a SHA-256 digest', block({ t: Buffer.concat([Buffer.from('3031300d060960864801650304020205000420', 'hex'), digest]) })],
  ['wrong OID: SHA-1 arc', block({ t: Buffer.concat([Buffer.from('3031300d06092b0e03021a0000000005000420', 'hex'), digest]) })],
  ['SHA-1 DigestInfo of the signing input', block({ t: Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), createHash('sha1').update(signingInput).digest()]) })],
  ['no DigestInfo: the bare digest', block({ t: digest })],
  ['digest of other bytes', block({ t: Buffer.concat([SHA256_PREFIX, createHash('sha256').update(signingInput + 'x').digest()]) })],
  ['trailing garbage after the digest', block({ ps: ff(K - 3 - 51 - 16), tail: Buffer.alloc(16, 0x41) })],
  ['short padding (PS of 7 bytes) and garbage after', block({ ps: ff(7), tail: Buffer.alloc(K - 3 - 7 - 51, 0x42) })],
  ['short padding at the end of leading zeros', block({ lead: Buffer.alloc(K - 3 - 8 - 51 + 1), ps: ff(8) })],
  ['garbage in the NULL parameter (Bleichenbacher 2006)', block({ t: Buffer.concat([Buffer.from('3035300d06096086480165030402010504deadbeef0420', 'hex'), digest]) })],
  ['BER long-form length of the DigestInfo sequence', block({ t: Buffer.concat([Buffer.from('308131300d060960864801650304020105000420', 'hex'), digest]) })],
  ['digest length 0x21 with one extra byte', block({ t: Buffer.concat([Buffer.from('3032300d060960864801650304020105000421', 'hex'), digest, Buffer.from([0x00])]) })]
]

const tokenOf = (signature: Buffer): string => `${signingInput}.${signature.toString('base64url')}`

t.test('the unmutated block verifies, and is what node signs', async t => {
  const signature = raise(block())
  t.same(signature, cryptoSign('sha256', Buffer.from(signingInput), keys.privateKey), 'PKCS#1 v1.5 is deterministic: same bytes as crypto.sign')
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const verified = await verifier.verify(tokenOf(signature))
  t.equal(verified.header.alg, 'RS256')
  await t.resolves(compactVerify(tokenOf(signature), keys.publicKey, { algorithms: ['RS256'] }), 'jose agrees')
})

t.test('every mutated block is refused with VJG_SIGNATURE_INVALID, by us and by jose', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false })
  t.ok(forgeries.length >= 15)
  for (const [name, em] of forgeries) {
    t.not(em.equals(block()), true, `${name}: really a mutation`)
    const token = tokenOf(raise(em))
    await t.rejects(verifier.verify(token), { code: 'VJG_SIGNATURE_INVALID', statusCode: 401 }, name)
    await t.rejects(compactVerify(token, keys.publicKey, { algorithms: ['RS256'] }), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' }, `${name}: jose refuses too`)
  }
})

t.test('over HTTP: 401, code and challenge for a forged block', async t => {
  const app = await buildApp()
  t.teardown(() => app.close())
  for (const [name, em] of forgeries.slice(0, 5)) {
    const res = await app.inject({ url: '/v1/users/x', headers: bearer(tokenOf(raise(em))) })
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'VJG_SIGNATURE_INVALID', name)
    t.match(res.headers['www-authenticate'], /^Bearer realm="vonage-jwt-guard", error="invalid_token", error_description="/, name)
  }
  const good = await app.inject({ url: '/v1/users/x', headers: bearer(tokenOf(raise(block()))) })
  t.equal(good.statusCode, 200)
})

t.test('e = 1: the block itself is a "signature" node accepts; the key is refused at registration', async t => {
  const jwk = keys.publicKey.export({ format: 'jwk' })
  const weak = createPublicKey({ key: { ...jwk, e: 'AQ' }, format: 'jwk' })
  const forged = block() // m^1 = m: no private key involved
  t.equal(cryptoVerify('sha256', Buffer.from(signingInput), weak, forged), true, 'node alone verifies the forgery')
  t.throws(() => createVerifier({ publicKey: weak }), { name: 'TypeError', code: 'VJG_INVALID_OPTION', message: /exponent 1/ })
  t.throws(() => createVerifier({ publicKey: { ...jwk, e: 'AQ' } as never }), { code: 'VJG_INVALID_OPTION' })
})

t.test('e = 3 keys (the precondition of the 2006 cube-root forgery) are refused', async t => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
  t.throws(() => createVerifier({ publicKey }), { name: 'TypeError', code: 'VJG_INVALID_OPTION', message: /exponent 3/ })
  t.throws(() => createVerifier({ publicKey: publicKey.export({ type: 'spki', format: 'pem' }) as string }), { code: 'VJG_INVALID_OPTION' })
})

t.test('a signature one byte short or long is refused before node:crypto', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, cache: false })
  const signature = raise(block())
  for (const [name, sig] of [['255 bytes', signature.subarray(1)], ['257 bytes', Buffer.concat([Buffer.alloc(1), signature])], ['empty', Buffer.alloc(0)]] as const) {
    const error = await verifier.verify(tokenOf(sig)).then(() => null, (e: unknown) => e)
    t.ok(error instanceof GuardError, name)
    // An empty third part is not compact JWS at all; the others are the length rule.
    t.equal((error as GuardError).code, sig.length === 0 ? 'VJG_TOKEN_MALFORMED' : 'VJG_SIGNATURE_INVALID', name)
  }
})
