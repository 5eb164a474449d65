/**
 * Keys and tokens for tests, generated at run time. Tokens are signed with jose's SignJWT
 * directly (not with our own mint helper), so the tests do not grade our code with our code.
 */
import { generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import { CLIENT_SDK_ACL } from '../../lib/mint.js'

interface TestKeyPair {
  privateKey: KeyObject
  publicKey: KeyObject
  privatePem: string
  publicPem: string
}

export function makeKeyPair (modulusLength = 2048): TestKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength })
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string
  }
}

/** One pair for the whole test file: RSA generation is the slow part of a test run. */
export const keys = makeKeyPair()
export const otherKeys = makeKeyPair()

export const APP_ID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'
/** A fixed clock: 2026-11-23T12:00:00Z. Tests pass `now: () => NOW_MS`. */
export const NOW = 1_795_435_200
export const NOW_MS = NOW * 1000

/** The standard Client SDK ACL (the same data `vonage jwt create` puts in a token). */
export const CLIENT_ACL = CLIENT_SDK_ACL

/** Claims of a valid Vonage token at NOW; override or delete (undefined) any of them. */
export function claims (over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { application_id: APP_ID, iat: NOW - 10, jti: randomUUID(), exp: NOW + 890, acl: CLIENT_ACL }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

/** Sign with jose: RS256 with the test key unless told otherwise. */
export async function sign (payload: Record<string, unknown>, options: { key?: KeyObject, header?: Record<string, unknown> } = {}): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...options.header } as { alg: string })
    .sign(options.key ?? keys.privateKey)
}

/** A valid token at NOW with the Client SDK ACL. */
export function token (over: Record<string, unknown> = {}, options: { key?: KeyObject, header?: Record<string, unknown> } = {}): Promise<string> {
  return sign(claims(over), options)
}

/** base64url of a JSON value or a string. */
export function b64 (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

/**
 * Sign exact bytes with RS256, bypassing any JSON library: for payloads jose would not produce
 * (`1e309`, duplicate keys, a BOM) that still carry a valid signature.
 */
export function signRaw (header: unknown, payload: unknown, key: KeyObject = keys.privateKey): string {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${cryptoSign('sha256', Buffer.from(input), key).toString('base64url')}`
}
