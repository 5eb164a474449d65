/**
 * Path confusion over a real socket (SPEC 3.1): request targets from the path-traversal and
 * parser-differential bugs of web servers and proxies, sent byte for byte. Each must be refused
 * (400, by the guard as VJG_PATH_INVALID, or earlier by Node's HTTP parser or Fastify, never a
 * 5xx) or be matched as exactly the canonical path the table names. The canonical path the ACL saw
 * is read back twice: from the 403 of a token that grants nothing (the message names the path),
 * and from `grantedBy` of a token whose ACL grants only that exact path.
 */
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify'
import t from 'tap'
import vonageJwtGuard, { GuardError } from '../lib/index.js'
import { buildApp } from './helpers/app.js'
import { rawRequest, type RawResponse } from './helpers/http.js'
import { keys, NOW_MS, token } from './helpers/keys.js'
import { expressApp, withServer, type ExpressFactory } from './helpers/scenarios.js'

/** Who answered a refused target. */
type Layer =
  | 'guard' // 400 VJG_PATH_INVALID from canonicalPath()
  | 'fastify' // 400 FST_ERR_* before any hook (a malformed escape the router cannot decode)
  | 'node' // 400 from Node's HTTP parser (llhttp), answered by Fastify's clientError handler

interface Refused { target: string, layer: Layer, why: string }
interface Matched { target: string, path: string, why: string }
type Case = Refused | Matched

const refused = (target: string, why: string, layer: Layer = 'guard'): Refused => ({ target, layer, why })
const matched = (target: string, path: string, why: string): Matched => ({ target, path, why })

const long = (n: number): string => '/' + 'a'.repeat(n - 1)
const segments = (n: number): string => Array.from({ length: n }, (_, i) => `/s${i}`).join('')

