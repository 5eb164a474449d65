/**
 * Which half of a key pair a key flag was given, so that a swapped pair is named for what it is
 * (`create --private-key public.key`, `--public-key private.key`) rather than answered with
 * OpenSSL's `DECODER routines::unsupported` or accepted without a word.
 */
import cluster from 'node:cluster'
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { escapeTerminal } from './terminal.js'

/** A `--public-key` value as printed: the path, or "(inline key)" for the key text itself. */
export function keyFlagValue (value: string): string {
  return value.includes('-----BEGIN ') || value.trimStart().startsWith('{') ? '(inline key)' : escapeTerminal(value)
}

/** The key in `text` (PEM, or a JWK as JSON) as a private or a public key, or undefined when it is not one. */
function keyObject (text: string, half: 'private' | 'public'): KeyObject | undefined {
  const make = half === 'private' ? createPrivateKey : createPublicKey
  try {
    return text.trimStart().startsWith('{') ? make({ key: JSON.parse(text) as never, format: 'jwk' }) : make(text)
  } catch {
    return undefined
  }
}

/** Whether `text` holds a public key and no private one (a public.key given where the private key belongs). */
export function isPublicOnly (text: string): boolean {
  return keyObject(text, 'private') === undefined && keyObject(text, 'public') !== undefined
}

/**
 * A `--public-key` value's text as the guard should get it: a private key is replaced by its
 * public half (SPKI PEM), with one warning on stderr naming the flag's value (a path, never the
 * key); anything else unchanged (the library judges it).
 */
export function publicHalf (text: string, shown: string): string {
  const key = keyObject(text, 'private')
  if (key === undefined) return text
  if (!cluster.isWorker) {
    process.stderr.write(`warning: --public-key ${shown} holds a private key: its public half is used. The guard needs only the public key (public.key): keep the private key off the machines that verify\n`)
  }
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string
}
