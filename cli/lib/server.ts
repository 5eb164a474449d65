/**
 * Running a guarded server (`serve`, `proxy`, `forward-auth`): its flags, its Fastify settings
 * (refusals logged once, granted requests only when asked, never a token, never a stack for a
 * refusal), the listener, `--public-keys-dir` reloads, metrics, and a graceful stop on SIGTERM.
 *
 * The guard's options are frozen when it registers, so a new key set means a new Fastify app.
 * We own the one `http.Server`; each app is built with a `serverFactory` that hands us its
 * request handler, and the server calls the current app's. A reload builds and readies the next
 * app first (a bad key set never replaces a good one), swaps it in for new requests, and closes
 * the old one once the requests it is answering have finished.
 */
import cluster from 'node:cluster'
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism } from 'node:os'
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify'
import { GuardError, isCanonicalRoutePath, isGuardError, type GuardOptions } from 'vonage-jwt-guard'
import { keySetSources, optionError, type GuardFlags, type ResolvedGuard } from './guard-options.js'
import { keySource, reloadMessage } from './key-source.js'
import { keyChanges, KEYS_POLL_INTERVAL, publicKeysOf, readKeysDir, watchKeysDir, type KeySet } from './keys-dir.js'
import { escapeTerminal } from './terminal.js'
import { metricsUrl, singleProcessMetrics, workerMetrics } from './metrics.js'
import { startOtel, tracedRequests, type Otel } from './otel.js'
import { installRateLimit, type RateLimitSettings } from './rate-limit.js'
import { readyRoute, type ReadyRoute } from './readiness.js'
import { CommandFailed, EXIT, integerFlag, logLevelFlag, portFlag, reachableHost, UsageError } from './shared.js'
import type { ServerFlags } from './server-flags.js'
import { runPrimary } from './workers.js'

export type { ServerFlags } from './server-flags.js'

/** The default of `--grace-period`: long enough for a slow request, short of Kubernetes' 30 s. */
const DEFAULT_GRACE_PERIOD = 10
/** The default of `--request-timeout`: Node's own `requestTimeout`, room for a slow upload. */
const DEFAULT_REQUEST_TIMEOUT = 300

/** A `--health-path`: a canonical path of at least one segment (a `/` route would shadow the upstream's root). */
export function healthPathFlag (value: string): string {
  if (!isCanonicalRoutePath(value)) throw new InvalidArgumentError('Expected a canonical path such as /healthz (no trailing slash, no query, not /).')
  return value
}

/** `--workers N|auto`: auto is the machine's cores. */
function workersFlag (value: string): number {
  if (value === 'auto') return availableParallelism()
  return integerFlag(1, 256)(value)
}

export function addServerFlags (command: Command): Command {
  return command
    .addOption(new Option('-p, --port <port>', 'port to listen on (0: any free port)').env('PORT').default(3000).argParser(portFlag))
    .option('--host <host>', 'address to listen on (0.0.0.0 to accept other machines)', '127.0.0.1')
    .option('--health-path <path>', 'the unguarded health route (GET and HEAD)', healthPathFlag, '/healthz')
    .option('--no-health-path', 'no health route: every path is guarded')
    .option('--ready-path <path>', 'the unguarded readiness route (GET and HEAD): 503 until the keys are loaded, while Redis does not answer or a key reload fails', healthPathFlag, '/readyz')
    .option('--no-ready-path', 'no readiness route')
    .option('--request-timeout <seconds>', 'how long a client may take to send a whole request, head and body (then 408 and the connection is closed)', integerFlag(1, 86_400), DEFAULT_REQUEST_TIMEOUT)
    .option('--grace-period <seconds>', 'after SIGTERM, how long requests in flight may take before the process exits', integerFlag(0, 3600), DEFAULT_GRACE_PERIOD)
    .option('--log-level <level>', 'log level (fatal, error, warn, info, debug, trace, silent); refusals are logged at info', logLevelFlag, 'info')
    .option('--log-requests', 'log every request (Fastify\'s incoming and completed lines), granted ones too', false)
    .option('--metrics-port <port>', 'serve Prometheus metrics at GET /metrics on this port (its own listener)', portFlag)
    .option('--metrics-host <host>', 'the address of the metrics listener', '127.0.0.1')
    .option('--workers <n>', 'processes answering requests (node:cluster): a number, or auto for one per core', workersFlag, 1)
    .option('--otel', 'OpenTelemetry: a span per decision, sent with the OTLP HTTP exporter configured by the OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME...)', false)
}

