/**
 * Differential check: jose's jwtVerify is the reference. On every token here, our verifier and
 * jose must reach the same signature verdict. Tokens are claims-valid, so the only thing that
 * can differ is the signature layer.
 */
import { jwtVerify } from 'jose'
import t from 'tap'
import { createVerifier } from '../lib/index.js'
import { b64, claims, keys, NOW_MS, otherKeys, sign, signRaw, token } from './helpers/keys.js'

type Verdict = 'valid' | 'refused'

async function ours (tok: string, algorithms: string[]): Promise<Verdict> {
  const verifier = createVerifier({ publicKey: keys.publicKey, algorithms, now: () => NOW_MS, cache: false })
  return verifier.verify(tok).then(() => 'valid', () => 'refused')
}

async function jose (tok: string, algorithms: string[]): Promise<Verdict> {
  return jwtVerify(tok, keys.publicKey, { algorithms, currentDate: new Date(NOW_MS) }).then(() => 'valid', () => 'refused')
}

function flipBit (text: string, index: number): string {
  const bytes = Buffer.from(text, 'base64url')
  bytes[index % bytes.length]! ^= 1
  return bytes.toString('base64url')
}

async function corpus (): Promise<Array<[string, string, string[]]>> {
  const valid = await token()
  const [h, p, s] = valid.split('.') as [string, string, string]
  const rows: Array<[string, string, string[]]> = [
    ['valid RS256', valid, ['RS256']],
    ['valid RS384', await token({}, { header: { alg: 'RS384' } }), ['RS384']],
    ['valid RS512', await token({}, { header: { alg: 'RS512' } }), ['RS512']],
    ['valid PS256', await token({}, { header: { alg: 'PS256' } }), ['PS256']],
    ['valid PS512', await token({}, { header: { alg: 'PS512' } }), ['PS512']],
    ['signed by another key', await token({}, { key: otherKeys.privateKey }), ['RS256']],
    ['RS256 signature under an RS384 header', `${b64({ alg: 'RS384', typ: 'JWT' })}.${p}.${s}`, ['RS256', 'RS384']],
    ['PS256 token, RS256 header swapped in', await (async () => { const ps = await token({}, { header: { alg: 'PS256' } }); return `${h}.${ps.split('.')[1]}.${ps.split('.')[2]}` })(), ['RS256', 'PS256']],
    ['payload from another token', `${h}.${(await token()).split('.')[1]}.${s}`, ['RS256']],
    ['header changed (typ removed)', `${b64({ alg: 'RS256' })}.${p}.${s}`, ['RS256']],
    ['signature truncated by one byte', `${h}.${p}.${Buffer.from(s, 'base64url').subarray(1).toString('base64url')}`, ['RS256']],
    ['signature with a zero byte prepended', `${h}.${p}.${Buffer.concat([Buffer.alloc(1), Buffer.from(s, 'base64url')]).toString('base64url')}`, ['RS256']],
    ['signature all zeros', `${h}.${p}.${Buffer.alloc(256).toString('base64url')}`, ['RS256']],
    ['signature of one byte', `${h}.${p}.AQ`, ['RS256']],
    ['raw-signed exact bytes', signRaw({ alg: 'RS256', typ: 'JWT' }, claims()), ['RS256']],
    ['signed over other bytes than sent', `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64(claims())}.${signRaw({ alg: 'RS256' }, claims()).split('.')[2]}`, ['RS256']],
    ['other key via jose SignJWT', await sign(claims(), { key: otherKeys.privateKey }), ['RS256']]
  ]
  for (const i of [0, 1, 17, 128, 254, 255]) rows.push([`signature bit flipped at byte ${i}`, `${h}.${p}.${flipBit(s, i)}`, ['RS256']])
  for (const i of [0, 5, 40]) rows.push([`payload bit flipped at byte ${i}`, `${h}.${flipBit(p, i)}.${s}`, ['RS256']])
  return rows
}

t.test('our verifier and jose jwtVerify agree on every signature verdict', async t => {
  for (const [name, tok, algorithms] of await corpus()) {
    const reference = await jose(tok, algorithms)
    t.equal(await ours(tok, algorithms), reference, `${name}: jose says ${reference}`)
  }
})

t.test('where we are deliberately stricter than jose: non-canonical base64url', async t => {
  // The last character of a 256-byte signature carries 2 unused bits. jose decodes "...A" and
  // "...B" to the same bytes; we refuse the variant so one signature has one spelling.
  const valid = await token()
  const last = valid.at(-1)!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const variant = valid.slice(0, -1) + alphabet[alphabet.indexOf(last) + 1]
  t.equal(await jose(variant, ['RS256']), 'valid', 'jose accepts the other spelling')
  const verifier = createVerifier({ publicKey: keys.publicKey, now: () => NOW_MS })
  await t.rejects(verifier.verify(variant), { code: 'VJG_TOKEN_MALFORMED', message: /canonical/ })
})
