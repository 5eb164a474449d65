/**
 * Requests checked against the document, by the validator Fastify already carries (ajv, through
 * route schemas): an operation's path, query and header parameters and its JSON body become the
 * route's `params`, `querystring`, `headers` and `body` schemas. OpenAPI 3.0's own keywords are
 * turned into JSON Schema first (`nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`,
 * `readOnly` properties that a request leaves out); `example` and the other annotations are
 * ignored (ajv without strict mode). A failure is 400 in Vonage's error shape.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyError, FastifySchema } from 'fastify'
import { operationParameters } from 'vonage-jwt-guard'

type Json = Record<string, unknown>

function isObject (value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Vonage's error body (`type`, `title`, `detail`, `instance`, and for a bad request `invalid_parameters`). */
interface VonageError {
  type: string
  title: string
  detail: string
  instance: string
  invalid_parameters?: Array<{ name: string, reason: string }>
}

export function vonageError (title: string, detail: string, instance: string = randomUUID()): VonageError {
  const anchor = title.toLowerCase().replace(/[^a-z0-9]+/g, '-')
  return { type: `https://developer.vonage.com/api-errors#${anchor}`, title, detail, instance }
}

const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems']
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions']
const SUBSCHEMAS = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames']

/**
 * An OpenAPI schema object as the JSON Schema ajv reads, for a request. Shared objects (a
 * dereferenced `$ref`) are converted once; a `$ref` left by a circular reference accepts anything.
 */
function requestSchema (schema: unknown, version: '3.0' | '3.1', seen = new WeakMap<object, unknown>()): unknown {
  if (!isObject(schema)) return schema
  const done = seen.get(schema)
  if (done !== undefined) return done
  if (typeof schema.$ref === 'string') return {}
  const out: Json = {}
  seen.set(schema, out)
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'example' || key === 'discriminator' || key === 'xml' || key === 'externalDocs' || key.startsWith('x-')) continue
    if (SUBSCHEMA_LISTS.includes(key) && Array.isArray(value)) out[key] = value.map(v => requestSchema(v, version, seen))
    else if (SUBSCHEMA_MAPS.includes(key) && isObject(value)) out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, requestSchema(v, version, seen)]))
    else if (SUBSCHEMAS.includes(key) && isObject(value)) out[key] = requestSchema(value, version, seen)
    else if (key === 'items' && Array.isArray(value)) out[key] = value.map(v => requestSchema(v, version, seen))
    else out[key] = value
  }
  // A readOnly property is the server's to set: a request need not send it.
  if (Array.isArray(out.required) && isObject(schema.properties)) {
    const properties = schema.properties
    out.required = (out.required as unknown[]).filter(name => !(typeof name === 'string' && isObject(properties[name]) && properties[name].readOnly === true))
  }
  if (version === '3.0') {
    for (const [bound, limit] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
      if (typeof out[bound] === 'boolean') {
        if (out[bound] === true && typeof out[limit] === 'number') {
          out[bound] = out[limit]
          delete out[limit]
        } else {
          delete out[bound]
        }
      }
    }
    if (out.nullable === true) {
      delete out.nullable
      if (typeof out.type === 'string') {
        out.type = [out.type, 'null']
        if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum as unknown[], null]
      } else {
        const copy = { ...out }
        for (const key of Object.keys(out)) delete out[key]
        out.anyOf = [copy, { type: 'null' }]
      }
    } else {
      delete out.nullable
    }
  }
  return out
}

/** Whether a media type is JSON (`application/json`, `application/problem+json`, ...). */
export function isJsonType (type: string): boolean {
  return /^application\/(?:[\w.-]+\+)?json\b/i.test(type) || type === '*/*'
}

interface RouteSchemas {
  schema: FastifySchema
  /** The Fastify name of each path parameter (`p0`, ...) to its name in the document. */
  paramNames: Record<string, string>
  /** The request body may be absent: an absent one is validated as null. */
  optionalBody: boolean
}

