/**
 * What an operation answers: its documented success response (the lowest 2xx), or the one a
 * client asks for with `Prefer: code=404` / `Prefer: example=<name>` (as Prism reads them). The
 * body is the documented `example`, else the first of `examples`, else a sample of the schema
 * (openapi-sampler). Every answer is made and serialized once, at start-up.
 *
 * Lists: a page whose `_links.next` a client follows (its request carries the query of that
 * link) is answered as the last page, without `next`, so that an SDK's pager ends; a sampled
 * body has no `next` at all (a sampled link leads nowhere).
 */
import { isJsonType } from './mock-validation.js'

type Json = Record<string, unknown>

function isObject (value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export interface Answer {
  status: number
  /** The Content-Type, or null for a response without content. */
  type: string | null
  /** The serialized body, or null for none. */
  payload: string | null
  /** Why there is nothing to answer with (501), or null. */
  missing: string | null
  /** The same page without `_links.next`, and the query that link carries: for a client that followed it. */
  lastPage: { answer: Answer, query: Array<[string, string]> } | null
}

export interface OperationAnswers {
  /** The documented success response. */
  standard: Answer
  /** Each documented response by its code (`404`, `4XX`, `default`), with its named examples. */
  byCode: Map<string, { answer: Answer, examples: Map<string, Answer> }>
  /** Named examples of the standard response's code (`Prefer: example=` alone). */
  examples: Map<string, Answer>
  /** The documented codes, for a `Prefer: code=` the document lacks. */
  codes: string[]
}

type Sampler = (schema: object, options: object, spec: object) => unknown

/** The status a response key stands for: `2XX` is 200, `default` 200 when it is the only answer. */
function statusOf (code: string): number {
  if (code === 'default') return 200
  return /^[1-5]XX$/.test(code) ? Number(code[0]) * 100 : Number(code)
}

/** The documented success: the lowest 2xx, else `default`, else the first listed. */
function standardCode (responses: Json): string {
  const codes = Object.keys(responses)
  const success = codes.filter(c => /^2(?:\d\d|XX)$/.test(c)).sort((a, b) => statusOf(a) - statusOf(b) || a.localeCompare(b))
  return success[0] ?? (codes.includes('default') ? 'default' : codes[0]!)
}

function serialize (value: unknown, type: string): string {
  return typeof value === 'string' && !isJsonType(type) ? value : JSON.stringify(value)
}

function queryOf (href: unknown): Array<[string, string]> {
  if (typeof href !== 'string') return []
  try {
    return [...new URL(href, 'http://localhost').searchParams.entries()]
  } catch {
    return []
  }
}

/**
 * The page without `_links.next`, and what the next link adds to the query (its cursor): the
 * parameters it carries that the page's own `self` (or `first`) link does not carry alike.
 * Null when the page has no next link.
 */
function splitNext (body: unknown): { last: Json, query: Array<[string, string]> } | null {
  if (!isObject(body) || !isObject(body._links) || !isObject(body._links.next)) return null
  const { next, ...links } = body._links
  const own = isObject(links.self) ? links.self : isObject(links.first) ? links.first : {}
  const here = queryOf(own.href)
  const query = queryOf((next as Json).href).filter(([name, value]) => !here.some(([n, v]) => n === name && v === value))
  return { last: { ...body, _links: links }, query }
}

function answerOf (status: number, type: string, body: unknown, sampled: boolean): Answer {
  const split = splitNext(body)
  if (split !== null && sampled) return answerOf(status, type, split.last, false)
  const answer: Answer = { status, type, payload: serialize(body, type), missing: null, lastPage: null }
  // A request carrying the query the next link adds (its cursor) followed it.
  if (split !== null && split.query.length > 0) answer.lastPage = { answer: answerOf(status, type, split.last, false), query: split.query }
  return answer
}

/** The media type answered: JSON when documented, else the first. */
function mediaTypeOf (contentMap: Json): string | undefined {
  const types = Object.keys(contentMap)
  return types.find(t => /^application\/json\b/i.test(t)) ?? types.find(isJsonType) ?? types[0]
}

/** A response's answers: its default body and one per named example. */
function responseAnswers (what: string, code: string, response: Json, document: Json, sample: Sampler): { answer: Answer, examples: Map<string, Answer> } {
  const status = statusOf(code)
  const examples = new Map<string, Answer>()
  const contentMap = isObject(response.content) ? response.content : {}
  const type = mediaTypeOf(contentMap)
  if (type === undefined) return { answer: { status, type: null, payload: null, missing: null, lastPage: null }, examples }
  const media = isObject(contentMap[type]) ? contentMap[type] : {}
  const named = isObject(media.examples) ? media.examples : {}
  for (const [name, example] of Object.entries(named)) {
    if (isObject(example) && example.value !== undefined) examples.set(name, answerOf(status, type, example.value, false))
  }
  if (media.example !== undefined) return { answer: answerOf(status, type, media.example, false), examples }
  const first = examples.values().next()
  if (first.done !== true) return { answer: first.value, examples }
  if (isObject(media.schema)) {
    let body: unknown
    try {
      body = sample(media.schema, { skipWriteOnly: true, quiet: true }, document)
    } catch (error) {
      return { answer: missing(status, `${what}: the ${code} response's schema (${type}) cannot be sampled: ${(error as Error).message}`), examples }
    }
    return { answer: answerOf(status, type, body, true), examples }
  }
  return { answer: missing(status, `${what}: the documented ${code} response (${type}) has neither an example nor a schema: there is nothing to answer with`), examples }
}

function missing (status: number, why: string): Answer {
  return { status, type: null, payload: null, missing: why, lastPage: null }
}

/** Every answer of an operation, made once. `what` names it in a 501: `GET /v1/users`. */
export async function operationAnswers (what: string, operation: Json, document: Json): Promise<OperationAnswers> {
  const { sample } = await import('openapi-sampler') as unknown as { sample: Sampler }
  const responses = operation.responses as Json
  const byCode = new Map<string, { answer: Answer, examples: Map<string, Answer> }>()
  for (const [code, response] of Object.entries(responses)) byCode.set(code, responseAnswers(what, code, response as Json, document, sample))
  const standard = byCode.get(standardCode(responses))!
  return { standard: standard.answer, byCode, examples: standard.examples, codes: [...byCode.keys()] }
}

interface Preference {
  code?: string
  example?: string
}

/** `Prefer: code=404, example=bob` (RFC 7240 preferences, as Prism reads them); other preferences are ignored. */
export function parsePrefer (header: string | string[] | undefined): Preference | null {
  if (header === undefined) return null
  const text = Array.isArray(header) ? header.join(',') : header
  const found: Preference = {}
  for (const match of text.matchAll(/(?:^|[,;])\s*(code|example)\s*=\s*(?:"([^"]*)"|([^,;\s]*))/gi)) {
    const key = match[1]!.toLowerCase() as 'code' | 'example'
    found[key] = match[2] ?? match[3] ?? ''
  }
  return found.code === undefined && found.example === undefined ? null : found
}

/** The answer a preference selects, or the reason it selects none (a 400 for the client). */
export function preferredAnswer (answers: OperationAnswers, preference: Preference): Answer | string {
  let pool = answers.examples
  let answer = answers.standard
  if (preference.code !== undefined) {
    const code = preference.code.toUpperCase()
    const response = answers.byCode.get(code) ?? answers.byCode.get(`${code[0] ?? ''}XX`)
    if (response === undefined || !/^[1-5]\d\d$/.test(code)) return `Prefer: code=${preference.code}: the operation documents no such response (documented: ${answers.codes.join(', ')})`
    pool = response.examples
    answer = { ...response.answer, status: Number(code) }
  }
  if (preference.example !== undefined) {
    const example = pool.get(preference.example)
    if (example === undefined) return `Prefer: example=${preference.example}: the response documents no such example (${pool.size === 0 ? 'it has no named examples' : `documented: ${[...pool.keys()].join(', ')}`})`
    answer = { ...example, status: answer.status }
  }
  return answer
}
