/**
 * Known attacks on JWT verifiers, each a row: the token, and the status, code and challenge the
 * guard must answer with. Algorithm confusion (CVE-2015-9235, CVE-2016-10555), `none`, embedded
 * and remote keys (CVE-2018-0114), hostile header parameters, encodings other than strict compact
 * JWS, hostile claim values, prototype pollution and duplicate member names.
 */
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CompactEncrypt, FlattenedSign, GeneralSign, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { verifySignature } from '../lib/signature.js'
import { createVerifier } from '../lib/verify.js'
import { preparePublicKey } from '../lib/keys.js'
import { jsonStructureProblem, MAX_JSON_DEPTH } from '../lib/token.js'
import { bearer, buildApp } from './helpers/app.js'
import { APP_ID, b64, claims, keys, NOW, NOW_MS, otherKeys, signRaw, token } from './helpers/keys.js'

interface Row {
  name: string
  token: string
  status: number
  code?: string
  url?: string
}

/** The challenge a status and code must carry (RFC 6750). */
function challengeFor (status: number): RegExp {
  if (status === 403) return /^Bearer realm="vonage-jwt-guard", error="insufficient_scope", error_description="[^"]*"$/
  if (status === 400) return /^Bearer realm="vonage-jwt-guard", error="invalid_request", error_description="[^"]*"$/
  return /^Bearer realm="vonage-jwt-guard", error="invalid_token", error_description="[^"]*"$/
}

