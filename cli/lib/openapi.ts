/**
 * OpenAPI documents for `mock --openapi` and `verify --openapi`: read from a file or a URL (YAML
 * or JSON) and every `$ref` resolved, external ones too (@apidevtools/json-schema-ref-parser),
 * after a structural check of the parts we use. A document we cannot use is one line naming the
 * source and the JSON pointer of the first problem (a UsageError: exit 2).
 */
import { openApiMount, OPENAPI_METHODS } from 'vonage-jwt-guard'
import { UsageError } from './shared.js'

export interface OpenApiSource {
  /** The file or URL, as given. */
  source: string
  /** `--base-path`, when given after it. */
  basePath?: string
}

export interface LoadedDocument {
  source: string
  /** The document, every resolvable `$ref` replaced by its target (a circular one is left as a `$ref`). */
  document: Record<string, unknown>
  /** `3.0` or `3.1`: 3.0 schemas have `nullable` and boolean `exclusiveMinimum`. */
  version: '3.0' | '3.1'
  /** The path it is served under: `--base-path`, or its first `servers[].url`; `''` for the root. */
  mount: string
}

type Json = Record<string, unknown>

function isObject (value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A JSON pointer token (RFC 6901). */
export function pointerToken (key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1')
}

function problem (source: string, pointer: string, what: string): UsageError {
  return new UsageError(`--openapi ${source}: #${pointer}: ${what}`)
}

/** The first place a `$ref` equal to `ref` is written in `value`, as a JSON pointer. */
function findRef (value: unknown, ref: string, at = ''): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findRef(value[i], ref, `${at}/${i}`)
      if (found !== undefined) return found
    }
  } else if (isObject(value)) {
    if (value.$ref === ref) return `${at}/$ref`
    for (const [key, child] of Object.entries(value)) {
      const found = findRef(child, ref, `${at}/${pointerToken(key)}`)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/** The first `$ref` value in `value` that `test` accepts. */
function firstRef (value: unknown, test: (ref: string) => boolean): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = firstRef(item, test)
      if (found !== undefined) return found
    }
  } else if (isObject(value)) {
    if (typeof value.$ref === 'string' && test(value.$ref)) return value.$ref
    for (const child of Object.values(value)) {
      const found = firstRef(child, test)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/** The structure `mock` and `verify` rely on: a first problem found, as [pointer, what], or null. */
function structuralProblem (document: unknown): [string, string] | null {
  if (!isObject(document)) return ['', 'not an OpenAPI document: not an object']
  const version = document.openapi
  if (typeof version !== 'string' || !/^3\.[01]\.\d+/.test(version)) {
    if (document.swagger !== undefined) return ['/swagger', 'a Swagger 2.0 document: give an OpenAPI 3.0 or 3.1 one']
    return ['/openapi', `must be an OpenAPI version 3.0.x or 3.1.x, not ${JSON.stringify(version) ?? 'absent'}`]
  }
  if (!isObject(document.info)) return ['/info', 'must be an object (title, version)']
  if (document.servers !== undefined) {
    if (!Array.isArray(document.servers)) return ['/servers', 'must be an array']
    const first: unknown = document.servers[0]
    if (first !== undefined && (!isObject(first) || typeof first.url !== 'string')) return ['/servers/0/url', 'must be a string']
  }
  if (!isObject(document.paths)) return ['/paths', document.paths === undefined ? 'absent: there is nothing to serve' : 'must be an object']
  for (const [template, item] of Object.entries(document.paths)) {
    const at = `/paths/${pointerToken(template)}`
    if (!template.startsWith('/')) return [at, 'a path must start with "/"']
    if (!isObject(item)) return [at, 'must be an object (a path item)']
    const checks: Array<[unknown, string]> = [[item.parameters, `${at}/parameters`]]
    for (const method of OPENAPI_METHODS) {
      const operation = item[method]
      if (operation === undefined) continue
      const op = `${at}/${method}`
      if (!isObject(operation)) return [op, 'must be an object (an operation)']
      // Vonage's voice.v2.yml writes an operationId as a $ref to voice.yml's: resolved below.
      if (operation.operationId !== undefined && typeof operation.operationId !== 'string' && !(isObject(operation.operationId) && typeof operation.operationId.$ref === 'string')) return [`${op}/operationId`, 'must be a string']
      if (operation.security !== undefined && !Array.isArray(operation.security)) return [`${op}/security`, 'must be an array']
      if (!isObject(operation.responses) || Object.keys(operation.responses).length === 0) return [`${op}/responses`, 'must be an object with at least one response']
      for (const [code, response] of Object.entries(operation.responses)) {
        if (!/^(?:[1-5](?:\d\d|XX)|default)$/.test(code)) return [`${op}/responses/${pointerToken(code)}`, 'a response code must be an HTTP status, 1XX to 5XX, or default']
        if (!isObject(response)) return [`${op}/responses/${pointerToken(code)}`, 'must be an object (a response)']
      }
      if (operation.requestBody !== undefined && !isObject(operation.requestBody)) return [`${op}/requestBody`, 'must be an object']
      checks.push([operation.parameters, `${op}/parameters`])
    }
    for (const [parameters, where] of checks) {
      if (parameters === undefined) continue
      if (!Array.isArray(parameters)) return [where, 'must be an array']
      for (const [i, parameter] of parameters.entries()) {
        if (!isObject(parameter)) return [`${where}/${i}`, 'must be an object (a parameter)']
        if (parameter.$ref !== undefined) continue
        if (typeof parameter.name !== 'string') return [`${where}/${i}/name`, 'must be a string']
        if (!['path', 'query', 'header', 'cookie'].includes(parameter.in as string)) return [`${where}/${i}/in`, 'must be path, query, header or cookie']
      }
    }
  }
  return null
}

/** One document, read, checked and dereferenced. */
async function loadDocument ({ source, basePath }: OpenApiSource): Promise<LoadedDocument> {
  const { default: $RefParser } = await import('@apidevtools/json-schema-ref-parser')
  let raw: unknown
  try {
    raw = await $RefParser.parse(source, { resolve: { http: { timeout: 10_000 } } })
  } catch (error) {
    throw new UsageError(`--openapi ${source}: cannot read it: ${oneLine(error)}`)
  }
  const found = structuralProblem(raw)
  if (found !== null) throw problem(source, found[0], found[1])
  let document: Json
  try {
    // The raw document again, so that relative external $refs resolve against the source.
    document = await $RefParser.dereference(source, raw as Json, { dereference: { circular: 'ignore' }, resolve: { http: { timeout: 10_000 } } }) as Json
  } catch (error) {
    const targetRef = (error as { targetRef?: unknown }).targetRef
    const ref = typeof targetRef === 'string' ? targetRef : /\$ref pointer "([^"]+)"/.exec((error as Error).message)?.[1]
    let local = ref === undefined ? undefined : findRef(raw, ref) ?? findRef(raw, ref.replace(/^.*?(#.*)$/, '$1'))
    const file = (error as { source?: unknown }).source
    let refText = ref
    if (local === undefined && typeof file === 'string' && file !== source) {
      // An external file that cannot be read: the first $ref into it.
      refText = firstRef(raw, value => value.split('#')[0] !== '' && file.endsWith(value.split('#')[0]!.replace(/^\.\//, '')))
      local = refText === undefined ? undefined : findRef(raw, refText)
    }
    if (local !== undefined) throw problem(source, local, `the $ref "${refText ?? ''}" resolves nowhere: ${oneLine(error)}`)
    throw new UsageError(`--openapi ${source}: a $ref cannot be resolved: ${oneLine(error)}`)
  }
  const version = String(document.openapi).startsWith('3.0') ? '3.0' : '3.1'
  return { source, document, version, mount: openApiMount(document, basePath === undefined ? {} : { basePath }) }
}

/** An error's message on one line, without a path-revealing stack. */
function oneLine (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0]!.trim()
}

/**
 * Every document, loaded; two served under the same path are refused, naming both (mount one
 * elsewhere with `--base-path`).
 */
export async function loadDocuments (sources: readonly OpenApiSource[]): Promise<LoadedDocument[]> {
  const loaded = await Promise.all(sources.map(loadDocument))
  const byMount = new Map<string, string>()
  for (const { source, mount } of loaded) {
    const other = byMount.get(mount)
    if (other !== undefined) throw new UsageError(`--openapi ${other} and --openapi ${source} are both mounted at ${mount === '' ? '/' : mount}: give one of them --base-path`)
    byMount.set(mount, source)
  }
  return loaded
}

/** `--base-path`: a path starting with "/", no query; "/" mounts at the root. */
function basePathFlag (value: string): string {
  if (!value.startsWith('/') || /[?#\s{}]/.test(value)) throw new UsageError(`--base-path: "${value}" must be a path such as /v1 (starting with "/", no query)`)
  return value
}

/**
 * The `--openapi` and `--base-path` flags in the order given: each `--base-path` mounts the
 * `--openapi` before it. Commander calls each argument parser in command-line order.
 */
export function openApiFlags (): { openapi: (value: string) => OpenApiSource[], basePath: (value: string) => string, sources: OpenApiSource[] } {
  const sources: OpenApiSource[] = []
  return {
    sources,
    openapi: (value) => {
      sources.push({ source: value })
      return sources
    },
    basePath: (value) => {
      const last = sources.at(-1)
      if (last === undefined) throw new UsageError('--base-path mounts the --openapi document given before it: give --openapi first')
      if (last.basePath !== undefined) throw new UsageError(`--base-path: --openapi ${last.source} has one already`)
      last.basePath = basePathFlag(value)
      return value
    }
  }
}
