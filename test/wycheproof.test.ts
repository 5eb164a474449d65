/**
 * Project Wycheproof vectors (test/fixtures/wycheproof, Apache-2.0, see NOTICE there).
 *
 * - JSON Web Signature: every RS256 vector goes through our signature layer (strict compact split,
 *   header checks, `verifySignature` on a prepared key) and must get exactly Wycheproof's verdict,
 *   and jose must agree; every other group (HS*, ES*, PS*, RS384/512, JSON serialization) must be
 *   refused by the verifier with VJG_ALG_NOT_ALLOWED or VJG_TOKEN_MALFORMED.
 * - RSASSA-PKCS1-v1_5 2048/SHA-256: every vector through `verifySignature` with a prepared key.
 */
import { readFileSync } from 'node:fs'
import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { compactVerify, importJWK } from 'jose'
import t from 'tap'
import { createVerifier, GuardError } from '../lib/index.js'
import { verifySignature } from '../lib/signature.js'
import { preparePublicKey, type PreparedKey } from '../lib/keys.js'
import { checkHeader, decodeJsonObject, splitCompact } from '../lib/token.js'
import { keys, NOW_MS } from './helpers/keys.js'

interface JwsVector { tcId: number, comment: string, jws: unknown, result: 'valid' | 'invalid', flags: string[] }
interface JwsGroup { comment: string, public?: Record<string, unknown>, private?: Record<string, unknown>, tests: JwsVector[] }
interface PkcsVector { tcId: number, comment: string, msg: string, sig: string, result: 'valid' | 'invalid' | 'acceptable', flags: string[] }
interface PkcsGroup { keyJwk: Record<string, unknown>, publicKeyPem: string, tests: PkcsVector[] }

