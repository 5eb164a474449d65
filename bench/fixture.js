/**
 * The benchmark's keys and tokens: an RSA-2048 pair, one token for the "reused" scenario, a pool
 * of distinct tokens (streamed by the distinct and connection scenarios, cycled by the cache-size
 * scenarios, all of them through the memory check) and a pool of tokens whose ACL is their own
 * (unique-acl scenario, unique-ACL memory check). Kept in bench/.cache/ and made again once they
 * have less than two hours to live (they live 23 h) or a run needs more of them, so only the
 * first run of the day pays for the signing.
 *
 * Tokens are what `vonage jwt create` makes (`{ alg: RS256, typ: JWT }`, `application_id`, `iat`,
 * `jti`, `exp`, `sub` and the standard Client SDK ACL), signed here with `crypto.sign` on two
 * worker threads: jose's SignJWT would take minutes for 200,000 of them.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

export const APP_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'
/** GET on this path is granted by `/*\/users/**` of the Client SDK ACL. */
export const PATH = '/v1/users/abc'

/** Under Vonage's 24 h maxLifetime, so no verifier caps it. */
const LIFETIME = 23 * 3600

const HEADER = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url')

function signToken (privateKey, claims) {
  const signingInput = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url')}`
}

function claimsFor (jti, iat, acl) {
  return { application_id: APP_ID, iat, jti, exp: iat + LIFETIME, sub: 'bench-user', acl }
}

/** A token of `lifetime` seconds from now, as `vonage jwt create` makes one with its default 15 minutes (the app scenario's). */
export function freshToken (privateKey, acl, lifetime = 900) {
  const iat = Math.floor(Date.now() / 1000) - 5
  return signToken(privateKey, { ...claimsFor(randomUUID(), iat, acl), exp: iat + lifetime })
}

/** The request path of the i-th unique-ACL token: granted by the last of its nine patterns. */
export function uniquePath (i) {
  return `/v1/users/t${i}`
}

/**
 * Nine patterns no other token has, in the shape of a Client SDK ACL narrowed to one user's
 * resources: eight `/*\/<resource>/t<i>/**` and, last, the one that grants `uniquePath(i)`.
 */
export function uniqueAcl (i) {
  const paths = {}
  for (const resource of ['conversations', 'sessions', 'devices', 'image', 'media', 'applications', 'push', 'knocking']) {
    paths[`/*/${resource}/t${i}/**`] = {}
  }
  paths[`/*/users/t${i}`] = {}
  return { paths }
}

if (!isMainThread) {
  const { privateKey, from, count, iat, acl, prefix } = workerData
  const tokens = []
  for (let i = from; i < from + count; i++) {
    tokens.push(signToken(privateKey, claimsFor(`${prefix}-${i}`, iat, acl === 'unique' ? uniqueAcl(i) : acl)))
  }
  parentPort.postMessage(tokens.join('\n'))
}

/** `count` tokens signed on `workers` threads, the i-th with claimsFor(prefix-i). */
async function signMany ({ privateKey, count, iat, acl, prefix, workers }) {
  const share = Math.ceil(count / workers)
  const parts = await Promise.all(Array.from({ length: workers }, (_, w) => {
    const from = w * share
    const n = Math.max(0, Math.min(share, count - from))
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { privateKey, from, count: n, iat, acl, prefix } })
      worker.once('message', resolve)
      worker.once('error', reject)
    })
  }))
  return parts.filter(p => p.length > 0).join('\n')
}

/**
 * The keys, at least `count` distinct tokens and `uniqueCount` unique-ACL tokens, from `dir` when
 * they are there and fresh, else made and written there (JSON, with the tokens in
 * newline-separated files) so that child processes can read them.
 */
export async function makeFixture ({ count, uniqueCount = 0, acl, dir, workers = 2 }) {
  const fixtureFile = join(dir, 'fixture.json')
  if (existsSync(fixtureFile)) {
    const kept = JSON.parse(readFileSync(fixtureFile, 'utf8'))
    if (kept.count >= count && (kept.uniqueCount ?? 0) >= uniqueCount && kept.expiresAt - Date.now() / 1000 > 2 * 3600 &&
      JSON.stringify(kept.acl) === JSON.stringify(acl) && kept.privateKey !== undefined && existsSync(kept.tokensFile) && (uniqueCount === 0 || existsSync(kept.uniqueTokensFile))) {
      return { ...kept, fixtureFile, reused: true }
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' }
  })
  const iat = Math.floor(Date.now() / 1000) - 5
  const prefix = randomUUID()
  const token = signToken(privateKey, claimsFor(`${prefix}-reused`, iat, acl))
  mkdirSync(dir, { recursive: true })
  const tokensFile = join(dir, 'tokens.txt')
  writeFileSync(tokensFile, await signMany({ privateKey, count, iat, acl, prefix, workers }))
  const uniqueTokensFile = join(dir, 'unique-acl-tokens.txt')
  writeFileSync(uniqueTokensFile, await signMany({ privateKey, count: uniqueCount, iat, acl: 'unique', prefix: `${prefix}-u`, workers }))
  // The private key too (bench/.cache/ only): run.js mints the short-lived token of the app scenario per run.
  const fixture = { publicKey, privateKey, token, tokensFile, count, uniqueTokensFile, uniqueCount, acl, expiresAt: iat + LIFETIME, path: PATH }
  writeFileSync(fixtureFile, JSON.stringify(fixture))
  return { ...fixture, fixtureFile, reused: false }
}
