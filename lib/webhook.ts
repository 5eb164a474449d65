/**
 * Signed webhooks (`profile: 'vonage-webhook'`): the token's `payload_hash` claim must be the
 * lowercase hex SHA-256 of the raw request body, or, for GET and HEAD, of the query string as
 * received. The token is verified before the body is read; adapters hash the bytes as they
 * stream past the body parser (so the app's JSON parsing is untouched) and call
 * `checkPayloadHash` once the body has been read, before the handler runs.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { GuardError } from './errors.js'

/** Lowercase hex SHA-256, as Vonage computes `payload_hash`. */
export function payloadHash (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Requests without a body sign their query instead (docs/profiles.md, "vonage-webhook"). */
export function signsQuery (method: string): boolean {
  return method === 'GET' || method === 'HEAD'
}

/** The query exactly as received: the request target after the first `?`, not decoded or re-encoded. */
export function rawQuery (target: string): string {
  const q = target.indexOf('?')
  return q === -1 ? '' : target.slice(q + 1)
}

/**
 * Compare the claim with the digest of what the request carried, in constant time.
 * The claim's shape (64 lowercase hex characters) was checked with the other claims.
 */
export function checkPayloadHash (claim: unknown, digest: string): void {
  if (typeof claim !== 'string') throw new GuardError('VJG_CLAIM_MISSING', 'The token has no "payload_hash" claim', { claim: 'payload_hash' })
  const expected = Buffer.from(claim, 'latin1')
  const actual = Buffer.from(digest, 'latin1')
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new GuardError('VJG_SIGNATURE_INVALID', 'The request body does not match the token "payload_hash" (was it changed on the way?)', { check: 'body', claim: 'payload_hash' })
  }
}

/**
 * A pass-through stream that hashes every byte it forwards. `digest` is set once the whole body
 * went through; until then it is undefined, and a body that was not read fully is not trusted.
 */
export class BodyHasher extends Transform {
  private readonly hash: Hash = createHash('sha256')
  /** Raw bytes seen, for Fastify's body-limit and content-length checks. */
  receivedEncodedLength = 0
  digest: string | undefined

  override _transform (chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    this.receivedEncodedLength += bytes.length
    this.hash.update(bytes)
    callback(null, bytes)
  }

  override _flush (callback: TransformCallback): void {
    this.digest = this.hash.digest('hex')
    callback()
  }
}

/** The digest of an empty body: what a request without a body signs. */
export const EMPTY_BODY_HASH = payloadHash('')

/** Whether the headers announce a body (RFC 9112 section 6.3): a transfer-encoding or a non-zero length. */
export function declaresBody (raw: IncomingMessage): boolean {
  const length = raw.headers['content-length']
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * The digest this request signs: of the raw query for GET and HEAD, of the body for the rest
 * (the empty body when the headers announce none). Undefined when a body was announced but
 * not hashed through to its end: such a request is never trusted.
 */
export function requestDigest (method: string, target: string, raw: IncomingMessage, bodyDigest: string | undefined): string | undefined {
  if (signsQuery(method)) return payloadHash(rawQuery(target))
  if (bodyDigest !== undefined) return bodyDigest
  return declaresBody(raw) ? undefined : EMPTY_BODY_HASH
}

/**
 * Hash a request body while its own consumer (body-parser, a proxy, the handler) reads it,
 * without reading it ourselves: a Readable emits every chunk it hands out as 'data' (flowing
 * mode and read() alike), then 'end'. `check(digest)` runs before any 'end' listener. When it
 * returns an error, 'end' is never emitted: `rejected(error, listened)` either returns true to
 * hand the error to the consumers as a stream error (a body parser then fails with it, so the
 * handler never runs), or answers the request itself and returns false.
 */
export function tapBody<E extends Error> (stream: Readable, check: (digest: string) => E | undefined, rejected: (error: E, listened: boolean) => boolean): void {
  const hash = createHash('sha256')
  const emit = stream.emit.bind(stream)
  let done = false
  stream.emit = function (this: Readable, event: string | symbol, ...args: unknown[]): boolean {
    if (done) return emit(event, ...args)
    if (event === 'data') {
      const chunk = args[0]
      hash.update(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer)
    } else if (event === 'end') {
      done = true
      const error = check(hash.digest('hex'))
      if (error !== undefined) {
        const listened = this.listenerCount('error') > 0
        return rejected(error, listened) && listened ? emit('error', error) : false
      }
    }
    return emit(event, ...args)
  } as typeof stream.emit
}