const corpus: Case[] = [
  // plain targets: the canonical path is the path
  matched('/', '/', 'the root'),
  matched('/v1/users', '/v1/users', 'plain'),
  matched('/v1/users/', '/v1/users', 'one trailing slash dropped'),
  matched('/V1/USERS', '/V1/USERS', 'case is kept: literals are case-sensitive'),
  matched('/v1/users/abc.json', '/v1/users/abc.json', 'a dot inside a name'),
  matched('/v1/users/.hidden', '/v1/users/.hidden', 'a leading dot is a name'),
  matched('/v1/users/...', '/v1/users/...', 'three dots is a name'),
  matched('/v1/users/..a', '/v1/users/..a', 'two dots and more is a name'),
  matched('/v1/users../admin', '/v1/users../admin', 'nginx off-by-slash alias: the segment is "users.."'),
  matched('/v1/users/~alice', '/v1/users/~alice', 'tilde'),
  matched("/v1/users/!$&'()*+,=:@", "/v1/users/!$&'()*+,=:@", 'every sub-delim, colon and at'),

  // the query is dropped and never checked
  matched('/v1/users?x=1', '/v1/users', 'query dropped'),
  matched('/v1/users?x=/../../admin', '/v1/users', 'traversal in the query is not the path'),
  matched('/v1/users?%zz', '/v1/users', 'a bad escape in the query is not the path'),
  matched('/v1/users?', '/v1/users', 'empty query'),
  matched('/?/../admin', '/', 'the path is only "/"'),
  matched('/v1/users/?a=b', '/v1/users', 'trailing slash then query'),

  // raw dot segments
  refused('/..', 'dot-dot at the root'),
  refused('/.', 'dot at the root'),
  refused('/v1/users/..', 'trailing dot-dot'),
  refused('/v1/users/../admin', 'traversal'),
  refused('/v1/users/../../admin', 'double traversal'),
  refused('/v1/./users', 'dot segment'),
  refused('/v1/users/.', 'trailing dot'),
  refused('/./v1/users', 'leading dot'),
  refused('/../v1/users', 'leading dot-dot'),
  refused('/v1/users/./', 'dot then trailing slash'),
  refused('/v1/users/../', 'dot-dot then trailing slash'),

  // encoded dots (CVE-2021-41773, CVE-2021-42013, Tomcat and Spring variants)
  refused('/%2e%2e/admin', 'encoded dot-dot'),
  refused('/%2E%2E/admin', 'encoded dot-dot, upper hex'),
  refused('/.%2e/admin', 'half-encoded dot-dot'),
  refused('/%2e./admin', 'half-encoded dot-dot, the other half'),
  refused('/v1/%2e/users', 'encoded dot'),
  refused('/v1/users/%2e%2e', 'trailing encoded dot-dot'),
  refused('/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd', 'CVE-2021-41773'),
  refused('/cgi-bin/.%%32%65/.%%32%65/etc/passwd', 'CVE-2021-42013 double encoding', 'fastify'),
  refused('/icons/.%%32%65/.%%32%65/etc/passwd', 'CVE-2021-42013 in /icons', 'fastify'),
  refused('/%252e%252e/admin', 'double-encoded dot-dot'),
  refused('/a%2eb', 'an encoded dot inside a name'),
  refused('/v1/users/%2e%2e%2fadmin', 'encoded dot-dot-slash'),
  refused('/v1/users/..%2fadmin', 'dot-dot and an encoded slash'),
  refused('/v1/users/%2e%2e;/admin', 'Spring: encoded dot-dot with a path parameter'),
  refused('/v1/users/.%00./x', 'dot NUL dot'),

  // encoded separators
  refused('/v1/users%2F..%2Fadmin', 'encoded slash traversal'),
  refused('/v1/users%2fadmin', 'encoded slash, lower hex'),
  refused('/v1/users/a%2Fb', 'an encoded slash inside a name'),
  refused('/v1/users/%2F%2F', 'encoded double slash'),
  refused('/v1%2F', 'encoded trailing slash'),
  refused('/v1/users/%5C..%5Cadmin', 'encoded backslash traversal'),
  refused('/v1/users%5cadmin', 'encoded backslash'),
  refused('/v1/users/%5c%5c', 'encoded double backslash'),
  refused('/v1/users/%2e%2e%5c', 'encoded dot-dot-backslash'),
  refused('/v1/users%3Bx', 'encoded semicolon'),
  refused('/v1/users%3bjsessionid=x', 'encoded semicolon, lower hex'),

  // double encoding
  refused('/v1/users/%252F', 'double-encoded slash'),
  refused('/v1/%25', 'an encoded percent'),
  refused('/v1/users/%25%32%65', 'an encoded percent before an escaped digit'),
  refused('/%2525', 'triple encoding'),
  refused('/v1/users/%255c', 'double-encoded backslash'),

  // escapes that need no escaping, controls, malformed escapes
  refused('/v1/users/%41', 'an encoded letter (two spellings of one path)'),
  refused('/v1/users/%7E', 'an encoded tilde'),
  refused('/v1/users/%2D', 'an encoded hyphen'),
  refused('/v1/users/%5F', 'an encoded underscore'),
  refused('/v1/users/%30', 'an encoded digit'),
  refused('/v1/users/%00', 'an encoded NUL'),
  refused('/v1/users/%0d%0aSet-Cookie:%20x=1', 'an encoded CR LF (header injection)'),
  refused('/v1/users/%0a', 'an encoded LF'),
  refused('/v1/users/%09', 'an encoded tab'),
  refused('/v1/users/%7f', 'an encoded DEL'),
  refused('/v1/users/%C2%85', 'an encoded NEL (C1 control)'),
  refused('/v1/users/%C2%9B', 'an encoded CSI (C1 control)'),
  refused('/v1/users/%', 'a lone percent', 'fastify'),
  refused('/v1/users/%2', 'a truncated escape', 'fastify'),
  refused('/v1/users/%zz', 'a non-hex escape', 'fastify'),
  refused('/v1/users/%%', 'two percents', 'fastify'),
  refused('/v1/users/%u002e', 'IIS %u escape', 'fastify'),
  refused('/v1/users/%2g', 'a half-hex escape', 'fastify'),

  // escapes that are fine: the canonical path is decoded
  matched('/v1/users/%20', '/v1/users/ ', 'an encoded space'),
  matched('/v1/users/%40', '/v1/users/@', 'an encoded at'),
  matched('/v1/users/%3F', '/v1/users/?', 'an encoded question mark is a character of the path'),
  matched('/v1/users/%23', '/v1/users/#', 'an encoded hash is a character of the path'),
  matched('/v1/users/%2A', '/v1/users/*', 'an encoded star is a character, not a glob'),
  matched('/v1/users/%C3%A9', '/v1/users/é', 'UTF-8 e acute'),
  matched('/v1/users/%c3%a9', '/v1/users/é', 'UTF-8 e acute, lower hex'),
  matched('/v1/users/%E2%82%AC', '/v1/users/€', 'euro sign'),
  matched('/v1/users/%F0%9F%98%80', '/v1/users/😀', 'four-byte UTF-8'),
  matched('/v1/users/a%EF%BC%8Eb', '/v1/users/a．b', 'a fullwidth dot inside a name stays as it is'),
  matched('/v1/users/%E3%80%82%E3%80%82', '/v1/users/。。', 'ideographic full stops do not fold to dots'),
  matched('/v1/users/%E2%88%95', '/v1/users/∕', 'division slash does not fold to a slash'),
  matched('/v1/users/%C2%A0', '/v1/users/\u00a0', 'no-break space is kept, not folded'),
  matched('/v1/users/%22%2C%20error=%22x', '/v1/users/", error="x', 'quotes cannot break out of the challenge'),

  // overlong and invalid UTF-8: Fastify's router cannot decode them and answers first
  // (400 FST_ERR_BAD_URL); canonicalPath() refuses them too where it runs alone (Express)
  refused('/%C0%AE%C0%AE/admin', 'overlong dot-dot (CVE-2000-0884 style)', 'fastify'),
  refused('/v1/users/%C0%AF', 'overlong slash', 'fastify'),
  refused('/v1/users/%E0%80%AF', 'three-byte overlong slash', 'fastify'),
  refused('/v1/users/%C1%9C', 'overlong backslash', 'fastify'),
  refused('/v1/users/%F0%80%80%AF', 'four-byte overlong slash', 'fastify'),
  refused('/v1/users/%FF', 'a byte that is never UTF-8', 'fastify'),
  refused('/v1/users/%C3', 'a truncated sequence', 'fastify'),
  refused('/v1/users/%ED%A0%80', 'an encoded surrogate', 'fastify'),
  refused('/v1/users/%F4%90%80%80', 'above U+10FFFF', 'fastify'),
  refused('/v1/users/%80', 'a lone continuation byte', 'fastify'),

  // Unicode that folds to a separator or a dot segment under NFKC
  refused('/%EF%BC%8E%EF%BC%8E/admin', 'fullwidth dot-dot'),
  refused('/v1/users/%EF%BC%8E', 'a fullwidth dot segment'),
  refused('/v1/users/%EF%BC%8F', 'fullwidth slash'),
  refused('/v1/users/%EF%BC%BC', 'fullwidth backslash'),
  refused('/v1/users/%E2%80%A5', 'two dot leader (NFKC "..")'),
  refused('/v1/users/%E2%80%A4%E2%80%A4', 'one dot leader twice'),
  refused('/v1/users/a%EF%BC%8Fb', 'a fullwidth slash inside a name'),
  refused('/v1/users/%EF%B8%B0', 'presentation form two dot leader (NFKC "..")'),
  refused('/v1/users/%EF%B9%92', 'small full stop (NFKC ".")'),
  refused('/v1/users/%EF%B9%92%EF%B9%92/x', 'small full stop twice'),
  matched('/v1/users/%C3%A9/', '/v1/users/é', 'decoded, and the trailing slash dropped'),

  // empty segments and slashes
  refused('//', 'only slashes'),
  refused('///', 'three slashes'),
  refused('//admin', 'network-path reference'),
  refused('//evil.example/v1/users', 'a host where the path should be'),
  refused('/v1//users', 'an empty segment'),
  refused('/v1/users//', 'two trailing slashes'),
  refused('/v1/users///x', 'several empty segments'),

  // backslashes, semicolons, fragments, spaces, raw non-ASCII
  refused('/v1/users/\\..\\admin', 'raw backslash traversal'),
  refused('/\\evil.example', 'a backslash read as a slash by WHATWG URL'),
  refused('/v1\\users', 'a raw backslash'),
  refused('/v1/users;jsessionid=x', 'a path parameter'),
  refused('/v1/users/..;/admin', 'Tomcat dot-dot-semicolon'),
  refused('/;/v1/users', 'a semicolon segment'),
  refused('/v1;/users', 'a semicolon in a segment'),
  refused('/v1/users#x', 'a fragment'),
  refused('/v1/users?x#y', 'a fragment after the query'),
  refused('/#/../admin', 'a fragment hiding a traversal'),
  refused('/v1/users/é', 'raw non-ASCII (UTF-8 bytes on the wire)', 'node'),
  refused('/v1/users/"x"', 'a raw quote'),
  refused('/v1/users/<x>', 'raw angle brackets'),
  refused('/v1/users/{x}', 'raw braces'),
  refused('/v1/users/|x', 'a raw pipe'),
  refused('/v1/users/^x', 'a raw caret'),
  refused('/v1/users/`x`', 'a raw backtick'),
  refused('/v1/users/[x]', 'raw brackets'),
  refused('/v1/users/\tx', 'a raw tab', 'node'),

  // not origin-form
  refused('http://127.0.0.1/v1/users', 'absolute-form'),
  refused('HTTP://127.0.0.1/v1/users', 'absolute-form, upper-case scheme'),
  refused('https://evil.example/v1/users', 'absolute-form naming another host'),
  refused('*', 'asterisk-form'),
  refused('v1/users', 'no leading slash', 'node'),

  // length and segment limits
  matched(long(2048), long(2048), 'a path of exactly 2048 characters'),
  refused(long(2049), 'a path of 2049 characters'),
  matched(`${long(2048)}?${'q'.repeat(4000)}`, long(2048), 'a long query does not count'),
  matched(segments(64), segments(64), '64 segments'),
  matched(`${segments(64)}/`, segments(64), '64 segments and a trailing slash'),
  refused(segments(65), '65 segments'),
  refused('/a'.repeat(1000), '1000 segments'),
  matched(`/${'%C3%A9'.repeat(300)}`, `/${'é'.repeat(300)}`, 'a long escaped segment under the limit'),
  refused(`/${'%C3%A9'.repeat(400)}`, 'escapes count toward the 2048 characters')
]

