/**
 * What an ACL grants of an OpenAPI 3.0 / 3.1 document: every operation as `METHOD /path` (the path
 * as served: the document's mount prefix, from its first `servers[].url` or `basePath`, then the
 * path template), tested by the ACL's own decision on a concrete path whose parameters carry the
 * document's example, or a sample of their schema. Pure functions over a parsed document (the
 * command line reads YAML and resolves external `$ref`s before calling them); a local `$ref` to
 * a parameter is followed here.
 */
import { compileAcl, decide } from './acl.js'
import { canonicalPath } from './canonical-path.js'
import { GuardError } from './errors.js'
import { isPlainObject } from './is-plain-object.js'

/** The operation keys of an OpenAPI path item, in the order the documents list them. */
export const OPENAPI_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

export interface OpenApiOperation {
  /** Upper-case, e.g. `GET`. */
  method: string
  /** The path as served, template included: `/v1/users/{user_id}`. */
  path: string
  operationId: string | null
  /** The concrete request path tested: each parameter replaced by its example or a sample. */
  target: string
}

export interface AclCoverage extends OpenApiOperation {
  granted: boolean
  /** The first pattern that grants the operation; null when none does, or for a root token. */
  grantedBy: string | null
}

export interface OpenApiMountOptions {
  /** Mount the document here instead of at the path of its first `servers[].url`. */
  basePath?: string
}

export interface AclCoverageOptions extends OpenApiMountOptions {
  /** A token without an acl claim is granted nothing (the guard's `requireAcl`). */
  requireAcl?: boolean
}

/**
 * The path a document is served under: `basePath`, or the path of its first `servers[].url`
 * (its `{variables}` replaced by their defaults), without a trailing slash; `''` for the root.
 */
export function openApiMount (document: unknown, options: OpenApiMountOptions = {}): string {
  if (options.basePath !== undefined) return trimSlash(options.basePath)
  const servers = isPlainObject(document) ? document.servers : undefined
  const first: unknown = Array.isArray(servers) ? servers[0] : undefined
  if (!isPlainObject(first) || typeof first.url !== 'string') return ''
  const variables = isPlainObject(first.variables) ? first.variables : {}
  const url = first.url.replace(/\{([^}]*)\}/g, (_, name: string) => {
    const variable = variables[name]
    return isPlainObject(variable) && typeof variable.default === 'string' ? variable.default : ''
  })
  // Absolute (`https://api.nexmo.com/v0.1`) or relative (`/v0.1`): only the path is kept.
  let path: string
  try {
    path = new URL(url, 'http://localhost').pathname
  } catch {
    return ''
  }
  return trimSlash(decodeURI(path))
}

function trimSlash (path: string): string {
  const trimmed = path.replace(/\/+$/, '')
  return trimmed === '' || trimmed.startsWith('/') ? trimmed : `/${trimmed}`
}

/** The served path of a template under a mount: `/v1/calls` + `/` is `/v1/calls`. */
export function servedPath (mount: string, template: string): string {
  const joined = template === '/' ? mount : `${mount}${template}`
  return joined === '' ? '/' : joined
}

/** A local `$ref` (`#/components/...`) followed; anything else returned as it is. */
function follow (document: Record<string, unknown>, value: unknown): unknown {
  let current = value
  for (let hops = 0; hops < 16 && isPlainObject(current) && typeof current.$ref === 'string'; hops++) {
    const ref = current.$ref
    if (!ref.startsWith('#/')) return current
    let target: unknown = document
    for (const token of ref.slice(2).split('/')) {
      const key = decodeURIComponent(token).replace(/~1/g, '/').replace(/~0/g, '~')
      target = isPlainObject(target) || Array.isArray(target) ? (target as Record<string, unknown>)[key] : undefined
    }
    current = target
  }
  return current
}

