/**
 * Making keys and tokens, for tests, fixtures and the CLI: `vonage-jwt-guard/mint`.
 * Signing is jose's `SignJWT`; the claims follow Vonage's own generator (`@vonage/jwt`):
 * `application_id`, `iat`, `jti`, `exp = iat + ttl` (900 s by default).
 */
import { createPrivateKey, generateKeyPair, randomUUID, type KeyObject, type webcrypto } from 'node:crypto'
import { promisify } from 'node:util'

type CryptoKey = webcrypto.CryptoKey
import { SignJWT } from 'jose'

export interface KeyPairPem {
  /** PKCS#8 PEM, what the Vonage dashboard hands out as `private.key`. */
  privateKey: string
  /** SPKI PEM, what the guard's `publicKey` option takes. */
  publicKey: string
}

const generateKeyPairAsync = promisify(generateKeyPair)

/** A fresh RSA key pair (2048 bits by default) as PEM strings, made on the thread pool: the event loop goes on meanwhile. */
export async function generateKeys (options: { modulusLength?: number } = {}): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: options.modulusLength ?? 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' }
  })
  return { privateKey, publicKey }
}

export interface MintOptions {
  /** Sets `application_id` unless the claims already have one. */
  applicationId?: string
  /** Lifetime in seconds from `iat`, giving `exp`. @default 900 */
  ttl?: number
  /** An explicit `exp` (NumericDate seconds), or `false` to leave `exp` out (Vonage then applies 15 minutes). */
  exp?: number | false
  /** Sets `sub` unless the claims already have one. */
  sub?: string
  /** Sets `acl` unless the claims already have one. */
  acl?: unknown
  /** The `kid` header parameter. */
  kid?: string
  /** Signing algorithm. @default 'RS256' */
  alg?: string
  /** Extra protected-header parameters. */
  header?: Record<string, unknown>
  /** The clock in milliseconds, for `iat`. @default Date.now */
  now?: () => number
}

/** The standard Client SDK ACL, as `vonage jwt create` and Vonage's docs give it. */
export const CLIENT_SDK_ACL = Object.freeze({
  paths: Object.freeze({
    '/*/users/**': {},
    '/*/conversations/**': {},
    '/*/sessions/**': {},
    '/*/devices/**': {},
    '/*/image/**': {},
    '/*/media/**': {},
    '/*/applications/**': {},
    '/*/push/**': {},
    '/*/knocking/**': {},
    '/*/legs/**': {}
  })
})

function toPrivateKey (key: string | Buffer | KeyObject | CryptoKey): KeyObject | CryptoKey {
  if (typeof key === 'string' || Buffer.isBuffer(key)) return createPrivateKey(key)
  return key
}

/** Sign a Vonage-style JWT. Claims given win over the defaults the options fill in. */
export async function mintToken (
  claims: Record<string, unknown>,
  privateKey: string | Buffer | KeyObject | CryptoKey,
  options: MintOptions = {}
): Promise<string> {
  const now = Math.floor((options.now ?? Date.now)() / 1000)
  const payload: Record<string, unknown> = { ...claims }
  if (options.applicationId !== undefined) payload.application_id ??= options.applicationId
  if (options.sub !== undefined) payload.sub ??= options.sub
  if (options.acl !== undefined) payload.acl ??= options.acl
  payload.iat ??= now
  payload.jti ??= randomUUID()
  if (options.exp !== false && payload.exp === undefined) {
    payload.exp = options.exp ?? (payload.iat as number) + (options.ttl ?? 900)
  }
  const header = { typ: 'JWT', ...options.header, alg: options.alg ?? 'RS256', ...(options.kid === undefined ? {} : { kid: options.kid }) }
  return new SignJWT(payload).setProtectedHeader(header).sign(toPrivateKey(privateKey))
}
