/**
 * The signed-webhook body check as pure functions and streams, without a server: what is hashed
 * (body bytes, the raw query, the empty body), the constant-time comparison, and the two ways
 * the body is hashed in flight (BodyHasher for Fastify, tapBody for Express).
 */
import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { PassThrough, pipeline, Readable } from 'node:stream'
import t from 'tap'
import { GuardError } from '../lib/errors.js'
import { BodyHasher, checkPayloadHash, EMPTY_BODY_HASH, payloadHash, rawQuery, requestDigest, tapBody } from '../lib/webhook.js'

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

/** Just the headers requestDigest looks at. */
function raw (headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage
}

t.test('payloadHash is the lowercase hex SHA-256 of the bytes', async (t) => {
  t.equal(payloadHash(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  t.equal(EMPTY_BODY_HASH, payloadHash(''))
  t.equal(payloadHash('{"text":"héllo"}'), sha256(Buffer.from('{"text":"héllo"}', 'utf8')))
  t.match(payloadHash(Buffer.from([0xff, 0x00])), /^[0-9a-f]{64}$/)
})

t.test('rawQuery is the target after the first ?, as received', async (t) => {
  const rows: Array<[string, string]> = [
    ['/webhooks/inbound', ''],
    ['/webhooks/inbound?', ''],
    ['/webhooks/inbound?text=Hello%20world&to=447700900001', 'text=Hello%20world&to=447700900001'],
    ['/webhooks/inbound?text=Hello+world', 'text=Hello+world'],
    ['/a?b?c=d', 'b?c=d']
  ]
  for (const [target, query] of rows) t.equal(rawQuery(target), query, target)
})

t.test('requestDigest: the query for GET and HEAD, the body for the rest, the empty body when none is announced', async (t) => {
  const bodyDigest = sha256('{}')
  const rows: Array<{ name: string, method: string, target: string, headers: Record<string, string>, body: string | undefined, want: string | undefined }> = [
    { name: 'GET signs the query, not a body', method: 'GET', target: '/w?a=1', headers: { 'content-length': '2' }, body: bodyDigest, want: sha256('a=1') },
    { name: 'HEAD without a query signs the empty string', method: 'HEAD', target: '/w', headers: {}, body: undefined, want: EMPTY_BODY_HASH },
    { name: 'POST with a hashed body', method: 'POST', target: '/w?a=1', headers: { 'content-length': '2' }, body: bodyDigest, want: bodyDigest },
    { name: 'POST without a body', method: 'POST', target: '/w', headers: {}, body: undefined, want: EMPTY_BODY_HASH },
    { name: 'POST with content-length 0', method: 'POST', target: '/w', headers: { 'content-length': '0' }, body: undefined, want: EMPTY_BODY_HASH },
    { name: 'POST with a body that was not hashed to its end', method: 'POST', target: '/w', headers: { 'content-length': '2' }, body: undefined, want: undefined },
    { name: 'chunked POST not hashed to its end', method: 'POST', target: '/w', headers: { 'transfer-encoding': 'chunked' }, body: undefined, want: undefined }
  ]
  for (const row of rows) t.equal(requestDigest(row.method, row.target, raw(row.headers), row.body), row.want, row.name)
})

t.test('checkPayloadHash compares the whole digest', async (t) => {
  const digest = sha256('{"status":"delivered"}')
  t.doesNotThrow(() => checkPayloadHash(digest, digest))
  const rows: Array<{ name: string, claim: unknown, code: string }> = [
    { name: 'another body', claim: sha256('{"status":"rejected"}'), code: 'VJG_SIGNATURE_INVALID' },
    { name: 'one character off', claim: digest.slice(0, 63) + (digest.endsWith('0') ? '1' : '0'), code: 'VJG_SIGNATURE_INVALID' },
    { name: 'a prefix', claim: digest.slice(0, 32), code: 'VJG_SIGNATURE_INVALID' },
    { name: 'upper case', claim: digest.toUpperCase(), code: 'VJG_SIGNATURE_INVALID' },
    { name: 'no claim', claim: undefined, code: 'VJG_CLAIM_MISSING' },
    { name: 'a number', claim: 42, code: 'VJG_CLAIM_MISSING' }
  ]
  for (const row of rows) {
    t.throws(() => checkPayloadHash(row.claim, digest), { name: 'GuardError', code: row.code, statusCode: 401 }, row.name)
  }
})

t.test('BodyHasher passes the bytes through and has a digest only at the end', async (t) => {
  const chunks = [Buffer.from('{"a":'), Buffer.from('"é'), Buffer.from('"}')]
  const hasher = new BodyHasher()
  const out: Buffer[] = []
  hasher.on('data', (chunk: Buffer) => out.push(chunk))
  t.equal(hasher.digest, undefined)
  await new Promise<void>((resolve, reject) => pipeline(Readable.from(chunks), hasher, (error) => error ? reject(error) : resolve()))
  t.equal(Buffer.concat(out).toString(), '{"a":"é"}')
  t.equal(hasher.digest, sha256(Buffer.concat(chunks)))
  t.equal(hasher.receivedEncodedLength, Buffer.concat(chunks).length)

  const aborted = new BodyHasher()
  const source = new PassThrough()
  const ended = new Promise<Error | undefined>((resolve) => pipeline(source, aborted, (error) => resolve(error ?? undefined)))
  source.write('{"a"')
  source.destroy(new Error('aborted'))
  t.ok(await ended, 'an aborted body ends the pipeline with an error')
  t.equal(aborted.digest, undefined, 'and leaves no digest')
})

/** A request-like stream: bytes pushed as a socket would, then the end. */
function body (chunks: Buffer[]): PassThrough {
  const stream = new PassThrough()
  for (const chunk of chunks) stream.write(chunk)
  stream.end()
  return stream
}

t.test('tapBody hashes what the consumer reads, whichever way it reads', async (t) => {
  // 'é' split across two chunks: a consumer with setEncoding sees strings, the hash sees the bytes.
  const bytes = Buffer.from('{"text":"é"}')
  const split = bytes.indexOf(0xc3) + 1
  const chunks = [bytes.subarray(0, split), bytes.subarray(split)]
  const want = sha256(bytes)
  const readers: Array<[string, (stream: PassThrough) => Promise<string>]> = [
    ['flowing data events', (stream) => new Promise((resolve) => {
      const got: Buffer[] = []
      stream.on('data', (chunk: Buffer) => got.push(chunk))
      stream.on('end', () => resolve(Buffer.concat(got).toString()))
    })],
    ['paused read()', (stream) => new Promise((resolve) => {
      const got: Buffer[] = []
      stream.on('readable', () => {
        let chunk: Buffer | null
        while ((chunk = stream.read() as Buffer | null) !== null) got.push(chunk)
      })
      stream.on('end', () => resolve(Buffer.concat(got).toString()))
    })],
    ['setEncoding utf8', (stream) => new Promise((resolve) => {
      let got = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => { got += chunk })
      stream.on('end', () => resolve(got))
    })],
    ['async iteration', async (stream) => {
      const got: Buffer[] = []
      for await (const chunk of stream) got.push(chunk as Buffer)
      return Buffer.concat(got).toString()
    }]
  ]
  for (const [name, read] of readers) {
    const stream = body(chunks)
    let seen: string | undefined
    tapBody(stream, (digest) => { seen = digest; return undefined }, () => { throw new Error('not rejected') })
    t.equal(await read(stream), bytes.toString(), `${name}: the consumer reads the body unchanged`)
    t.equal(seen, want, `${name}: the digest of the bytes`)
  }
})

t.test('tapBody: a rejected body never ends for its consumer', async (t) => {
  const refusal = new GuardError('VJG_SIGNATURE_INVALID', 'tampered')

  // A consumer listening for errors (a body parser) gets the refusal instead of the end.
  const parsed = body([Buffer.from('{"status":"rejected"}')])
  const calls: boolean[] = []
  tapBody(parsed, () => refusal, (_error, listened) => { calls.push(listened); return true })
  const outcome = await new Promise<string>((resolve) => {
    parsed.on('data', () => {})
    parsed.on('end', () => resolve('end'))
    parsed.on('error', (error) => resolve(error === refusal ? 'refusal' : 'another error'))
  })
  t.equal(outcome, 'refusal')
  t.same(calls, [true])

  // The adapter may answer itself and keep the error from the consumer: neither end nor error.
  const answered = body([Buffer.from('{}')])
  tapBody(answered, () => refusal, () => false)
  const events: string[] = []
  answered.on('data', () => {})
  answered.on('end', () => events.push('end'))
  answered.on('error', () => events.push('error'))
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(events, [])

  // Nobody listens for errors: rejected() is told so, and nothing throws.
  const byHand = body([Buffer.from('{}')])
  const told: boolean[] = []
  tapBody(byHand, () => refusal, (_error, listened) => { told.push(listened); return true })
  const ends: string[] = []
  byHand.on('data', () => {})
  byHand.on('end', () => ends.push('end'))
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
  t.same(told, [false])
  t.same(ends, [])
})
