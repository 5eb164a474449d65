import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express'
import { describe, expect, test } from 'tstyche'
import { expressVonageJwt, GuardError, isGuardError, type AuthResult, type ErrorCode, type ExpressGuardOptions, type VonageClaims } from 'vonage-jwt-guard/express'

describe('the Express middleware', () => {
  test('Express.Request.auth is AuthResult, null (optional, no token) or undefined (no guard ran)', () => {
    expect<Request['auth']>().type.toBe<AuthResult | null | undefined>()
    expect<Express.Request['auth']>().type.toBe<AuthResult | null | undefined>()
  })

  test('req.auth carries the claims as VonageClaims', () => {
    const handler = (req: Request): void => {
      if (req.auth) {
        expect(req.auth.claims).type.toBe<Readonly<VonageClaims>>()
        expect(req.auth.grantedBy).type.toBe<string | null>()
        expect(req.auth.expiresAt).type.toBe<number>()
      }
    }
    expect(handler).type.not.toRaiseError()
  })

  test('expressVonageJwt returns a RequestHandler that app.use and a route take', () => {
    const guard = expressVonageJwt({ publicKey: 'pem' })
    expect(guard).type.toBe<RequestHandler>()
    const app = express()
    expect(app.use(guard)).type.not.toRaiseError()
    expect(app.get('/v1/users/:id', guard, (req, res) => { res.json(req.auth) })).type.not.toRaiseError()
  })

  test('the options are the core options plus optional and acl', () => {
    expect(expressVonageJwt({ publicKey: 'pem', optional: true, acl: false, aclPath: '/api', clockTolerance: 30 })).type.not.toRaiseError()
    expect(expressVonageJwt({ publicKey: 'pem', optional: 'yes' })).type.toRaiseError()
    expect(expressVonageJwt({ publicKey: 'pem', lifetimePolicy: 'sometimes' })).type.toRaiseError()
    expect(expressVonageJwt({ publicKey: 'pem', optinal: true })).type.toRaiseError()
    expect<ExpressGuardOptions['optional']>().type.toBe<boolean | undefined>()
  })

  test('hooks receive the Express request', () => {
    expect(expressVonageJwt({
      publicKey: 'pem',
      aclPath: (req, path) => {
        expect(req).type.toBe<Request>()
        return path
      },
      getToken: (req) => {
        expect(req).type.toBe<Request>()
        return req.get('x-token')
      }
    })).type.not.toRaiseError()
  })

  test('isGuardError narrows an error handler argument', () => {
    const handler = (err: unknown, _req: Request, res: Response, next: NextFunction): void => {
      if (!isGuardError(err)) return next(err)
      expect(err).type.toBe<GuardError>()
      expect(err.code).type.toBe<ErrorCode>()
      expect(err.headers).type.toBe<Record<string, string>>()
      res.status(err.status).set(err.headers).json({ code: err.code })
    }
    expect(express().use(handler)).type.not.toRaiseError()
  })
})