function fixture<T> (name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/wycheproof/${name}`, import.meta.url), 'utf8')) as T
}

const jwsGroups = fixture<{ testGroups: JwsGroup[] }>('wycheproof_json_web_signature_test.json').testGroups
const pkcsGroups = fixture<{ testGroups: PkcsGroup[] }>('wycheproof_rsa_signature_2048_sha256_test.json').testGroups

const RS256_ONLY: ReadonlySet<string> = new Set(['RS256'])

/**
 * The signature layer of `verify()` without the claims: split strictly, decode the header, check
 * it, verify the signature. Returns 'valid' or the code of the refusal. The payload of these
 * vectors is arbitrary bytes ("foo"), not claims, so it is not decoded as JSON here.
 */
function signatureVerdict (jws: unknown, key: PreparedKey, algorithms: ReadonlySet<string> = RS256_ONLY): 'valid' | string {
  try {
    if (typeof jws !== 'string') throw new GuardError('VJG_TOKEN_MALFORMED', 'not a compact string')
    const parts = splitCompact(jws, 8192)
    const alg = checkHeader(decodeJsonObject(parts.header, 'header'), algorithms)
    return verifySignature(alg, Buffer.from(parts.signingInput, 'latin1'), parts.signature, key) ? 'valid' : 'VJG_SIGNATURE_INVALID'
  } catch (error) {
    if (error instanceof GuardError) return error.code
    throw error
  }
}

function decodeHeaderAlg (jws: string): unknown {
  try {
    return (JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString()) as { alg?: unknown }).alg
  } catch {
    return undefined
  }
}

async function joseVerdict (jws: unknown, jwk: Record<string, unknown>, alg = 'RS256'): Promise<'valid' | 'invalid'> {
  try {
    await compactVerify(jws as string, await importJWK(jwk as never, alg), { algorithms: [alg] })
    return 'valid'
  } catch {
    return 'invalid'
  }
}

/**
 * Where we are deliberately stricter than Wycheproof's JWS verdict (which only judges the
 * signature): an empty payload cannot carry claims, and the compact form we accept is
 * `^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$` (SPEC 2.1), so it is malformed.
 */
const STRICTER: Readonly<Record<number, string>> = { 259: 'VJG_TOKEN_MALFORMED' }

/** The groups whose key is an RS256 signing key (kid-rsa-sign, RS256_2048, RFC 7520 Figure 13). */
const isRs256Group = (g: JwsGroup): boolean => g.public?.alg === 'RS256' && g.public.kty === 'RSA'

t.test('JWS rs256 group: all 226 vectors, verdict exactly as Wycheproof', async t => {
  const group = jwsGroups.find(g => g.comment === 'rs256' && g.public?.kid === 'kid-rsa-sign')!
  t.equal(group.tests.length, 226)
  const key = preparePublicKey(group.public, 'wycheproof')
  let valid = 0
  for (const vector of group.tests) {
    const verdict = signatureVerdict(vector.jws, key)
    t.equal(verdict === 'valid' ? 'valid' : 'invalid', vector.result, `tcId ${vector.tcId} ${vector.comment}`)
    if (verdict === 'valid') valid++
    // A modified padding is refused by the signature check, not by chance earlier.
    if (vector.flags.includes('ModifiedPadding')) t.equal(verdict, 'VJG_SIGNATURE_INVALID', `tcId ${vector.tcId}: refused as a bad signature`)
    t.equal(await joseVerdict(vector.jws, group.public!), vector.result, `tcId ${vector.tcId}: jose agrees`)
  }
  t.equal(valid, 1, 'exactly one vector verifies')
})

t.test('JWS: every other RS256 vector (other keys, other payloads, RFC 7520)', async t => {
  const groups = jwsGroups.filter(g => g.comment !== 'rsa_encryption' && isRs256Group(g) && g.public?.kid !== 'kid-rsa-sign')
  t.ok(groups.length >= 3, 'the RS256_2048 group and the two RFC 7520 RS256 groups')
  let count = 0
  for (const group of groups) {
    const key = preparePublicKey(group.public, 'wycheproof')
    for (const vector of group.tests) {
      count++
      const verdict = signatureVerdict(vector.jws, key)
      const expected = STRICTER[vector.tcId] ?? (vector.result === 'valid' ? 'valid' : 'VJG_SIGNATURE_INVALID')
      t.equal(verdict, expected, `tcId ${vector.tcId} ${group.comment} ${vector.comment}`)
      if (STRICTER[vector.tcId] !== undefined) {
        t.equal(await joseVerdict(vector.jws, group.public!), 'valid', `tcId ${vector.tcId}: jose accepts what we refuse on purpose`)
      } else {
        t.equal(await joseVerdict(vector.jws, group.public!), vector.result, `tcId ${vector.tcId}: jose agrees`)
      }
    }
  }
  t.ok(count >= 7)
})

t.test('JWS: RS384, RS512 and PS256/384/512, opted in with `algorithms`: verdicts as Wycheproof', async t => {
  const ALL_RSA = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
  // Stricter than Wycheproof on purpose: an empty payload is not compact JWS for us, and in the
  // RFC 7520 groups the JWK says "alg": "PS256" while the token says PS384: a JWK's alg binds it.
  const stricter: Readonly<Record<number, string>> = { 264: 'VJG_TOKEN_MALFORMED', 268: 'VJG_TOKEN_MALFORMED', 272: 'VJG_TOKEN_MALFORMED', 320: 'VJG_TOKEN_MALFORMED', 325: 'VJG_TOKEN_MALFORMED', 346: 'VJG_SIGNATURE_INVALID', 350: 'VJG_SIGNATURE_INVALID' }
  const groups = jwsGroups.filter(g => g.public?.kty === 'RSA' && typeof g.public.alg === 'string' && g.public.alg !== 'RS256')
  let count = 0
  for (const group of groups) {
    const key = preparePublicKey(group.public, 'wycheproof')
    for (const vector of group.tests) {
      count++
      const name = `tcId ${vector.tcId} ${group.comment} ${vector.comment}`
      const verdict = signatureVerdict(vector.jws, key, ALL_RSA)
      if (stricter[vector.tcId] !== undefined) {
        t.equal(verdict, stricter[vector.tcId], `${name}: refused on purpose`)
        continue
      }
      t.equal(verdict === 'valid' ? 'valid' : 'invalid', vector.result, name)
      const alg = typeof vector.jws === 'string' ? decodeHeaderAlg(vector.jws) : undefined
      if (typeof alg === 'string' && alg === group.public!.alg) {
        t.equal(await joseVerdict(vector.jws, group.public!, alg), vector.result, `${name}: jose agrees`)
      }
    }
  }
  t.ok(count >= 80, `${count} vectors`)
})

t.test('JWS: keys meant for encryption are refused at registration', async t => {
  const groups = jwsGroups.filter(g => g.comment === 'rsa_encryption')
  t.equal(groups.length, 2)
  for (const group of groups) {
    // Wycheproof's rejectWrongUse (use: enc) and rejectWrongKeyOps (key_ops: [encrypt]).
    t.throws(() => preparePublicKey(group.public, 'publicKey'), { name: 'TypeError', code: 'VJG_INVALID_OPTION' }, `${JSON.stringify(group.public?.use ?? group.public?.key_ops)}`)
    t.throws(() => createVerifier({ publicKey: group.public as never }), { code: 'VJG_INVALID_OPTION', option: 'publicKey' })
    for (const vector of group.tests) t.equal(vector.result, 'invalid')
  }
})

t.test('JWS: every vector of every other algorithm is refused by the verifier', async t => {
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const ourKey = preparePublicKey(keys.publicPem, 'publicKey')
  const others = jwsGroups.filter(g => !isRs256Group(g) && g.comment !== 'rsa_encryption')
  let count = 0
  for (const group of others) {
    for (const vector of group.tests) {
      count++
      const name = `tcId ${vector.tcId} ${group.comment} ${vector.comment}`
      const error = await verifier.verify(vector.jws as string).then(() => null, (e: unknown) => e)
      t.ok(error instanceof GuardError, `${name}: a GuardError`)
      t.ok(['VJG_ALG_NOT_ALLOWED', 'VJG_TOKEN_MALFORMED'].includes((error as GuardError).code), `${name}: ${(error as GuardError).code}`)
      // The signature layer alone refuses it too: an alg other than RS256 or a malformed token;
      // the few that claim RS256 under a PS key (ps512 UsingRS256, WrongPrimitive) fail the
      // signature, since the JWK's own alg binds the key to PS512.
      const own = group.public?.kty === 'RSA' ? preparePublicKey(group.public, 'wycheproof') : ourKey
      const layer = signatureVerdict(vector.jws, own)
      const expected = typeof vector.jws === 'string' && decodeHeaderAlg(vector.jws) === 'RS256' ? 'VJG_SIGNATURE_INVALID' : 'VJG_ALG_NOT_ALLOWED'
      t.ok(layer === expected || layer === 'VJG_TOKEN_MALFORMED', `${name}: signature layer ${layer}`)
      if (typeof vector.jws === 'string' && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(vector.jws) && vector.result === 'valid') {
        t.equal(layer, 'VJG_ALG_NOT_ALLOWED', `${name}: a well-formed token of another algorithm`)
      }
    }
  }
  t.ok(count > 150, `${count} vectors of other algorithms`)
})

t.test('RSASSA-PKCS1-v1_5 2048 SHA-256: every vector through verifySignature', async t => {
  const [main, ...smallExponent] = pkcsGroups
  const key = preparePublicKey(main!.keyJwk, 'wycheproof')
  t.equal(key.size, 256)
  for (const vector of main!.tests) {
    const name = `tcId ${vector.tcId} ${vector.comment} ${vector.flags.join(',')}`
    const signature = Buffer.from(vector.sig, 'hex')
    const verdict = verifySignature('RS256', Buffer.from(vector.msg, 'hex'), signature, key)
    // 'acceptable' is Wycheproof's word for legacy encodings (tcId 8: DigestInfo without the
    // NULL parameter). Accepting them is not a vulnerability, but two encodings of one signature
    // are a malleability we have no use for: we refuse them.
    t.equal(verdict, vector.result === 'valid', name)
    if (signature.length !== 256) {
      // Our own rule, before node:crypto is asked: a signature is exactly as long as the modulus.
      t.equal(vector.result, 'invalid', `${name}: a short signature is invalid anyway`)
    }
  }
  // Where the vectors differ from our policy: a valid signature with one leading zero byte
  // added or one dropped is refused by the length rule (RFC 8017 8.2.2 step 1).
  const valid = main!.tests.find(v => v.result === 'valid' && v.msg === '54657374')!
  const sig = Buffer.from(valid.sig, 'hex')
  t.equal(verifySignature('RS256', Buffer.from(valid.msg, 'hex'), Buffer.concat([Buffer.alloc(1), sig]), key), false, '257 bytes: refused')
  t.equal(verifySignature('RS256', Buffer.from(valid.msg, 'hex'), sig, key), true, 'the same signature at 256 bytes verifies')

  t.equal(smallExponent.length, 2)
  for (const group of smallExponent) {
    // Wycheproof marks these 'valid' (SmallPublicKey, e = 3): node:crypto does verify them, but
    // SPEC 2.1 accepts only e = 65537, so the key is refused before any signature is checked.
    const raw = createPublicKey(group.publicKeyPem)
    t.equal(raw.asymmetricKeyDetails?.publicExponent, 3n)
    for (const vector of group.tests) {
      t.equal(vector.result, 'valid')
      t.equal(cryptoVerify('sha256', Buffer.from(vector.msg, 'hex'), raw, Buffer.from(vector.sig, 'hex')), true, `tcId ${vector.tcId}: node alone accepts it`)
    }
    t.throws(() => preparePublicKey(group.publicKeyPem, 'publicKey'), { name: 'TypeError', code: 'VJG_INVALID_OPTION', message: /exponent 3/ })
    t.throws(() => preparePublicKey(group.keyJwk, 'publicKey'), { name: 'TypeError', code: 'VJG_INVALID_OPTION', message: /exponent 3/ })
  }
})