/** Headers the OpenAPI specification says a parameter may not describe (they are the transport's). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization'])

/** The route schemas of an operation; `paramNames` maps the route's parameter names back. */
export function routeSchemas (document: Json, version: '3.0' | '3.1', pathItem: Json, operation: Json, paramNames: Record<string, string>): RouteSchemas {
  const seen = new WeakMap<object, unknown>()
  const groups: Record<'path' | 'query' | 'header', { properties: Json, required: string[] }> = {
    path: { properties: {}, required: [] },
    query: { properties: {}, required: [] },
    header: { properties: {}, required: [] }
  }
  const routeName: Record<string, string> = Object.fromEntries(Object.entries(paramNames).map(([route, name]) => [name, route]))
  for (const parameter of operationParameters(document, pathItem, operation)) {
    const place = parameter.in as string
    if (place !== 'path' && place !== 'query' && place !== 'header') continue
    let name = parameter.name as string
    if (place === 'header') {
      name = name.toLowerCase()
      if (IGNORED_HEADERS.has(name)) continue
    }
    if (place === 'path') {
      const route = routeName[name]
      if (route === undefined) continue
      name = route
    }
    const schema = isObject(parameter.schema) ? requestSchema(parameter.schema, version, seen) : content(parameter.content, version, seen) ?? {}
    groups[place].properties[name] = schema
    if (parameter.required === true || place === 'path') groups[place].required.push(name)
  }
  const schema: FastifySchema = {}
  const object = (group: { properties: Json, required: string[] }): Json => ({ type: 'object', properties: group.properties, ...(group.required.length === 0 ? {} : { required: group.required }) })
  if (Object.keys(groups.path.properties).length > 0) schema.params = object(groups.path)
  if (Object.keys(groups.query.properties).length > 0) schema.querystring = object(groups.query)
  if (Object.keys(groups.header.properties).length > 0) schema.headers = object(groups.header)
  let optionalBody = false
  const body = operation.requestBody
  if (isObject(body)) {
    const bodySchema = content(body.content, version, seen)
    if (bodySchema !== undefined) {
      optionalBody = body.required !== true
      schema.body = optionalBody ? { anyOf: [{ type: 'null' }, bodySchema] } : bodySchema
    }
  }
  return { schema, paramNames, optionalBody }
}

/** The schema of the JSON media type of a `content` map, converted; undefined when there is none. */
function content (value: unknown, version: '3.0' | '3.1', seen: WeakMap<object, unknown>): unknown {
  if (!isObject(value)) return undefined
  const type = Object.keys(value).find(isJsonType)
  const media = type === undefined ? undefined : value[type]
  return isObject(media) && isObject(media.schema) ? requestSchema(media.schema, version, seen) : undefined
}

interface AjvError {
  keyword: string
  instancePath: string
  message?: string
  params: Record<string, unknown>
}

/**
 * Fastify's validation error as Vonage's 400 body: each failing field in `invalid_parameters`,
 * named as the document names it (a body field by its dotted path).
 */
export function invalidParameters (error: FastifyError & { validation?: AjvError[], validationContext?: string }, paramNames: Record<string, string>): Array<{ name: string, reason: string }> {
  const context = error.validationContext ?? 'body'
  const found: Array<{ name: string, reason: string }> = []
  for (const item of error.validation ?? []) {
    // An optional body is "null or the schema": the null branch's failure says nothing.
    if (context === 'body' && item.instancePath === '' && (item.keyword === 'anyOf' || (item.keyword === 'type' && item.params.type === 'null'))) continue
    const segments = item.instancePath.split('/').slice(1).map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    if (item.keyword === 'required' && typeof item.params.missingProperty === 'string') segments.push(item.params.missingProperty)
    if (context === 'params' && segments[0] !== undefined) segments[0] = paramNames[segments[0]] ?? segments[0]
    const name = segments.length === 0 ? (context === 'body' ? 'body' : context) : segments.join('.')
    const reason = item.keyword === 'required' ? 'is required' : item.message ?? 'is invalid'
    if (!found.some(f => f.name === name && f.reason === reason)) found.push({ name, reason })
  }
  return found
}