/** Fastify's logger: pretty lines in a terminal, JSON lines (one per event) for a pipe or a file. */
function loggerOptions (level: string): { level: string, transport?: { target: string, options: Record<string, unknown> } } {
  if (process.stdout.isTTY === true) {
    return { level, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
  }
  return { level }
}

/** A request in the log: no query (a token may travel in one, `tokenSources: [{ query }]`), no header. */
function requestInLog (request: { method?: string, url?: string, ip?: string, socket?: { remoteAddress?: string } }): Record<string, unknown> {
  return { method: request.method, path: (request.url ?? '').split('?')[0], remoteAddress: request.ip ?? request.socket?.remoteAddress }
}

/**
 * Fastify's own 400s, before any hook (so before the guard): a target its router cannot decode
 * (`%zz`, invalid UTF-8) is the guard's 400 `VJG_PATH_INVALID` with its challenge, as the plugin
 * gives it for every other bad path; anything else a plain 400. Neither quotes the target (a
 * token may travel in its query), and each is logged once, at info, without it.
 */
function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_BAD_URL') {
    const coded = new GuardError('VJG_PATH_INVALID', 'The path has a malformed percent-escape or is not UTF-8 once decoded')
    request.log.info({ code: coded.code, statusCode: coded.statusCode }, `vonage-jwt-guard: ${coded.message}`)
    void reply.code(400).headers(coded.headers).send({ statusCode: 400, code: coded.code, error: coded.error, message: coded.message })
    return
  }
  request.log.info({ code: error.code, statusCode: 400 }, 'Bad request')
  void reply.code(400).send({ statusCode: 400, code: error.code, error: 'Bad Request', message: 'Bad request' })
}

/** The Fastify settings of the servers. */
async function fastifyOptions (flags: Pick<ServerFlags, 'logLevel' | 'logRequests'>): Promise<FastifyServerOptions> {
  const { LogController } = await import('fastify')
  return {
    logger: { ...loggerOptions(flags.logLevel), serializers: { req: requestInLog } },
    // Fastify's two lines per request made `proxy` 0.71x as fast (issue 16): refusals are logged
    // by the guard, and every request only when asked.
    logController: new LogController({ disableRequestLogging: !flags.logRequests }),
    frameworkErrors
  }
}

/**
 * A Fastify app for a server command, with the error handler that keeps refusals to one log
 * line: the guard has logged its own (at info, with the code); another 4xx (Fastify's bad URL,
 * a body too large) is logged here once, at info, without a stack; a 5xx is a fault, logged at
 * error with its stack. Set before any plugin, so that every context inherits it.
 */
export async function newApp (options: FastifyServerOptions): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify')
  const app = Fastify(options)
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (status >= 500 && !isGuardError(error)) {
      request.log.error({ err: error }, error.message)
      return reply.code(status).send({ statusCode: status, error: STATUS_CODES[status], message: 'Internal Server Error' })
    }
    if (!isGuardError(error)) request.log.info({ code: error.code, statusCode: status }, error.message)
    const headers = (error as { headers?: Record<string, string> }).headers
    if (headers !== undefined) reply.headers(headers)
    return reply.code(status).send({ statusCode: status, code: error.code, error: STATUS_CODES[status], message: error.message })
  })
  return app
}

/** Builds the app of a server command on these guard options (with the given Fastify settings). */
type BuildApp = (guard: GuardOptions, fastify: FastifyServerOptions) => Promise<FastifyInstance>

type Handler = (request: IncomingMessage, response: ServerResponse) => void

/** Node checks `requestTimeout` every 30 s by default: every second, so the timeout is kept to within one. */
const SERVER_OPTIONS = Object.freeze({ connectionsCheckingInterval: 1000 })

interface Generation {
  readonly app: FastifyInstance
  readonly handler: Handler
  inFlight: number
  retired: boolean
}

interface RunSettings {
  build: BuildApp
  guard: ResolvedGuard
  flags: ServerFlags
  /** The line printed once listening; ends with "(Ctrl-C to stop)". */
  banner: (base: string) => string
  /** forward-auth: a ready probe is 204, and one carrying a check's headers 400 (readiness.ts). */
  forwardAuth?: boolean
  /** `--rate-limit` (rate-limit.ts), installed on each app after the guard. */
  rateLimit?: RateLimitSettings | undefined
}

/**
 * Run a server command until a signal: with `--workers` > 1 the primary forks the workers
 * (workers.ts), each of which runs this again; otherwise this process serves.
 */