async function check (t: Test, rows: Row[], options: Record<string, unknown> = {}): Promise<void> {
  const app = await buildApp({ maxTokenLength: 65_536, ...options })
  try {
    for (const row of rows) {
      const res = await app.inject({ url: row.url ?? '/v1/users/abc', headers: bearer(row.token) })
      t.equal(res.statusCode, row.status, `${row.name}: status`)
      if (row.status === 200) {
        t.equal(res.headers['www-authenticate'], undefined, `${row.name}: no challenge`)
        continue
      }
      t.equal(res.json().code, row.code, `${row.name}: code`)
      t.match(res.headers['www-authenticate'], challengeFor(row.status), `${row.name}: challenge`)
    }
  } finally {
    await app.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Algorithm confusion: an HMAC keyed with the public key, in every form a library might hold it.

const HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }

function hmacToken (alg: string, secret: string | Buffer, header: Record<string, unknown> = {}): string {
  const input = `${b64({ alg, typ: 'JWT', ...header })}.${b64(claims())}`
  return `${input}.${createHmac(HASH[alg]!, secret).update(input).digest('base64url')}`
}

const spkiPem = keys.publicPem
const publicKeyForms: Array<[string, string | Buffer]> = [
  ['SPKI PEM with its trailing newline', spkiPem],
  ['SPKI PEM without the trailing newline', spkiPem.trimEnd()],
  ['SPKI PEM with a prefix line', `Public key:\n${spkiPem}`],
  ['SPKI PEM with CRLF line ends', spkiPem.replace(/\n/g, '\r\n')],
  ['PKCS#1 PEM', keys.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string],
  ['SPKI DER', keys.publicKey.export({ type: 'spki', format: 'der' })],
  ['PKCS#1 DER', keys.publicKey.export({ type: 'pkcs1', format: 'der' })],
  ['JWK JSON', JSON.stringify(keys.publicKey.export({ format: 'jwk' }))],
  ['JWK JSON with kid and alg', JSON.stringify({ ...keys.publicKey.export({ format: 'jwk' }), kid: 'k', alg: 'RS256' })]
]

t.test('HS256/384/512 keyed with the public key in every form: 401 VJG_ALG_NOT_ALLOWED', async t => {
  const rows: Row[] = []
  const prepared = preparePublicKey(keys.publicPem, 'publicKey')
  for (const [form, secret] of publicKeyForms) {
    for (const alg of Object.keys(HASH)) {
      const tok = hmacToken(alg, secret)
      rows.push({ name: `${alg} with ${form}`, token: tok, status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
      // Below the allow-list, the signature layer never runs an HMAC on a public key either.
      const [h, p, s] = tok.split('.')
      t.equal(verifySignature(alg, Buffer.from(`${h}.${p}`), Buffer.from(s!, 'base64url'), prepared), false, `${alg} with ${form}: signature layer`)
    }
  }
  await check(t, rows)
})

t.test('an HS algorithm next to a public key is a startup error', async t => {
  for (const alg of ['HS256', 'HS384', 'HS512', 'hs256']) {
    t.throws(() => createVerifier({ publicKey: keys.publicPem, algorithms: ['RS256', alg] }), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: 'algorithms' }, alg)
  }
})

t.test('alg none in every casing, other algorithms, no alg', async t => {
  const body = b64(claims())
  const rsSignature = (header: unknown): string => signRaw(header, claims()).split('.')[2]!
  const rows: Row[] = []
  for (const alg of ['none', 'None', 'NONE', 'nOnE', 'NoNe', 'none ', ' none']) {
    const head = b64({ alg, typ: 'JWT' })
    rows.push({ name: `alg "${alg}", empty signature`, token: `${head}.${body}.`, status: 401, code: 'VJG_TOKEN_MALFORMED' })
    rows.push({ name: `alg "${alg}", a signature part`, token: `${head}.${body}.AAAA`, status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
    rows.push({ name: `alg "${alg}", a real RS256 signature`, token: signRaw({ alg, typ: 'JWT' }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
  const ed = generateKeyPairSync('ed25519').privateKey
  const signed: Array<[string, KeyObject]> = [
    ['RS384', keys.privateKey], ['RS512', keys.privateKey], ['PS256', keys.privateKey], ['PS384', keys.privateKey],
    ['PS512', keys.privateKey], ['ES256', ec], ['ES384', ec384], ['EdDSA', ed]
  ]
  for (const [alg, key] of signed) {
    const tok = await new SignJWT(claims()).setProtectedHeader({ alg, typ: 'JWT' }).sign(key)
    rows.push({ name: `${alg}, genuinely signed`, token: tok, status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  }
  for (const alg of ['rs256', 'Rs256', 'RS256 ', 'RS256\u0000', 'RS2560', '']) {
    rows.push({ name: `alg ${JSON.stringify(alg)}`, token: signRaw({ alg }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  }
  for (const alg of [null, ['RS256'], { RS256: true }, 256, true]) {
    rows.push({ name: `alg ${JSON.stringify(alg)} (not a string)`, token: signRaw({ alg }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  }
  rows.push({ name: 'no alg', token: signRaw({ typ: 'JWT' }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  rows.push({ name: 'empty header', token: `${b64({})}.${body}.${rsSignature({})}`, status: 401, code: 'VJG_ALG_NOT_ALLOWED' })
  await check(t, rows)
})

t.test('embedded jwk, jku, x5u, x5c never select a key, and nothing is fetched', async t => {
  let connections = 0
  const listener = createServer((_req, res) => { res.end(JSON.stringify({ keys: [otherKeys.publicKey.export({ format: 'jwk' })] })) })
  listener.on('connection', () => { connections++ })
  await new Promise<void>(resolve => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => listener.close(() => resolve())))
  const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`

  const attackerJwk = { ...otherKeys.publicKey.export({ format: 'jwk' }), kid: 'attacker', alg: 'RS256', use: 'sig' }
  const attackerDer = otherKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
  const params: Array<[string, Record<string, unknown>]> = [
    ['jwk', { jwk: attackerJwk }],
    ['jwk with kid', { jwk: attackerJwk, kid: 'attacker' }],
    ['jku', { jku: `${url}/jwks.json` }],
    ['jku and kid', { jku: `${url}/jwks.json`, kid: 'attacker' }],
    ['x5u', { x5u: `${url}/cert.pem` }],
    ['x5c', { x5c: [attackerDer] }],
    ['everything at once', { jwk: attackerJwk, jku: `${url}/a`, x5u: `${url}/b`, x5c: [attackerDer], kid: 'attacker' }]
  ]
  const rows: Row[] = []
  for (const [name, header] of params) {
    rows.push({ name: `${name}, signed by the attacker`, token: await token({}, { key: otherKeys.privateKey, header }), status: 401, code: 'VJG_SIGNATURE_INVALID' })
    // Signed by the right key the parameters are inert: still no request goes out.
    rows.push({ name: `${name}, signed by the configured key`, token: await token({}, { header }), status: 200 })
  }
  await check(t, rows)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(connections, 0, 'the listener saw no connection')
})

t.test('keys chosen by application_id: a hostile id never reaches a prototype key', async t => {
  const rows: Row[] = []
  for (const id of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '']) {
    rows.push({ name: `application_id ${JSON.stringify(id)}`, token: await token({ application_id: id }), status: 401, code: 'VJG_KEY_UNKNOWN' })
  }
  for (const id of [null, 1, true, [APP_ID], { [APP_ID]: 1 }]) {
    rows.push({ name: `application_id ${JSON.stringify(id)} (not a string)`, token: signRaw({ alg: 'RS256' }, claims({ application_id: id })), status: 401, code: 'VJG_KEY_UNKNOWN' })
  }
  rows.push({ name: 'the configured id', token: await token(), status: 200 })
  rows.push({ name: 'the configured id, signed by another key', token: await token({}, { key: otherKeys.privateKey }), status: 401, code: 'VJG_SIGNATURE_INVALID' })
  await check(t, rows, { publicKey: undefined, publicKeys: { [APP_ID]: keys.publicPem } })
})

t.test('hostile kid: inert when a string, refused when too long or not a string', async t => {
  const rows: Row[] = []
  for (const kid of ['../../../../../../dev/null', '/etc/passwd', "' OR '1'='1' --", '"; DROP TABLE keys; --', '${jndi:ldap://x/a}', '\u0000', 'a'.repeat(256)]) {
    rows.push({ name: `kid ${JSON.stringify(kid).slice(0, 40)}, configured key`, token: await token({}, { header: { kid } }), status: 200 })
    rows.push({ name: `kid ${JSON.stringify(kid).slice(0, 40)}, attacker key`, token: await token({}, { key: otherKeys.privateKey, header: { kid } }), status: 401, code: 'VJG_SIGNATURE_INVALID' })
  }
  for (const kid of ['a'.repeat(257), 'k'.repeat(10_000), '', 0, 1, null, true, [], ['a'], {}, { $ne: null }]) {
    rows.push({ name: `kid ${JSON.stringify(kid).slice(0, 40)}`, token: signRaw({ alg: 'RS256', kid }, claims()), status: 401, code: 'VJG_TOKEN_MALFORMED' })
  }
  await check(t, rows)
})

t.test('crit, b64, JWE, JSON serialization, padding and other encodings', async t => {
  const valid = await token()
  const [h, p, s] = valid.split('.') as [string, string, string]
  const jwe = await new CompactEncrypt(Buffer.from(JSON.stringify(claims()))).setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }).encrypt(keys.publicKey)
  const flattened = await new FlattenedSign(Buffer.from(JSON.stringify(claims()))).setProtectedHeader({ alg: 'RS256' }).sign(keys.privateKey)
  const general = await new GeneralSign(Buffer.from(JSON.stringify(claims()))).addSignature(keys.privateKey).setProtectedHeader({ alg: 'RS256' }).sign()
  // The last signature character with its unused low bits set: Buffer and jose decode it to the
  // same bytes, so a lax decoder accepts a second spelling of one token.
  const last = s[s.length - 1]!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const sibling = alphabet[alphabet.indexOf(last) | 0x0f]!
  const rows: Row[] = [
    { name: 'crit ["exp"]', token: signRaw({ alg: 'RS256', crit: ['exp'], exp: 1 }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'crit []', token: signRaw({ alg: 'RS256', crit: [] }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'crit "b64"', token: signRaw({ alg: 'RS256', crit: 'b64' }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'b64 false with crit', token: signRaw({ alg: 'RS256', b64: false, crit: ['b64'] }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'b64 false without crit', token: signRaw({ alg: 'RS256', b64: false }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'b64 "false"', token: signRaw({ alg: 'RS256', b64: 'false' }, claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'unencoded payload (b64 false) as JWS of raw JSON', token: `${b64({ alg: 'RS256', b64: false, crit: ['b64'] })}.${JSON.stringify(claims())}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'a real five-part JWE to our public key', token: jwe, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'five parts made of a JWS', token: `${valid}.${p}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'four parts', token: `${valid}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'flattened JSON serialization', token: JSON.stringify(flattened), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'general JSON serialization', token: JSON.stringify(general), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: '== padding on the signature', token: `${valid}==`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: '= padding on the header', token: `${h}=.${p}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'standard base64 alphabet', token: `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}${/[-_]/.test(s) ? '' : '+'}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'non-canonical trailing bits in the signature', token: `${h}.${p}.${s.slice(0, -1)}${sibling}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'a space inside', token: `${h}.${p} .${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'empty header part', token: `.${p}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'empty payload part', token: `${h}..${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'header with a BOM', token: signRaw('\ufeff{"alg":"RS256"}', claims()), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'payload of invalid UTF-8', token: `${h}.${Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url')}.${s}`, status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'payload a JSON string', token: signRaw({ alg: 'RS256' }, JSON.stringify(JSON.stringify(claims()))), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'payload null', token: signRaw({ alg: 'RS256' }, 'null'), status: 401, code: 'VJG_TOKEN_MALFORMED' }
  ]
  await check(t, rows)
})

// ---------------------------------------------------------------------------------------------
// Claims: every claim replaced by every hostile JSON value. The payload text is written by hand,
// since some of these (1e309) cannot come out of JSON.stringify.

const HOSTILE: Array<[string, string]> = [
  ['null', 'null'], ['true', 'true'], ['0', '0'], ['-1', '-1'], ['1.5', '1.5'], ['1e309', '1e309'],
  ['2**60', String(2 ** 60)], ['""', '""'], ['[]', '[]'], ['{}', '{}'], ['CR/LF', '"a\\r\\nb"'], ['NUL', '"a\\u0000b"']
]

/** What the guard must answer for `claim` set to `value` (SPEC 2.1), as [status, code]. */
function expected (claim: string, value: string): [number, string?] {
  const isText = value.startsWith('"') && value !== '""'
  switch (claim) {
    case 'application_id': case 'jti': case 'sub':
      // Signed strings are data: CR/LF or NUL in them is accepted and never reaches a header.
      return isText ? [200] : [401, 'VJG_CLAIM_INVALID']
    case 'iat':
      // 1.5 is a NumericDate in 1970: capped at iat + 24 h, long expired.
      return value === '1.5' ? [401, 'VJG_TOKEN_EXPIRED'] : [401, 'VJG_CLAIM_INVALID']
    case 'nbf':
      return value === '1.5' ? [200] : [401, 'VJG_CLAIM_INVALID']
    default: // exp (1.5 is before iat), acl (no hostile value is an acl object)
      return [401, 'VJG_CLAIM_INVALID']
  }
}

function payloadWith (claim: string, raw: string): string {
  const base = claims({ [claim]: 0 })
  const entries = Object.entries(base).map(([k, v]) => `${JSON.stringify(k)}:${k === claim ? raw : JSON.stringify(v)}`)
  return `{${entries.join(',')}}`
}

t.test('every claim replaced by null, true, 0, -1, 1.5, 1e309, 2**60, "", [], {}, CR/LF, NUL', async t => {
  const rows: Row[] = []
  for (const claim of ['application_id', 'iat', 'exp', 'nbf', 'jti', 'sub', 'acl']) {
    for (const [label, raw] of HOSTILE) {
      const [status, code] = expected(claim, raw)
      rows.push({ name: `${claim} = ${label}`, token: signRaw({ alg: 'RS256', typ: 'JWT' }, payloadWith(claim, raw)), status, code })
    }
  }
  t.equal(rows.length, 84)
  await check(t, rows)
})

t.test('__proto__ and constructor in claims and headers: no pollution, no effect', async t => {
  const acl = JSON.stringify({ paths: { '/v1/users/**': {} } })
  const base = `"application_id":"${APP_ID}","iat":${NOW - 10},"exp":${NOW + 600},"jti":"j1"`
  const rows: Row[] = [
    { name: '__proto__ granting everything, on a path only it would grant', url: '/v1/calls/x', token: signRaw({ alg: 'RS256' }, `{${base},"acl":${acl},"__proto__":{"acl":{"paths":{"/**":{}}},"admin":true,"polluted":1}}`), status: 403, code: 'VJG_ACL_DENIED' },
    { name: '__proto__ inside acl', url: '/v1/calls/x', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/v1/users/**":{}},"__proto__":{"paths":{"/**":{}}}}}`), status: 403, code: 'VJG_ACL_DENIED' },
    { name: '__proto__ as an acl pattern', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"__proto__":{"methods":["GET"]}}}}`), status: 401, code: 'VJG_CLAIM_INVALID' },
    { name: '__proto__ inside a rule', url: '/v1/users/x', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/v1/users/**":{"methods":["POST"],"__proto__":{"methods":["GET"]}}}}}`), status: 403, code: 'VJG_ACL_DENIED' },
    { name: 'required claim only on __proto__', token: signRaw({ alg: 'RS256' }, `{"iat":${NOW - 10},"jti":"j","__proto__":{"application_id":"${APP_ID}"}}`), status: 401, code: 'VJG_CLAIM_MISSING' },
    { name: 'constructor.prototype in claims', token: signRaw({ alg: 'RS256' }, `{${base},"constructor":{"prototype":{"polluted":1}},"acl":${acl}}`), status: 200 },
    { name: 'alg only on the header __proto__', token: signRaw('{"__proto__":{"alg":"RS256"}}', claims()), status: 401, code: 'VJG_ALG_NOT_ALLOWED' },
    { name: 'header __proto__ saying none', token: signRaw('{"alg":"RS256","__proto__":{"alg":"none","crit":["x"]}}', claims()), status: 200 },
    { name: 'header constructor', token: signRaw('{"alg":"RS256","constructor":{"prototype":{"polluted":1}}}', claims()), status: 200 }
  ]
  await check(t, rows)
  const probe: Record<string, unknown> = {}
  t.equal(probe.polluted, undefined, 'Object.prototype.polluted stays undefined')
  t.equal(probe.admin, undefined)
  t.equal(probe.acl, undefined)
  t.same(Object.keys(Object.prototype), [], 'Object.prototype gained no key')

  // The verified claims keep __proto__ as a plain own key, frozen, with the usual prototype.
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS })
  const verified = await verifier.verify(signRaw({ alg: 'RS256' }, `{${base},"__proto__":{"x":1}}`))
  t.ok(Object.hasOwn(verified.claims, '__proto__'))
  t.equal(Object.getPrototypeOf(verified.claims), Object.prototype)
  t.ok(Object.isFrozen(verified.claims))
})

t.test('duplicate member names are refused (VJG_TOKEN_MALFORMED), in the header and anywhere in the payload', async t => {
  const base = `"application_id":"${APP_ID}","iat":${NOW - 10},"exp":${NOW + 600},"jti":"j1"`
  const rows: Row[] = [
    { name: 'header alg twice', token: signRaw('{"alg":"none","alg":"RS256"}', claims()), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'header kid twice', token: signRaw('{"alg":"RS256","kid":"a","kid":"b"}', claims()), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'application_id twice', token: signRaw({ alg: 'RS256' }, `{${base},"application_id":"other"}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'sub twice', token: signRaw({ alg: 'RS256' }, `{${base},"sub":"alice","sub":"admin"}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'acl twice', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/v1/users/**":{}}},"acl":{"paths":{"/**":{}}}}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'a pattern twice in acl.paths', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/v1/users/**":{"methods":["GET"]},"/v1/users/**":{}}}}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'methods twice in a rule', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/v1/users/**":{"methods":["GET"],"methods":["POST"]}}}}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'a duplicate spelled with an escape', token: signRaw({ alg: 'RS256' }, `{${base},"\\u0061pplication_id":"other"}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'a duplicate inside an array of objects', token: signRaw({ alg: 'RS256' }, `{${base},"list":[{"a":1,"a":2}]}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'the same name in sibling objects is fine', token: signRaw({ alg: 'RS256' }, `{${base},"x":{"a":1},"y":{"a":1},"z":[{"a":1},{"a":2}]}`), status: 200 },
    { name: 'a value equal to a name is fine', token: signRaw({ alg: 'RS256' }, `{${base},"sub":"sub","k":["sub","sub"]}`), status: 200 }
  ]
  await check(t, rows)
})

t.test('jsonStructureProblem reads strings and escapes exactly', async t => {
  const cases: Array<[string, boolean]> = [
    ['{}', false],
    ['{"a":1,"b":2}', false],
    ['{"a":1,"a":1}', true],
    ['{ "a" : 1 , "a"\n:\t2 }', true],
    ['{"a\\"":1,"a":2}', false],
    ['{"a":"\\",\\"a\\":","b":1}', false],
    ['{"k":"x\\":","k":1}', true],
    ['{"\\u00e9":1,"é":2}', true],
    ['{"\\ud83d\\ude00":1,"😀":2}', true],
    ['{"a":{"a":{"a":1}}}', false],
    ['{"a":[{"b":1},{"b":2}],"c":{"b":3}}', false],
    ['{"a":[{"b":1,"b":2}]}', true],
    ['{"a":{"b":1},"a":{"b":1}}', true],
    ['{"x":"{\\"a\\":1,\\"a\\":2}"}', false],
    ['[{"a":1},{"a":1}]', false]
  ]
  for (const [text, duplicate] of cases) {
    JSON.parse(text) // every case is valid JSON, as the scanner assumes
    t.equal(jsonStructureProblem(text), duplicate ? 'repeats a member name in one JSON object' : undefined, text)
  }
})

t.test('nesting is bounded: deep JSON is malformed, not a stack overflow', async t => {
  const base = `"application_id":"${APP_ID}","iat":${NOW - 10},"exp":${NOW + 600},"jti":"j1"`
  const nested = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`
  t.equal(MAX_JSON_DEPTH, 32)
  await check(t, [
    { name: `${MAX_JSON_DEPTH} levels in all`, token: signRaw({ alg: 'RS256' }, `{${base},"x":${nested(MAX_JSON_DEPTH - 1)}}`), status: 200 },
    { name: `${MAX_JSON_DEPTH + 1} levels`, token: signRaw({ alg: 'RS256' }, `{${base},"x":${nested(MAX_JSON_DEPTH)}}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'deep objects in the acl', token: signRaw({ alg: 'RS256' }, `{${base},"acl":{"paths":{"/**":{"filters":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}}}}`), status: 401, code: 'VJG_TOKEN_MALFORMED' },
    { name: 'deep header', token: signRaw(`{"alg":"RS256","x":${nested(40)}}`, claims()), status: 401, code: 'VJG_TOKEN_MALFORMED' }
  ])
  // With the largest maxTokenLength, 300,000 levels: a coded refusal, not a RangeError.
  const verifier = createVerifier({ publicKey: keys.publicPem, now: () => NOW_MS, maxTokenLength: 1_048_576 })
  await t.rejects(verifier.verify(signRaw({ alg: 'RS256' }, `{${base},"x":${nested(300_000)}}`)), { code: 'VJG_TOKEN_MALFORMED' })
})

t.test('header parsing is linear: a long run of spaces costs microseconds, not a blocked event loop', async t => {
  // The first Authorization parser, /^(tchar+) +(\S*) *$/, backtracked quadratically on
  // "Bearer" + n spaces + "x y": about 0.5 s of CPU per request at n = 16,000 (a header Node's
  // default 16 KB limit lets through). The hand-written split that replaced it is linear.
  const app = await buildApp()
  t.teardown(() => app.close())
  const values = [`Bearer${' '.repeat(16_000)}x y`, `Bearer${' '.repeat(16_000)}\t`, `Bearer ${'x '.repeat(8000)}`, `${'B'.repeat(16_000)} x`]
  for (const authorization of values) {
    let best = Infinity
    let res
    for (let i = 0; i < 3; i++) {
      const start = performance.now()
      res = await app.inject({ url: '/v1/users', headers: { authorization } })
      best = Math.min(best, performance.now() - start)
    }
    t.ok(res!.statusCode === 401, `${JSON.stringify(authorization.slice(0, 12))}...: 401`)
    t.ok(best < 100, `${JSON.stringify(authorization.slice(0, 12))}...: answered in ${best.toFixed(1)} ms`)
  }
})
