/**
 * Key material, prepared once at registration as `KeyObject`s for the hot path.
 *
 * Keys are parsed with node:crypto, synchronously, so that a bad key is a `TypeError` at
 * `createVerifier()` / `register()` time rather than a failure on the first request (jose 6
 * imports through WebCrypto and is async only). Every RSA key must be at least 2048 bits with
 * the public exponent 65537: node and jose accept e = 1, with which `sig = m` "verifies" and
 * anyone can forge a token.
 */
import { createPublicKey, createSecretKey, KeyObject, X509Certificate } from 'node:crypto'
import { invalidOption, InvalidOptionError } from './errors.js'
import type { JsonWebKeyInput } from './types.js'

export type { JsonWebKeyInput, PublicKeyInput } from './types.js'

/** A key ready for the hot path: the `KeyObject` plus what binds it. */
export interface PreparedKey {
  readonly key: KeyObject
  /** Signature length in bytes (the RSA modulus size); 0 for secrets. */
  readonly size: number
  /** When the JWK named an `alg`, the key verifies only that algorithm. */
  readonly alg: string | undefined
  readonly kid: string | undefined
}

const MIN_RSA_BITS = 2048
const RSA_EXPONENT = 65537n
/** RFC 7518 3.2: an HMAC key must be at least as long as the hash; we ask 16 bytes of any secret. */
const MIN_SECRET_BYTES = 16

function isPem (text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]+-----/.test(text)
}

function isJwk (value: unknown): value is JsonWebKeyInput {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) &&
    !(value instanceof KeyObject) && typeof (value as { kty?: unknown }).kty === 'string'
}

function toKeyObject (input: unknown, option: string): KeyObject {
  try {
    if (input instanceof KeyObject) {
      if (input.type === 'secret') invalidOption(option, 'is a secret key: an RSA public key is expected')
      return input.type === 'private' ? createPublicKey(input) : input
    }
    if (typeof input === 'string' || Buffer.isBuffer(input)) {
      const text = typeof input === 'string' ? input : input.toString('latin1')
      if (isPem(text)) {
        if (text.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(text).publicKey
        // A private key given where a public key belongs is reduced to its public half.
        return createPublicKey(text)
      }
      if (Buffer.isBuffer(input)) return createPublicKey({ key: input, format: 'der', type: 'spki' })
      if (text.trim().startsWith('{')) return toKeyObject(JSON.parse(text), option)
      invalidOption(option, 'is a string that is neither PEM nor JWK JSON')
    }
    if (isJwk(input)) {
      if (input.use !== undefined && input.use !== 'sig') invalidOption(option, `is a JWK with use "${input.use}": only "sig" keys verify tokens`)
      // RFC 7517 4.3: key_ops, when present, must allow "verify" (node ignores it on import).
      if (input.key_ops !== undefined && (!Array.isArray(input.key_ops) || !input.key_ops.includes('verify'))) {
        invalidOption(option, 'is a JWK whose key_ops do not include "verify"')
      }
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicPart } = input
      return createPublicKey({ key: publicPart as import('node:crypto').JsonWebKey, format: 'jwk' })
    }
  } catch (error) {
    if (error instanceof InvalidOptionError) throw error
    invalidOption(option, `could not be parsed as a key (${(error as Error).message})`)
  }
  invalidOption(option, 'must be a PEM string (SPKI or certificate), a JWK object, a KeyObject or a DER Buffer')
}

/** Refuse RSA keys anyone could forge with: under 2048 bits, or an exponent other than 65537. */
function assertRsaStrength (key: KeyObject, option: string): void {
  if (key.asymmetricKeyType !== 'rsa') {
    invalidOption(option, `is a ${key.asymmetricKeyType ?? 'non-asymmetric'} key: only RSA keys verify RS256`)
  }
  const details = key.asymmetricKeyDetails
  const bits = details?.modulusLength ?? 0
  if (bits < MIN_RSA_BITS) invalidOption(option, `is a ${bits}-bit RSA key: at least ${MIN_RSA_BITS} bits are required`)
  if (details?.publicExponent !== RSA_EXPONENT) {
    invalidOption(option, `has the RSA public exponent ${String(details?.publicExponent)}: only 65537 is accepted (e = 1 lets anyone forge a signature)`)
  }
}

/** One public key (any accepted form) → a checked `PreparedKey`. */
export function preparePublicKey (input: unknown, option: string): PreparedKey {
  const key = toKeyObject(input, option)
  assertRsaStrength(key, option)
  const jwk = isJwk(input) ? input : undefined
  return Object.freeze({
    key,
    size: (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8,
    alg: typeof jwk?.alg === 'string' ? jwk.alg : undefined,
    kid: typeof jwk?.kid === 'string' ? jwk.kid : undefined
  })
}

/** A key or an array of keys → a non-empty frozen list. */
export function preparePublicKeys (input: unknown, option: string): readonly PreparedKey[] {
  const list = Array.isArray(input) ? input : [input]
  if (list.length === 0) invalidOption(option, 'is an empty array: give at least one key')
  return Object.freeze(list.map((item, i) => preparePublicKey(item, Array.isArray(input) ? `${option}[${i}]` : option)))
}

/** An HMAC secret (string or bytes) of at least 16 bytes. */
export function prepareSecret (input: unknown, option: string): PreparedKey {
  if (input instanceof KeyObject && input.type !== 'secret') invalidOption(option, 'is an asymmetric key: HS256 needs a shared secret')
  if (typeof input !== 'string' && !Buffer.isBuffer(input) && !(input instanceof KeyObject)) {
    invalidOption(option, 'must be a string, a Buffer or a secret KeyObject')
  }
  if ((typeof input === 'string' || Buffer.isBuffer(input)) && isPem(input.toString())) {
    invalidOption(option, 'looks like a PEM key: an HMAC secret must not be a public key (algorithm confusion)')
  }
  const key = input instanceof KeyObject ? input : createSecretKey(typeof input === 'string' ? Buffer.from(input, 'utf8') : input)
  const bytes = key.symmetricKeySize ?? 0
  if (bytes < MIN_SECRET_BYTES) invalidOption(option, `is ${bytes} bytes: a secret must be at least ${MIN_SECRET_BYTES} bytes`)
  return Object.freeze({ key, size: 0, alg: undefined, kid: undefined })
}
