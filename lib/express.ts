/**
 * The Express middleware (Express 4 and 5): a thin adapter over the shared pipeline in guard.ts.
 * The guard is built once, when the middleware is created, so a bad option throws there. Per
 * request: `req.auth` and `next()`, or `next(err)` with the coded `GuardError`, whose `status`
 * and `headers` Express' default error handler already honours.
 */
import { randomUUID } from 'node:crypto'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { invalidOption, problemBody, type GuardError } from './errors.js'
import { createGuard, type AuthResult, type RouteGuard } from './guard.js'
import type { GuardOptions } from './options.js'

// What an Express error handler needs, without importing the Fastify entry point.
export { GuardError, isGuardError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { AuthResult } from './guard.js'
export type { VonageClaims } from './options.js'

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

/** Loggers that hang off the request (pino-http's `req.log`): rejections go there at info. */
interface RequestLogger {
  info (object: Record<string, unknown>, message: string): void
}

export function expressVonageJwt (options: ExpressGuardOptions): RequestHandler {
  if (typeof options !== 'object' || options === null) invalidOption('options', 'must be an object')
  const { optional, acl, ...core } = options
  const guard = createGuard(core)
  if (optional !== undefined && typeof optional !== 'boolean') invalidOption('optional', 'must be true or false')
  if (acl !== undefined && typeof acl !== 'boolean') invalidOption('acl', 'must be true or false')
  const route = guard.resolveRoute({ optional, acl }, 'options') as RouteGuard

  /** Problem format: the middleware answers itself, as the Fastify plugin does; otherwise next(err). */
  function reject (error: GuardError, req: Request, res: Response, next: NextFunction): void {
    const log = (req as { log?: Partial<RequestLogger> }).log
    if (typeof log?.info === 'function') log.info({ code: error.code, statusCode: error.statusCode }, `vonage-jwt-guard: ${error.message}`)
    if (guard.options.errorFormat !== 'problem' || res.headersSent) {
      next(error)
      return
    }
    const id = (req as { id?: unknown }).id
    const body = JSON.stringify(problemBody(error, id === undefined ? randomUUID() : String(id)))
    res.statusCode = error.statusCode
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value)
    res.setHeader('content-type', 'application/problem+json; charset=utf-8')
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
  }

  return function vonageJwtGuard (req: Request, res: Response, next: NextFunction): void {
    guard.authenticate({
      // The raw target: after mounting, req.url and req.path are relative to the mount point.
      target: req.originalUrl ?? req.url,
      method: req.method,
      raw: req,
      request: req
    }, route).then((auth) => {
      req.auth = auth
      next()
    }, (error: GuardError) => {
      reject(error, req, res, next)
    }).catch((error: unknown) => {
      // Express catches what a later layer throws; another router might not. Express 4 does not
      // catch rejected promises either, so nothing here may escape as an unhandled rejection.
      next(error)
    })
  }
}