/** A pattern that matches only itself: no glob character, within the pattern limits. */
function exactPattern (path: string): boolean {
  return path.length <= 512 && !/[*?[\]\\%!+@(){}]/.test(path) && !path.split('/').includes('..')
}

/** rawRequest reads bytes as latin1: the JSON body is UTF-8. A bare Node 400 has no body. */
function bodyOf (res: RawResponse): { code?: unknown, message?: unknown, auth?: { grantedBy: string } } {
  return res.body === '' ? { message: 'Client Error' } : JSON.parse(Buffer.from(res.body, 'latin1').toString('utf8'))
}

const INVALID_REQUEST = /^Bearer realm="vonage-jwt-guard", error="invalid_request", error_description="[^"\\]*"$/
/** The whole challenge, so that a quote in the path cannot add a parameter. */
const INSUFFICIENT_SCOPE = /^Bearer realm="vonage-jwt-guard", error="insufficient_scope", error_description="[^"\\]*"$/

function layerOf (res: RawResponse): string {
  const { code, message } = bodyOf(res)
  // Node's parser refused the request line; Fastify's clientError handler wrote the answer.
  if (code === undefined && message === 'Client Error') return 'node'
  if (code === 'VJG_PATH_INVALID') return 'guard'
  if (typeof code === 'string' && code.startsWith('FST_')) return 'fastify'
  if (code === 'VJG_ACL_DENIED') return 'acl'
  return `other (${String(code)})`
}

