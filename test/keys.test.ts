/**
 * Key registration: every accepted form verifies, every weak or wrong key is refused at
 * createVerifier() with a TypeError naming the option.
 */
import { createHash, createPublicKey, createSecretKey, generateKeyPairSync, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { compactVerify, importJWK } from 'jose'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import type { PreparedKey } from '../lib/keys.js'
import { orderedKeys } from '../lib/signature.js'
import { APP_ID, b64, keys, NOW_MS, otherKeys, token } from './helpers/keys.js'

const now = () => NOW_MS

/** A self-signed certificate for the test key, made with the openssl binary when it exists. */
function certificatePem (): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'vjg-cert-'))
  try {
    writeFileSync(join(dir, 'key.pem'), keys.privatePem)
    execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=vjg-test'], { stdio: 'ignore' })
    return readFileSync(join(dir, 'cert.pem'), 'utf8')
  } catch {
    return undefined
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('every accepted key form verifies a token', async t => {
  const tok = await token()
  const jwk = keys.publicKey.export({ format: 'jwk' })
  const forms: Array<[string, unknown]> = [
    ['PEM SPKI string', keys.publicPem],
    ['PEM SPKI Buffer', Buffer.from(keys.publicPem)],
    ['PEM PKCS#1', keys.publicKey.export({ type: 'pkcs1', format: 'pem' })],
    ['DER SPKI Buffer', keys.publicKey.export({ type: 'spki', format: 'der' })],
    ['JWK object', jwk],
    ['JWK with kid, use sig, alg RS256', { ...jwk, kid: 'k1', use: 'sig', alg: 'RS256' }],
    ['JWK JSON string', JSON.stringify(jwk)],
    ['KeyObject', keys.publicKey],
    ['private KeyObject, reduced to its public half', keys.privateKey],
    ['private PEM, reduced to its public half', keys.privatePem],
    ['array with another key first', [otherKeys.publicPem, keys.publicPem]]
  ]
  const cert = certificatePem()
  if (cert !== undefined) forms.push(['PEM X.509 certificate', cert])
  else t.comment('openssl not found: the certificate form is checked with X509Certificate only')
  for (const [name, publicKey] of forms) {
    const verifier = createVerifier({ publicKey: publicKey as never, now, cache: false })
    t.equal((await verifier.verify(tok)).claims.application_id, APP_ID, name)
  }
  if (cert !== undefined) t.equal(new X509Certificate(cert).publicKey.equals(keys.publicKey), true, 'the certificate carries the test key')
})

t.test('publicKeys chooses the key by application_id', async t => {
  const verifier = createVerifier({ publicKeys: { [APP_ID]: keys.publicPem, other: otherKeys.publicPem }, now })
  t.equal((await verifier.verify(await token())).claims.application_id, APP_ID)
  t.equal((await verifier.verify(await token({ application_id: 'other' }, { key: otherKeys.privateKey }))).claims.application_id, 'other')
  await t.rejects(verifier.verify(await token({ application_id: 'other' })), { code: 'VJG_SIGNATURE_INVALID', statusCode: 401 }, "app A's token signed with B's key")
  await t.rejects(verifier.verify(await token({ application_id: 'nobody' })), { code: 'VJG_KEY_UNKNOWN', statusCode: 401 })
  await t.rejects(verifier.verify(await token({ application_id: undefined })), { code: 'VJG_KEY_UNKNOWN', statusCode: 401 })
})

t.test('a JWK with alg binds the key to that algorithm', async t => {
  const jwk = { ...keys.publicKey.export({ format: 'jwk' }), alg: 'PS256' }
  const verifier = createVerifier({ publicKey: jwk as never, algorithms: ['RS256', 'PS256'], now })
  await t.rejects(verifier.verify(await token()), { code: 'VJG_SIGNATURE_INVALID' }, 'an RS256 token does not verify with a PS256-bound key')
})

/** The forgery e = 1 allows: the "signature" is the PKCS#1 v1.5 block itself. */
function forgeWithExponentOne (n: string): { token: string, key: object } {
  const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ application_id: APP_ID, iat: NOW_MS / 1000, jti: 'forged', sub: 'admin' })}`
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()])
  const block = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(256 - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo])
  return { token: `${input}.${block.toString('base64url')}`, key: { kty: 'RSA', n, e: 'AQ' } }
}

t.test('e = 1: node and jose accept a forged token, our registration refuses the key', async t => {
  const { n } = keys.publicKey.export({ format: 'jwk' })
  const forged = forgeWithExponentOne(n!)
  const weak = createPublicKey({ key: forged.key as never, format: 'jwk' })
  const [input, , sig] = [forged.token.slice(0, forged.token.lastIndexOf('.')), null, forged.token.split('.')[2]!]
  t.equal(cryptoVerify('sha256', Buffer.from(input), weak, Buffer.from(sig, 'base64url')), true, 'node:crypto verifies the forgery')
  const joseResult = await compactVerify(forged.token, await importJWK({ ...forged.key, alg: 'RS256' } as never, 'RS256')).then(() => true, () => false)
  t.equal(joseResult, true, 'jose verifies the forgery')
  t.throws(() => createVerifier({ publicKey: forged.key as never }), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: 'publicKey', message: /exponent 1/ })
  t.throws(() => createVerifier({ publicKey: weak }), { code: 'VJG_INVALID_OPTION', option: 'publicKey' })
})

t.test('weak and wrong keys are refused at registration, naming the option', async t => {
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey
  const e3 = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['1024-bit RSA', { publicKey: small }, 'publicKey', /1024-bit/],
    ['e = 3', { publicKey: e3 }, 'publicKey', /exponent 3/],
    ['EC key', { publicKey: ec }, 'publicKey', /only RSA/],
    ['secret KeyObject', { publicKey: createSecretKey(Buffer.alloc(32)) }, 'publicKey', /secret/],
    ['garbage string', { publicKey: 'not a key' }, 'publicKey', /neither PEM nor JWK/],
    ['broken PEM', { publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }, 'publicKey', /could not be parsed/],
    ['JWK for encryption', { publicKey: { ...keys.publicKey.export({ format: 'jwk' }), use: 'enc' } }, 'publicKey', /use "enc"/],
    ['empty array', { publicKey: [] }, 'publicKey', /empty/],
    ['weak key in an array', { publicKey: [keys.publicPem, small] }, 'publicKey[1]', /1024-bit/],
    ['weak key by application', { publicKeys: { [APP_ID]: small } }, `publicKeys.${APP_ID}`, /1024-bit/],
    ['both key sources', { publicKey: keys.publicPem, publicKeys: { a: keys.publicPem } }, 'publicKeys', /cannot be combined/],
    ['a number', { publicKey: 42 }, 'publicKey', /PEM/]
  ]
  for (const [name, options, option, message] of cases) {
    t.throws(() => createVerifier(options as never), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option, message }, name)
  }
})

t.test('several keys: the one the token names by kid first, then the one that verified last, then the rest in order', async t => {
  const key = (kid?: string): PreparedKey => ({ key: keys.publicKey, size: 256, alg: undefined, kid })
  const [a, b, c, d] = [key('a'), key('b'), key(), key('d')]
  const list = [a, b, c, d]
  const one = [a]
  t.equal(orderedKeys(one, 'b', b), one, 'one key: as it is')
  t.strictSame(orderedKeys(list, undefined, undefined), list, 'no kid, nothing verified yet: configured order')
  t.equal(orderedKeys(list, undefined, a), list, 'the first verified last: the list itself, no copy')
  t.strictSame(orderedKeys(list, undefined, d), [d, a, b, c], 'the one that verified last first')
  t.strictSame(orderedKeys(list, 'b', d), [b, d, a, c], 'the kid first, then the last one')
  t.strictSame(orderedKeys(list, 'b', b), [b, a, c, d])
  t.strictSame(orderedKeys(list, 'zz', d), [d, a, b, c], 'an unknown kid changes nothing')
  t.strictSame(orderedKeys(list, 42, undefined), list, 'a kid that is no string is not read')
  t.strictSame(orderedKeys([a, b], undefined, key('x')), [a, b], 'a last key that is not a candidate is left out')
})

t.test('five keys, the signer last: every token verifies, kid only orders the keys, a token no key signed is 401', async t => {
  const others = Array.from({ length: 4 }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }))
  const jwk = (publicKey: KeyObject, kid: string): Record<string, unknown> => ({ ...publicKey.export({ format: 'jwk' }), kid })
  const verifier = createVerifier({
    publicKey: [...others.map((pair, i) => jwk(pair.publicKey, `k${i}`)), jwk(keys.publicKey, 'signer')],
    now,
    cache: false
  })
  for (let i = 0; i < 3; i++) t.ok(await verifier.verify(await token()), `signed by the last key (${i + 1})`)
  t.ok(await verifier.verify(await token({}, { header: { kid: 'signer' } })), 'kid names the signer')
  t.ok(await verifier.verify(await token({}, { header: { kid: 'k1' } })), 'kid names another configured key: still any key that verifies (a hint, not a choice)')
  t.ok(await verifier.verify(await token({}, { key: others[2]!.privateKey })), 'signed by the third key, after the last one verified')
  t.ok(await verifier.verify(await token()), 'and the last one again')
  await t.rejects(verifier.verify(await token({}, { key: otherKeys.privateKey })), { code: 'VJG_SIGNATURE_INVALID' }, 'no configured key signed it')
  await t.rejects(verifier.verify(await token({}, { key: otherKeys.privateKey, header: { kid: 'signer' } })), { code: 'VJG_SIGNATURE_INVALID' }, 'a kid does not make a signature')
})
