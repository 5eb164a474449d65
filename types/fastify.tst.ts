import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import vonageJwtGuard, {
  createVerifier,
  canonicalPath,
  type AuthResult,
  type VerifiedToken,
  type AclDecision,
  type GuardOptions,
  type ErrorCode,
  vonageJwtGuard as named
} from 'vonage-jwt-guard'

describe('the Fastify plugin', () => {
  test('default and named export are the same plugin', () => {
    expect(named).type.toBe<typeof vonageJwtGuard>()
  })

  test('register takes the options and refuses unknown ones', () => {
    const app = Fastify()
    expect(app.register(vonageJwtGuard, { publicKey: 'pem', clockTolerance: 30, lifetimePolicy: 'cap' })).type.not.toRaiseError()
    expect(app.register(vonageJwtGuard, { publicKey: 'pem', lifetimePolicy: 'sometimes' })).type.toRaiseError()
    expect(app.register(vonageJwtGuard, { publicKey: 'pem', clockTolerence: 30 })).type.toRaiseError()
  })

  test('request.auth is AuthResult or null', () => {
    expect<FastifyRequest['auth']>().type.toBe<AuthResult | null>()
  })

  test('route config.jwtGuard is typed', () => {
    const app = Fastify()
    expect(app.get('/a', { config: { jwtGuard: false } }, async () => 'x')).type.not.toRaiseError()
    expect(app.get('/a', { config: { jwtGuard: { optional: true, acl: false, aclPath: '/api' } } }, async () => 'x')).type.not.toRaiseError()
    expect(app.get('/a', { config: { jwtGuard: { optional: 'yes' } } }, async () => 'x')).type.toRaiseError()
  })

  test('fastify.jwtGuard decorator', () => {
    const app = Fastify()
    expect(app.jwtGuard.verify('t')).type.toBe<Promise<VerifiedToken>>()
  })
})

describe('the core', () => {
  test('createVerifier', () => {
    const verifier = createVerifier({ publicKey: 'pem' })
    expect(verifier.verify('t')).type.toBe<Promise<VerifiedToken>>()
    expect(verifier.authorize).type.toBeCallableWith({} as VerifiedToken, 'GET', '/v1/users')
    expect<ReturnType<typeof verifier.authorize>>().type.toBe<AclDecision>()
  })

  test('canonicalPath is string to string', () => {
    expect(canonicalPath('/a')).type.toBe<string>()
  })

  test('error codes are a closed union', () => {
    expect<'VJG_ACL_DENIED'>().type.toBeAssignableTo<ErrorCode>()
    expect<'VJG_NOPE'>().type.not.toBeAssignableTo<ErrorCode>()
  })

  test('options reject wrong types', () => {
    expect<{ publicKey: string, cache: false }>().type.toBeAssignableTo<GuardOptions>()
    expect<{ publicKey: string, cache: true }>().type.not.toBeAssignableTo<GuardOptions>()
  })

  test('defaultAcl has the acl claim shape (or null), minLifetime is seconds', () => {
    expect<{ publicKey: string, defaultAcl: { paths: { '/session/**': { methods: ['GET'] } } }, minLifetime: 30 }>().type.toBeAssignableTo<GuardOptions>()
    expect<{ publicKey: string, defaultAcl: null }>().type.toBeAssignableTo<GuardOptions>()
    expect<{ publicKey: string, defaultAcl: { paths: string[] } }>().type.not.toBeAssignableTo<GuardOptions>()
    expect<{ publicKey: string, minLifetime: '30' }>().type.not.toBeAssignableTo<GuardOptions>()
    expect<'VJG_LIFETIME_TOO_SHORT'>().type.toBeAssignableTo<ErrorCode>()
  })
})