export async function runServer (settings: RunSettings): Promise<void> {
  const { guard, flags } = settings
  if (flags.metricsPort !== undefined && flags.metricsPort !== 0 && flags.metricsPort === flags.port && flags.metricsHost === flags.host) {
    throw new UsageError('--metrics-port: the metrics have their own listener, never the guarded port: give another port')
  }
  if (flags.workers > 1 && guard.perProcessState !== null) {
    throw new UsageError(`${guard.perProcessState} with --workers ${flags.workers} needs a shared store (--redis-url, or a store marked shared: true): each worker keeps its own records, so a token would be accepted up to ${flags.workers} times`)
  }
  // The keys in use, above the banner: a server that refuses every token says so at start.
  const keys = keySource(guard, flags as Partial<GuardFlags>)
  if (keys.warning !== null && !cluster.isWorker) process.stderr.write(`${keys.warning}\n`)
  let banner = keys.line === null ? settings.banner : (base: string) => `${keys.line}\n${settings.banner(base)}`
  if (flags.workers > 1 && cluster.isPrimary) {
    // The primary answers no request: the workers build their own guard (and Redis connection).
    await guard.close()
    await runPrimary(flags, banner)
    return
  }
  if (flags.metricsPort !== undefined) {
    if (cluster.isWorker) {
      await workerMetrics()
    } else {
      const at = metricsUrl(flags.metricsHost, await singleProcessMetrics(flags.metricsHost, flags.metricsPort))
      const before = banner
      banner = (base) => `metrics: ${at}\n${before(base)}`
    }
  }
  await serve({ ...settings, banner })
}

/**
 * The apps a server has built, one per key set (`--public-keys-dir` builds a new one when the
 * keys change), and the one that answers new requests. An older one is closed once the requests
 * it was answering are done.
 */
interface Apps {
  current: Generation
  readonly all: Set<Generation>
  /** Set once the server stops: answers close their connection, no new app is started. */
  closing: boolean
  /** Why the last reload of --public-keys-dir failed, for readiness; null: it did not. */
  reloadFailure: string | null
  /** The keys of --public-keys-dir in use (the library is given a stand-in key when there is none); null: no directory. */
  keysInDir: number | null
}

/** An app on these options, ready, with its request handler. */
async function generation (build: BuildApp, base: FastifyServerOptions, apps: Pick<Apps, 'closing'>, rateLimit: RateLimitSettings | undefined, options: GuardOptions): Promise<Generation> {
  let handler: Handler | undefined
  const app = await build(options, {
    ...base,
    // Fastify's own server is never listened on: ours calls the handler it is given here.
    serverFactory: (h) => {
      handler = h as Handler
      return createServer()
    }
  })
  // A callback hook: no promise per request on the hot path. A refusal sent before the client
  // finished sending its body closes the connection once answered: otherwise Node reads the
  // rest to keep the connection alive, and a client trickling a body it announced as large
  // holds the connection (and a graceful stop) for as long as it likes.
  if (rateLimit !== undefined) await installRateLimit(app, rateLimit)
  app.addHook('onSend', (request, reply, payload, done) => {
    if (apps.closing || (reply.statusCode >= 400 && !request.raw.complete)) reply.header('connection', 'close')
    done(null, payload)
  })
  await app.ready()
  return { app, handler: handler!, inFlight: 0, retired: false }
}

function retire (apps: Apps, old: Generation): void {
  apps.all.delete(old)
  old.app.close().catch((error: unknown) => { apps.current.app.log.error({ err: error }, 'vonage-jwt-guard: closing the previous guard failed') })
}

/** The next app answers new requests; the one before is closed once its requests are done. */
function replaceCurrent (apps: Apps, next: Generation): void {
  const old = apps.current
  apps.current = next
  apps.all.add(next)
  old.retired = true
  if (old.inFlight === 0) retire(apps, old)
}

/** The HTTP server, handing each request to the current app (a readiness probe: to `ready`). */
function serverFor (apps: Apps, swapped: boolean, flags: ServerFlags, ready: ReadyRoute | null): Server {
  let server: Server
  if (!swapped && ready === null) {
    server = createServer(SERVER_OPTIONS, apps.current.handler)
  } else {
    // Counting what each app is answering costs a listener per request: only when apps are swapped.
    server = createServer(SERVER_OPTIONS, (request, response) => {
      if (ready?.matches(request) === true) {
        // Answered before the app: a probe reads the app in use and the reloads' state.
        ready.answer(request, response, apps.current.app, {
          ...(apps.keysInDir === 0 ? { keys: 'no key is loaded (the keys directory holds none)' } : {}),
          reload: apps.reloadFailure ?? 'ok'
        })
        return
      }
      const serving = apps.current
      if (!swapped) {
        serving.handler(request, response)
        return
      }
      serving.inFlight++
      response.once('close', () => {
        if (--serving.inFlight === 0 && serving.retired) retire(apps, serving)
      })
      serving.handler(request, response)
    })
  }
  // Fastify's keep-alive default; a whole request (head and body) must arrive within
  // --request-timeout (Node answers 408 and closes), where Fastify's default waits for ever.
  server.keepAliveTimeout = 72_000
  server.requestTimeout = flags.requestTimeout * 1000
  server.headersTimeout = Math.min(60_000, flags.requestTimeout * 1000)
  return server
}