/** The 403 message names the path, cut at 200 characters (lib/acl.ts shownPath). */
function deniedMessage (path: string): string {
  return `GET ${path.length <= 200 ? path : `${path.slice(0, 200)}...`} is not granted by the token acl`
}

t.test('the corpus is large and its targets distinct', async t => {
  t.ok(corpus.length >= 100, `${corpus.length} targets`)
  t.equal(new Set(corpus.map(c => c.target)).size, corpus.length, 'no target twice')
})

t.test('every target is refused by the named layer, or matched as exactly its canonical path', async t => {
  const app = await buildApp()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  const denyAll = await token({ acl: { paths: { '/granted/nothing': {} } } })

  const answeredBy: Record<string, number> = {}
  for (const row of corpus) {
    const name = `${JSON.stringify(row.target.slice(0, 60))} (${row.why})`
    const res = await rawRequest(port, row.target, { authorization: `Bearer ${denyAll}` })
    t.ok(res.status >= 400 && res.status < 500, `${name}: a 4xx, never a 5xx (${res.status})`)
    const layer = layerOf(res)
    answeredBy[layer] = (answeredBy[layer] ?? 0) + 1
    if ('layer' in row) {
      t.equal(res.status, 400, `${name}: 400`)
      t.equal(layer, row.layer, `${name}: answered by ${row.layer}`)
      if (row.layer === 'guard') {
        t.match(res.headers['www-authenticate'], INVALID_REQUEST, `${name}: challenge`)
      }
    } else {
      t.equal(res.status, 403, `${name}: reached the ACL`)
      t.equal(layer, 'acl', `${name}: VJG_ACL_DENIED`)
      t.equal(bodyOf(res).message, deniedMessage(row.path), `${name}: the ACL saw ${JSON.stringify(row.path.slice(0, 40))}`)
      t.match(res.headers['www-authenticate'], INSUFFICIENT_SCOPE, `${name}: challenge`)
    }
  }
  t.comment(`answered by: ${JSON.stringify(answeredBy)}`)
})

