/**
 * The Express middleware (Express 4 and 5): a thin adapter over the shared pipeline in guard.ts.
 * The guard is built once, when the middleware is created, so a bad option throws there. Per
 * request: `req.auth` and `next()`, or `next(err)` with the coded `GuardError`, whose `status`
 * and `headers` Express' default error handler already honours.
 */
import { randomUUID } from 'node:crypto'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { errorBody, GuardError, invalidOption, problemBody } from './errors.js'
import { createGuard, type RouteGuard } from './guard.js'
import { addReadinessCheck, readiness, readinessAnswer } from './readiness.js'
import type { AuthResult, GuardOptions, GuardRequest, RequestLog } from './types.js'
import { declaresBody, payloadHash, signsQuery, tapBody } from './webhook.js'

// What an Express error handler needs, without importing the Fastify entry point.
export { GuardError, isGuardError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { AuthResult, VonageClaims } from './types.js'
export type { ReadinessReport } from './readiness.js'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * Set by vonage-jwt-guard: the verified token and the ACL decision, or null when the
       * middleware is `optional` and no token came. Undefined where no guard ran.
       */
      auth?: AuthResult | null
    }
  }
}

export interface ExpressGuardOptions extends GuardOptions<Request> {
  /** No token is fine (`req.auth` is null); a bad token is still refused. @default false */
  optional?: boolean
  /** `false`: authenticate only, skip the ACL (`grantedBy` is null). @default true */
  acl?: boolean
}

export function expressVonageJwt (options: ExpressGuardOptions): RequestHandler {
  if (typeof (options as unknown) !== 'object' || (options as unknown) === null) invalidOption('options', 'must be an object')
  const { optional, acl, ...core } = options
  const guard = createGuard<Request>(core)
  if (optional !== undefined && typeof optional !== 'boolean') invalidOption('optional', 'must be true or false')
  if (acl !== undefined && typeof acl !== 'boolean') invalidOption('acl', 'must be true or false')
  const route = guard.resolveRoute({ optional, acl }, 'options') as RouteGuard<Request>

  /**
   * In problem format, the refusal (the guard has logged and published it) answered here as the
   * RFC 7807 body, as the Fastify plugin does: true. Otherwise false, and the caller hands it on.
   */
  function sendProblem (error: GuardError, req: Request, res: Response): boolean {
    if (guard.options.errorFormat !== 'problem' || res.headersSent) return false
    const id = (req as { id?: unknown }).id
    const body = JSON.stringify(problemBody(error, typeof id === 'string' || typeof id === 'number' ? String(id) : randomUUID()))
    res.statusCode = error.statusCode
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value)
    res.setHeader('content-type', 'application/problem+json; charset=utf-8')
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
    return true
  }

  /** Answers a refusal: the problem body, or next(err) for Express' error handlers. */
  function answer (error: GuardError, req: Request, res: Response, next: NextFunction): void {
    if (!sendProblem(error, req, res)) next(error)
  }

  /**
   * Signed webhooks: compare payload_hash with the raw body. Mounted before the body parser (the
   * README's way), the body is hashed as the parser reads it and a mismatch reaches the parser as
   * a stream error, which it hands to next(err): the handler never runs. Mounted after one, only
   * the raw bytes it kept as `req.rawBody` (its `verify` option) can be checked; without them, 401.
   */
  function checkBody (auth: AuthResult, input: GuardRequest<Request>, req: Request, res: Response, next: NextFunction): void {
    let digest: string | undefined
    if (!signsQuery(req.method) && declaresBody(req)) {
      if (!req.readableEnded) {
        tapBody(req, (bodyDigest) => {
          try {
            guard.checkPayload(auth, input, bodyDigest)
            return undefined
          } catch (error) {
            return error as GuardError
          }
        }, (coded, listened) => {
          // next() was called already: the body parser takes the error to next(err). In problem
          // format, or with nobody listening (a handler reading the body by hand), the guard answers.
          const toParser = listened && guard.options.errorFormat !== 'problem'
          if (!toParser && !sendProblem(coded, req, res)) res.status(coded.statusCode).set(coded.headers).json(errorBody(coded))
          return toParser
        })
        next()
        return
      }
      const raw = (req as { rawBody?: unknown }).rawBody
      if (!Buffer.isBuffer(raw) && typeof raw !== 'string') {
        answer(guard.refuse(input, new GuardError('VJG_SIGNATURE_INVALID', 'The body was read before the guard and no req.rawBody was kept: its "payload_hash" cannot be checked'), auth), req, res, next)
        return
      }
      digest = payloadHash(raw)
    }
    try {
      guard.checkPayload(auth, input, digest)
    } catch (error) {
      answer(error as GuardError, req, res, next)
      return
    }
    next()
  }

  /** `req.auth`, then next() (or the webhook body check first). */
  function pass (auth: AuthResult | null, input: GuardRequest<Request>, req: Request, res: Response, next: NextFunction): void {
    req.auth = auth
    if (guard.options.payloadHash && auth !== null) checkBody(auth, input, req, res, next)
    else next()
  }

  const middleware = function vonageJwtGuard (req: Request, res: Response, next: NextFunction): void {
    // The raw target: after mounting, req.url and req.path are relative to the mount point. (Not
    // under Express, a plain node:http server has no originalUrl.)
    const input: GuardRequest<Request> = {
      target: (req as { originalUrl?: string }).originalUrl ?? req.url,
      method: req.method,
      raw: req,
      request: req,
      log: (req as { log?: RequestLog }).log
    }
    let auth: ReturnType<typeof guard.authenticate>
    try {
      auth = guard.authenticate(input, route)
    } catch (error) {
      answer(error as GuardError, req, res, next)
      return
    }
    if (!(auth instanceof Promise)) {
      pass(auth, input, req, res, next)
      return
    }
    auth.then((result) => { pass(result, input, req, res, next) }, (error: unknown) => { answer(error as GuardError, req, res, next) })
      .catch((error: unknown) => {
        // Express catches what a later layer throws; another router might not. Express 4 does not
        // catch rejected promises either, so nothing here may escape as an unhandled rejection.
        next(error)
      })
  }
  addReadinessCheck(middleware, guard.readiness)
  return middleware
}

/**
 * An Express handler for `/readyz`: 200 with the report when the guard of `middleware` (made by
 * `expressVonageJwt`) is ready, else 503 with it. Mount it before, or beside, the guard:
 * `app.get('/readyz', readyz(guard))`.
 */
export function readyz (middleware: RequestHandler): RequestHandler {
  return (_req, res, next) => {
    readiness(middleware).then((report) => {
      const { statusCode, body } = readinessAnswer(report)
      res.status(statusCode).set('cache-control', 'no-store').type('application/json').send(body)
    }, next)
  }
}