/** `--public-keys-dir`: a new app on every change of the keys; returns the function that stops watching. */
function reloadKeys (keysDir: NonNullable<ResolvedGuard['keysDir']>, guard: ResolvedGuard, apps: Apps, newGeneration: (options: GuardOptions) => Promise<Generation>): () => void {
  const dir = keysDir.dir
  // The set the running app was built from (read once, by resolveGuard), and the text it was read as.
  let applied: KeySet = keysDir.set
  let last = JSON.stringify(applied.keys)
  let unreadable = false
  let queue = Promise.resolve()
  const reload = async (): Promise<void> => {
    if (apps.closing) return
    const log = apps.current.app.log
    let read: KeySet
    try {
      read = readKeysDir(dir, false)
      if (unreadable) {
        log.info({ keysDir: dir }, 'vonage-jwt-guard: the keys directory can be read again')
        apps.reloadFailure = null
      }
      unreadable = false
    } catch (error) {
      // Nothing can be read (the directory was removed, or swapped and not back yet): fail
      // closed, every token is refused until it can be read again.
      if (!unreadable) log.error({ keysDir: dir, reason: (error as Error).message }, 'vonage-jwt-guard: the keys directory cannot be read: every token is refused until it can')
      unreadable = true
      apps.reloadFailure = 'the keys directory cannot be read'
      read = { keys: {}, files: {}, skipped: [] }
    }
    const text = JSON.stringify(read.keys)
    if (text === last) return
    last = text
    for (const { file, reason } of read.skipped) {
      log.error({ keysDir: dir, file: escapeTerminal(file), reason }, 'vonage-jwt-guard: a key file cannot be read: it is left out')
    }
    // A key the guard refuses is left out and named; the others apply (a removal too).
    const keys: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, read.keys)
    let next: Generation | undefined
    while (next === undefined) {
      try {
        next = await newGeneration({ ...guard.options, publicKeys: publicKeysOf({ ...read, keys }) })
      } catch (error) {
        const option = String((error as { option?: unknown }).option ?? '')
        const id = option.startsWith('publicKeys.') ? option.slice('publicKeys.'.length) : undefined
        const sources = new Map(guard.sources)
        keySetSources(read, dir, sources)
        const reason = (optionError(error, sources) as Error).message
        if (id === undefined || !Object.hasOwn(keys, id)) {
          log.error({ keysDir: dir, reason }, 'vonage-jwt-guard: the keys cannot be used: the last good set stays in use')
          apps.reloadFailure = 'the keys in the directory cannot be used: the last good set stays in use'
          return
        }
        log.error({ keysDir: dir, file: escapeTerminal(read.files[id] ?? id), reason }, 'vonage-jwt-guard: a key in the directory is refused: it is left out')
        delete keys[id]
      }
    }
    if (apps.closing) {
      void next.app.close()
      return
    }
    // A file left out (unreadable, refused) is a reload that failed in part.
    apps.reloadFailure = unreadable ? apps.reloadFailure : read.skipped.length > 0 || Object.keys(keys).length < Object.keys(read.keys).length ? 'a key file in the directory cannot be read or is refused' : null
    const used: KeySet = { ...read, keys }
    apps.keysInDir = Object.keys(keys).length
    const changes = keyChanges(applied, used)
    applied = used
    replaceCurrent(apps, next)
    const ids = Object.keys(keys).map(id => escapeTerminal(id))
    // A reload that only left out a refused file (logged above) changes nothing in use.
    const changed = changes.added.length + changes.removed.length + changes.replaced.length > 0
    next.app.log[changed ? 'info' : 'debug']({ keysDir: dir, applications: ids, ...changes }, reloadMessage(changes, ids))
  }
  const unwatch = watchKeysDir(dir, () => { queue = queue.then(reload) }, (error) => {
    apps.current.app.log.error({ keysDir: dir, reason: error.message }, `vonage-jwt-guard: watching the keys directory failed: it is read again every ${KEYS_POLL_INTERVAL / 1000} s`)
  })
  // A change made between that read and the watch sent no event: one look now (a no-op when none).
  queue = queue.then(reload)
  return unwatch
}

