/**
 * `mock --openapi FILE|URL`: every operation of one or more OpenAPI 3.0 / 3.1 documents, behind
 * the guard, answered as documented (mock-answers.ts) after the request is checked against the
 * document (mock-validation.ts). Each document is mounted at the path of its first
 * `servers[].url`, or at its `--base-path`. The guard decides first: a 400, 401 or 403 of the
 * guard never reaches an operation; an operation with `security: []` is open, as Vonage leaves
 * it. An unknown path is 404, a method the path lacks 405 with `Allow`, a bad request 400, all in
 * Vonage's error shape. Without `--openapi`, `mock` is `serve`.
 */
import type { Command } from 'commander'
import type { FastifyContextConfig, FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { aclCoverage, OPENAPI_METHODS, servedPath, type GuardOptions } from 'vonage-jwt-guard'
import { CLIENT_SDK_ACL } from 'vonage-jwt-guard/mint'
import { operationAnswers, parsePrefer, preferredAnswer, type Answer, type OperationAnswers } from './mock-answers.js'
import { invalidParameters, routeSchemas, vonageError } from './mock-validation.js'
import { loadDocuments, openApiFlags, pointerToken, type LoadedDocument, type OpenApiSource } from './openapi.js'
import { newApp } from './server.js'
import { addServeFlags, buildServe, runDevServer, SAMPLE_PATH, type ServeFlags } from './serve.js'
import { UsageError } from './shared.js'

interface MockFlags extends ServeFlags {
  openapi?: OpenApiSource[]
}

/** The methods a 405 route answers: every one Fastify routes, less those documented. */
const ROUTED_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']

/** A route's path for find-my-way: `{name}` as `:p0`, a literal `:` doubled. Returns the names. */
function routePath (path: string): { url: string, paramNames: Record<string, string> } {
  const paramNames: Record<string, string> = {}
  let n = 0
  const url = path.split(/(\{[^}]*\})/).map((part) => {
    if (part.startsWith('{') && part.endsWith('}')) {
      const route = `p${n++}`
      paramNames[route] = part.slice(1, -1)
      return `:${route}`
    }
    return part.replace(/:/g, '::')
  }).join('')
  return { url, paramNames }
}

interface MockOperation {
  what: string
  answers: OperationAnswers
}

function send (reply: FastifyReply, answer: Answer): FastifyReply {
  if (answer.missing !== null) {
    return reply.code(501).type('application/json').send(vonageError('Not Implemented', answer.missing, String(reply.request.id)))
  }
  reply.code(answer.status)
  if (answer.type !== null) reply.type(answer.type)
  return reply.send(answer.payload ?? undefined)
}

/** The answer to a request: the preferred one, or the last page for a client that followed `next`. */
function answer (operation: MockOperation, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  let chosen = operation.answers.standard
  const prefer = request.headers.prefer
  if (prefer !== undefined) {
    const preference = parsePrefer(prefer)
    if (preference !== null) {
      const found = preferredAnswer(operation.answers, preference)
      if (typeof found === 'string') return reply.code(400).type('application/json').send(vonageError('Bad Request', found, String(request.id)))
      chosen = found
      reply.header('preference-applied', [preference.code === undefined ? '' : `code=${preference.code}`, preference.example === undefined ? '' : `example=${preference.example}`].filter(Boolean).join(', '))
    }
  }
  const last = chosen.lastPage
  if (last !== null) {
    const query = new URLSearchParams(request.url.slice(request.url.indexOf('?') + 1 || request.url.length))
    if (last.query.every(([name, value]) => query.get(name) === value)) chosen = last.answer
  }
  return send(reply, chosen)
}