t.test('a token granting only the exact canonical path is granted by that pattern', async t => {
  const app = await buildApp()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  const rows = corpus.filter((c): c is Matched => 'path' in c && exactPattern(c.path))
  t.ok(rows.length >= 20, `${rows.length} exact patterns`)
  for (const row of rows) {
    const name = `${JSON.stringify(row.target.slice(0, 60))} (${row.why})`
    // Two patterns: the exact path, and a decoy one character longer that must not be the grant.
    const tok = await token({ acl: { paths: { [`${row.path}x`]: {}, [row.path]: {} } } })
    const res = await rawRequest(port, row.target, { authorization: `Bearer ${tok}` })
    t.equal(res.status, 200, `${name}: granted`)
    t.equal(bodyOf(res).auth?.grantedBy, row.path, `${name}: by the exact pattern`)
  }
})

/**
 * The way docs/security.md shows to shape Fastify's own 400 for a URL its router cannot decode:
 * the same code, body and challenge as the guard's, and no echo of the URL (Fastify's default
 * message quotes it).
 */
function frameworkErrors (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL') {
    const coded = new GuardError('VJG_PATH_INVALID', 'the path has a malformed percent-escape or is not UTF-8 once decoded')
    void reply.code(400).headers(coded.headers).send({ statusCode: 400, code: coded.code, error: coded.error, message: coded.message })
    return
  }
  void reply.code(400).send({ statusCode: 400, code: error.code, error: 'Bad Request', message: 'Bad request' })
}

t.test('with frameworkErrors, every refusal of a target is shaped as VJG_PATH_INVALID', async t => {
  const app = Fastify({ logger: false, frameworkErrors })
  await app.register(vonageJwtGuard, { publicKey: keys.publicPem, now: () => NOW_MS })
  app.all('/*', async (request) => ({ auth: request.auth }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  const tok = await token()
  const rows = corpus.filter((c): c is Refused => 'layer' in c && c.layer !== 'node')
  for (const row of rows) {
    const res = await rawRequest(port, row.target, { authorization: `Bearer ${tok}` })
    t.equal(res.status, 400, `${row.why}: 400`)
    t.equal(bodyOf(res).code, 'VJG_PATH_INVALID', `${row.why}: coded`)
    t.match(res.headers['www-authenticate'], INVALID_REQUEST, `${row.why}: challenge`)
    if (row.target.length > 8) t.notOk(res.body.includes(row.target.slice(1)), `${row.why}: the target is not echoed`)
  }
})

const express4 = createRequire(import.meta.url)('express4') as ExpressFactory

/**
 * Express has no router decoding before the middleware: canonicalPath() alone answers what
 * Fastify's router refused first (malformed escapes, overlong and invalid UTF-8).
 */
for (const [name, factory] of [['express 5', express], ['express 4', express4]] as Array<[string, ExpressFactory]>) {
  t.test(`${name}: the same corpus through the middleware, over a real socket`, async t => {
    const denyAll = await token({ acl: { paths: { '/granted/nothing': {} } } })
    await withServer(expressApp(factory, {}), async port => {
      for (const row of corpus) {
        const label = `${JSON.stringify(row.target.slice(0, 60))} (${row.why})`
        const res = await rawRequest(port, row.target, { authorization: `Bearer ${denyAll}` })
        t.ok(res.status >= 400 && res.status < 500, `${label}: a 4xx (${res.status})`)
        if ('layer' in row) {
          t.equal(res.status, 400, `${label}: 400`)
          t.equal(layerOf(res), row.layer === 'fastify' ? 'guard' : row.layer, `${label}: answered by ${row.layer === 'fastify' ? 'guard' : row.layer}`)
        } else {
          t.equal(res.status, 403, `${label}: reached the ACL`)
          t.equal(bodyOf(res).message, deniedMessage(row.path), `${label}: the ACL saw the same path`)
          t.match(res.headers['www-authenticate'], INSUFFICIENT_SCOPE, `${label}: challenge`)
        }
      }
    })
  })
}
