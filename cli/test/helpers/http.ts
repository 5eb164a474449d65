/**
 * Real sockets on both sides of a guard: an upstream that records what reaches it (method, raw
 * target, raw header names and values, body), and a client that sends header names exactly as
 * given. For the tests of `proxy` and of `forward-auth` behind nginx and Caddy.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { dechunk } from '../../../test/helpers/http.js'

export interface Seen {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** Header names and values as they came over the wire, in order: name, value, name, value... */
  rawHeaders: string[]
  body: string
}

export interface Upstream {
  port: number
  seen: Seen[]
  /** Requests that arrived, counted as soon as their head is read (before any body). */
  arrived: () => number
}

/**
 * Answers `{ upstream: true }` by default; `respond` may answer otherwise, or not at all (a hung
 * upstream). Closed in teardown, with every connection.
 */
export async function recordingUpstream (t: Test, respond?: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<Upstream> {
  const seen: Seen[] = []
  let arrived = 0
  const server = createServer((req, res) => {
    arrived++
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => {
      const record = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body }
      seen.push(record)
      if (respond !== undefined) {
        respond(req, res, record)
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ upstream: true }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, seen, arrived: () => arrived }
}

/** A header name as PHP, WSGI and Rack read it: case ignored, `_` read as `-`. */
export function fold (name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '-')
}

/** Every [name, value] of a recorded request whose folded name is `folded`, in any spelling. */
export function spellings (seen: Seen, folded: string): Array<[string, string]> {
  const found: Array<[string, string]> = []
  for (let i = 0; i < seen.rawHeaders.length; i += 2) {
    if (fold(seen.rawHeaders[i]!) === folded) found.push([seen.rawHeaders[i]!, seen.rawHeaders[i + 1]!])
  }
  return found
}

interface Exchange {
  status: number
  /** Response headers, names lower-cased; a repeated one keeps its last value. */
  headers: Record<string, string>
  body: string
  /** Interim (1xx) status lines received before the response. */
  interim: number[]
}

/**
 * One request over a fresh socket, byte for byte: header names exactly as given (underscores,
 * odd casing, repeats), `Connection: close` unless a header says otherwise, and an optional body
 * sent with a Content-Length (or `raw` bytes after the head, framed by the headers given).
 */
export function exchange (port: number, request: { method?: string, target: string, headers?: Array<[string, string]>, body?: string, raw?: string }): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const headers = request.headers ?? []
    const lines = [`${request.method ?? 'GET'} ${request.target} HTTP/1.1`, 'Host: 127.0.0.1']
    if (!headers.some(([name]) => name.toLowerCase() === 'connection')) lines.push('Connection: close')
    for (const [name, value] of headers) lines.push(`${name}: ${value}`)
    if (request.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(request.body)}`)
    const chunks: Buffer[] = []
    socket.setTimeout(15_000, () => socket.destroy(new Error(`no answer for ${request.target}`)))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(parseResponse(Buffer.concat(chunks).toString('latin1'))))
    socket.write(lines.join('\r\n') + '\r\n\r\n' + (request.body ?? request.raw ?? ''))
  })
}

function parseResponse (text: string): Exchange {
  const interim: number[] = []
  let rest = text
  for (;;) {
    const split = rest.indexOf('\r\n\r\n')
    const head = rest.slice(0, split).split('\r\n')
    const status = Number(head[0]?.split(' ')[1])
    rest = rest.slice(split + 4)
    if (status >= 100 && status < 200) {
      interim.push(status)
      continue
    }
    const headers: Record<string, string> = {}
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    return { status, headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(rest) : rest, interim }
  }
}

/** Method overrides in headers (any spelling) and in the query (`_method`, as Laravel, Symfony and method-override read it), and what each names. */
export const METHOD_OVERRIDES: Array<{ name: string, headers?: Array<[string, string]>, query?: string, names: string }> = [
  { name: 'X-HTTP-Method-Override', headers: [['X-HTTP-Method-Override', 'DELETE']], names: 'X-HTTP-Method-Override' },
  { name: 'X-HTTP-Method', headers: [['X-HTTP-Method', 'DELETE']], names: 'X-HTTP-Method' },
  { name: 'X-Method-Override', headers: [['X-Method-Override', 'DELETE']], names: 'X-Method-Override' },
  { name: 'X_HTTP_Method_Override', headers: [['X_HTTP_Method_Override', 'DELETE']], names: 'X_HTTP_Method_Override' },
  { name: 'X.HTTP.Method.Override', headers: [['X.HTTP.Method.Override', 'DELETE']], names: 'X.HTTP.Method.Override' },
  { name: 'x-http-method', headers: [['x-http-method', 'DELETE']], names: 'x-http-method' },
  { name: 'X_METHOD_OVERRIDE', headers: [['X_METHOD_OVERRIDE', 'DELETE']], names: 'X_METHOD_OVERRIDE' },
  { name: '?_method=DELETE', query: '_method=DELETE', names: '_method' },
  { name: '?a=1&_METHOD=DELETE', query: 'a=1&_METHOD=DELETE', names: '_METHOD' },
  { name: '?%5Fmethod=DELETE (decoded by every framework)', query: '%5Fmethod=DELETE', names: '%5Fmethod' },
  { name: '?.method=DELETE (PHP reads . as _)', query: '.method=DELETE', names: '.method' },
  { name: '?_method[]=DELETE (PHP cuts at [)', query: '_method[]=DELETE', names: '_method[]' },
  { name: '?x=1;_method=DELETE', query: 'x=1;_method=DELETE', names: '_method' }
]