/**
 * SIGINT (Ctrl-C), SIGTERM, or the primary's word: no new connection is accepted, the requests
 * in flight finish (each answered with `Connection: close`, so an idle keep-alive connection
 * does not hold the exit), then the process exits 0. When they have not finished after the
 * grace period, or on a second signal, it exits 1 at once.
 */
function gracefulStop (server: Server, apps: Apps, guard: ResolvedGuard, flags: ServerFlags, unwatch: () => void, otel: Otel | null): (why: string) => void {
  return (why) => {
    if (apps.closing) process.exit(EXIT.FAILED)
    apps.closing = true
    unwatch()
    if (!cluster.isWorker) process.stderr.write(`\n${why}: closing the server (requests in flight get ${flags.gracePeriod} s to finish)\n`)
    const force = setTimeout(() => {
      process.stderr.write(`the grace period of ${flags.gracePeriod} s is over: requests still in flight are cut\n`)
      process.exit(EXIT.FAILED)
    }, flags.gracePeriod * 1000)
    force.unref()
    // A connection that turns idle after its last answer is closed too.
    setInterval(() => { server.closeIdleConnections() }, 100).unref()
    server.close(() => {
      Promise.all([...apps.all].map(g => g.app.close()))
        .then(() => guard.close())
        .then(() => otel?.shutdown())
        .then(() => process.exit(EXIT.OK), () => process.exit(EXIT.FAILED))
    })
    server.closeIdleConnections()
  }
}

/** The signals (and, in a worker, the primary's messages) that stop the server. */
function stopOnSignals (stop: (why: string) => void, apps: Pick<Apps, 'closing'>): void {
  if (cluster.isWorker) {
    // Ctrl-C reaches every process of the terminal's group: the primary relays it once.
    process.on('SIGINT', () => {})
    process.on('SIGTERM', () => { stop('SIGTERM') })
    process.on('message', (message: { vjg?: string } | null) => {
      if (message?.vjg === 'stop') stop('stop')
    })
    // The primary is gone: nobody restarts or stops this worker any more.
    process.on('disconnect', () => { if (!apps.closing) stop('disconnect') })
  } else {
    process.on('SIGINT', () => { stop('SIGINT') })
    process.on('SIGTERM', () => { stop('SIGTERM') })
  }
}

/** Listen on --host and --port, then print the banner; a port that cannot be had closes everything. */
async function listen (server: Server, apps: Apps, guard: ResolvedGuard, flags: ServerFlags, unwatch: () => void, banner: (base: string) => string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: flags.host, port: flags.port }, resolve)
    })
  } catch (error) {
    unwatch()
    await Promise.all([...apps.all].map(g => g.app.close())).catch(() => undefined)
    await guard.close()
    throw new CommandFailed(`cannot listen on ${flags.host}:${flags.port} (${(error as Error).message})`)
  }
  if (!cluster.isWorker) {
    const address = server.address() as AddressInfo
    process.stdout.write(`${banner(`http://${reachableHost(flags.host)}:${address.port}`)}\n`)
  }
}

/** This process serves: the first app, key reloads, the signals that stop it, and the listener. */
async function serve ({ build, guard, flags, banner, forwardAuth = false, rateLimit }: RunSettings): Promise<void> {
  const ready = readyRoute(flags.readyPath, { forwardAuth })
  const otel = flags.otel === true ? await startOtel() : null
  // One count of request ids for every app a reload builds: ids stay unique across reloads.
  let requests = 0
  const base = { ...await fastifyOptions(flags), genReqId: () => `req-${++requests}` }
  const state = { closing: false }
  let first: Generation
  try {
    first = await generation(build, base, state, rateLimit, guard.options)
  } catch (error) {
    await guard.close()
    throw optionError(error, guard.sources)
  }
  const keysInDir = guard.keysDir === null ? null : Object.keys(guard.keysDir.set.keys).length
  const apps: Apps = Object.assign(state, { current: first, all: new Set([first]), reloadFailure: null, keysInDir })
  const server = serverFor(apps, guard.keysDir !== null, flags, ready)
  if (otel !== null) await tracedRequests(server)
  const unwatch = guard.keysDir === null ? () => {} : reloadKeys(guard.keysDir, guard, apps, async options => await generation(build, base, apps, rateLimit, options))
  stopOnSignals(gracefulStop(server, apps, guard, flags, unwatch, otel), apps)
  await listen(server, apps, guard, flags, unwatch, banner)
}