/** The mock of these documents on a Fastify app with the guard registered. */
async function buildMock (guard: GuardOptions, fastify: FastifyServerOptions, healthPath: string | false, documents: readonly LoadedDocument[]): Promise<FastifyInstance> {
  const { default: vonageJwtGuard } = await import('vonage-jwt-guard')
  const app = await newApp(fastify)
  await app.register(vonageJwtGuard, guard)
  if (healthPath !== false) app.get(healthPath, { config: { jwtGuard: false } }, async () => ({ status: 'ok' }))

  app.setNotFoundHandler((request, reply) => reply.code(404).type('application/json')
    .send(vonageError('Not Found', `${request.method} ${request.url.split('?')[0] ?? ''}: no operation of the mocked documents is at this path`, String(request.id))))

  const routes: Array<{ method: string, url: string, pointer: string, source: string }> = []
  try {
  await app.register(async (mock) => {
    mock.setErrorHandler((error: FastifyError & { validation?: unknown }, request, reply) => {
      // The guard's refusals and any fault go to the app's handler (server.ts).
      if (error.validation === undefined) throw error
      const names = (request.routeOptions.config as { paramNames?: Record<string, string> }).paramNames ?? {}
      request.log.info({ statusCode: 400, context: (error as { validationContext?: string }).validationContext }, 'vonage-jwt-guard mock: the request does not match the document')
      return reply.code(400).type('application/json').send({
        ...vonageError('Bad Request', 'The request failed due to validation errors', String(request.id)),
        invalid_parameters: invalidParameters(error, names)
      })
    })
    // Fastify's own ajv (its compiler, with ajv-formats): every failing field reported;
    // OpenAPI's annotations (example, xml, discriminator) and unknown formats ignored rather than
    // refused. A path, a query and a header are text, read as the types their schemas say; a
    // JSON body is taken as sent (Vonage does not read "5" as 5).
    const { AjvCompiler } = await import('@fastify/ajv-compiler')
    const pool = AjvCompiler()
    const common = { allErrors: true, strict: false, logger: false as const, useDefaults: true, removeAdditional: false }
    const text = pool({}, { customOptions: { ...common, coerceTypes: 'array' as const } })
    const json = pool({}, { customOptions: { ...common, coerceTypes: false } })
    mock.setValidatorCompiler((route) => route.httpPart === 'body' ? json(route) : text(route))
    // A documented body of another type than JSON is taken as it comes.
    mock.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })

    for (const { source, document, version, mount } of documents) {
      const paths = document.paths as Record<string, Record<string, unknown>>
      for (const [template, pathItem] of Object.entries(paths)) {
        const served = servedPath(mount, template)
        const { url, paramNames } = routePath(served)
        const documented: string[] = []
        for (const method of OPENAPI_METHODS) {
          const operation = pathItem[method] as Record<string, unknown> | undefined
          if (operation === undefined) continue
          const upper = method.toUpperCase()
          documented.push(upper)
          const what = `${upper} ${served}`
          const mocked: MockOperation = { what, answers: await operationAnswers(what, operation, document) }
          const { schema, optionalBody } = routeSchemas(document, version, pathItem, operation, paramNames)
          const open = Array.isArray(operation.security) && operation.security.length === 0
          routes.push({ method: upper, url, pointer: `/paths/${pointerToken(template)}/${method}`, source })
          // Compiled now, so that a schema ajv refuses names its operation (ajv caches it for the route).
          for (const [part, partSchema] of Object.entries(schema)) (part === 'body' ? json : text)({ schema: partSchema as object, method: upper, url, httpPart: part })
          mock.route({
            method: upper,
            url,
            schema,
            config: { paramNames, ...(open ? { jwtGuard: false } : {}) } as FastifyContextConfig,
            // An optional body that was not sent is validated as null (ajv has no "absent").
            ...(optionalBody ? { preValidation: (request: FastifyRequest, _reply: FastifyReply, done: () => void) => { if (request.body === undefined) request.body = null; done() } } : {}),
            handler: (request, reply) => answer(mocked, request, reply)
          })
        }
        if (documented.includes('GET') && !documented.includes('HEAD')) documented.push('HEAD')
        const allow = documented.join(', ')
        const others = ROUTED_METHODS.filter(m => !documented.includes(m))
        if (others.length > 0) {
          mock.route({
            method: others,
            url,
            exposeHeadRoute: false,
            handler: (request, reply) => reply.code(405).header('allow', allow).type('application/json')
              .send(vonageError('Method Not Allowed', `${request.method} ${served}: the path documents ${allow}`, String(request.id)))
          })
        }
      }
    }
  })
  } catch (error) {
    await app.close()
    throw documentError(error, routes)
  }
  return app
}

/**
 * A route Fastify refuses (a schema ajv cannot compile, a path two documents serve) as one line
 * with the document's pointer: the route being added when it failed is the last one listed.
 */
function documentError (error: unknown, routes: ReadonlyArray<{ method: string, url: string, pointer: string, source: string }>): unknown {
  const route = routes.at(-1)
  if (route === undefined) return error
  if ((error as { code?: string }).code === 'FST_ERR_DUPLICATED_ROUTE') {
    const first = routes.find(r => r.url === route.url && r.method === route.method)!
    return new UsageError(`--openapi ${route.source}: #${route.pointer}: ${route.method} ${route.url.replace(/:p\d+/g, '{}')} is served by --openapi ${first.source} (#${first.pointer}) too: give one of them --base-path`)
  }
  return new UsageError(`--openapi ${route.source}: #${route.pointer}: ${(error as Error).message.split('\n')[0]!}`)
}

/** The curl line's path: the first GET the Client SDK ACL grants, else the first GET. */
function samplePathOf (documents: readonly LoadedDocument[]): string {
  const operations = documents.flatMap(d => aclCoverage(d.document, CLIENT_SDK_ACL, { basePath: d.mount }))
  const get = operations.find(o => o.method === 'GET' && o.granted) ?? operations.find(o => o.method === 'GET') ?? operations[0]
  return get?.target ?? SAMPLE_PATH
}

export function registerMock (program: Command): void {
  const flags = openApiFlags()
  const command = program
    .command('mock')
    .description('start a guarded mock of OpenAPI documents: each operation answers as documented, behind the guard (without --openapi: serve)')
    .option('--openapi <file|url>', 'an OpenAPI 3.0 or 3.1 document, YAML or JSON (repeat for several)', flags.openapi)
    .option('--base-path <path>', 'mount the --openapi before it here instead of at its servers[0].url path (e.g. /v1)', flags.basePath)
  addServeFlags(command)
  command.addHelpText('after', `
Each document is served at the path of its first servers[].url; --base-path mounts the --openapi
given just before it elsewhere. Answers: the documented success response (its example, or a
sample of its schema); Prefer: code=404 or Prefer: example=<name> picks another.`)
  command.action(async (options: MockFlags) => {
    if (flags.sources.length === 0) {
      await runDevServer(options, {
        title: 'mock: a guarded mock API (no --openapi: every granted request is echoed)',
        build: (guard, fastify) => buildServe(guard, fastify, options.healthPath),
        samplePath: SAMPLE_PATH
      })
      return
    }
    const started = Date.now()
    const documents = await loadDocuments(flags.sources)
    const count = documents.reduce((n, d) => n + aclCoverage(d.document, null).length, 0)
    const mounts = documents.map(d => `${d.source} at ${d.mount === '' ? '/' : d.mount}`).join(', ')
    await runDevServer(options, {
      title: `mock: ${count} operation${count === 1 ? '' : 's'} of ${mounts} (read in ${Date.now() - started} ms)`,
      build: (guard, fastify) => buildMock(guard, fastify, options.healthPath, documents),
      samplePath: samplePathOf(documents)
    })
  })
}