/** A value for a path parameter: its example, or one its schema allows. */
export function sampleParameter (parameter: Record<string, unknown>, document: Record<string, unknown> = {}): string {
  const examples = isPlainObject(parameter.examples) ? Object.values(parameter.examples) : []
  const firstExample = follow(document, examples[0])
  const schema = follow(document, parameter.schema)
  const s = isPlainObject(schema) ? schema : {}
  const candidates: unknown[] = [
    parameter.example,
    isPlainObject(firstExample) ? firstExample.value : undefined,
    s.example,
    Array.isArray(s.examples) ? s.examples[0] : undefined,
    s.default,
    Array.isArray(s.enum) ? s.enum[0] : undefined
  ]
  for (const candidate of candidates) {
    if (typeof candidate === 'string' || typeof candidate === 'number' || typeof candidate === 'boolean') return String(candidate)
  }
  const type: unknown = Array.isArray(s.type) ? (s.type as unknown[]).find(t => t !== 'null') : s.type
  if (type === 'integer' || type === 'number') return String(typeof s.minimum === 'number' ? s.minimum : 1)
  if (type === 'boolean') return 'true'
  if (s.format === 'uuid') return '00000000-0000-4000-8000-000000000000'
  return 'sample'
}

/** The parameters of an operation: the path item's, overridden by the operation's (same name and place). */
export function operationParameters (document: Record<string, unknown>, pathItem: Record<string, unknown>, operation: Record<string, unknown>): Array<Record<string, unknown>> {
  const byKey = new Map<string, Record<string, unknown>>()
  for (const list of [pathItem.parameters, operation.parameters]) {
    if (!Array.isArray(list)) continue
    for (const item of list) {
      const parameter = follow(document, item)
      if (isPlainObject(parameter) && typeof parameter.name === 'string' && typeof parameter.in === 'string') byKey.set(`${parameter.in}:${parameter.name}`, parameter)
    }
  }
  return [...byKey.values()]
}

/** Every operation of a document, in document order, as served. */
export function openApiOperations (document: unknown, options: OpenApiMountOptions = {}): OpenApiOperation[] {
  if (!isPlainObject(document) || !isPlainObject(document.paths)) return []
  const mount = openApiMount(document, options)
  const operations: OpenApiOperation[] = []
  for (const [template, item] of Object.entries(document.paths)) {
    const pathItem = follow(document, item)
    if (!isPlainObject(pathItem)) continue
    for (const method of OPENAPI_METHODS) {
      const operation = pathItem[method]
      if (!isPlainObject(operation)) continue
      const parameters = operationParameters(document, pathItem, operation)
      const target = template.replace(/\{([^}]*)\}/g, (_, name: string) => {
        const parameter = parameters.find(p => p.in === 'path' && p.name === name)
        return encodeURIComponent(parameter === undefined ? 'sample' : sampleParameter(parameter, document))
      })
      operations.push({
        method: method.toUpperCase(),
        path: servedPath(mount, template),
        operationId: typeof operation.operationId === 'string' ? operation.operationId : null,
        target: servedPath(mount, target)
      })
    }
  }
  return operations
}

/**
 * What `acl` (the value of a token's `acl` claim; `null` or `undefined` for a root token) grants
 * of the document: each operation with the pattern that grants it. A rule with `filters` grants
 * nothing here: no `aclFilter` decides them.
 *
 * @throws {GuardError} `VJG_CLAIM_INVALID` when `acl` is not an acl claim the guard accepts.
 */
export function aclCoverage (document: unknown, acl: unknown, options: AclCoverageOptions = {}): AclCoverage[] {
  const compiled = acl === null || acl === undefined ? null : compileAcl(acl)
  return openApiOperations(document, options).map((operation) => {
    let path: string | null
    try {
      path = canonicalPath(operation.target)
    } catch {
      path = null
    }
    try {
      const { grantedBy } = decide(compiled, operation.method, path, { requireAcl: options.requireAcl === true })
      return { ...operation, granted: true, grantedBy }
    } catch (error) {
      if (!(error instanceof GuardError)) throw error
      return { ...operation, granted: false, grantedBy: null }
    }
  })
}
