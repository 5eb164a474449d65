import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import forwardAuthDefault, { CODE_HEADER, forwardAuth, IDENTITY_HEADERS, identityHeaders, type ForwardAuthOptions } from 'vonage-jwt-guard/forward-auth'

describe('vonage-jwt-guard/forward-auth', () => {
  test('default and named export are the same plugin', () => {
    expect(forwardAuthDefault).type.toBe<typeof forwardAuth>()
  })

  test('register takes the guard options, envoyPathPrefix and healthPath, and refuses unknown ones', () => {
    const app = Fastify()
    expect(app.register(forwardAuth, { publicKey: 'pem', envoyPathPrefix: '/envoy', healthPath: '/healthz', errorFormat: 'problem' })).type.not.toRaiseError()
    expect(app.register(forwardAuth, { prefix: '/auth', publicKey: 'pem' })).type.not.toRaiseError()
    expect(app.register(forwardAuth, { publicKey: 'pem', envoyPathPrefix: true })).type.toRaiseError()
    expect(app.register(forwardAuth, { publicKey: 'pem', envoyPrefix: '/envoy' })).type.toRaiseError()
  })

  test('the options extend the guard options with the Fastify request', () => {
    expect<ForwardAuthOptions['envoyPathPrefix']>().type.toBe<string | undefined>()
    expect<Parameters<NonNullable<ForwardAuthOptions['getToken']>>[0]['raw']['url']>().type.toBe<string | undefined>()
  })

  test('identityHeaders and the header names', () => {
    expect(identityHeaders({ application_id: 'app', sub: 'alice' })).type.toBe<Record<string, string>>()
    expect(IDENTITY_HEADERS.sub).type.toBe<'x-vonage-sub'>()
    expect(CODE_HEADER).type.toBe<'x-vonage-guard-code'>()
  })
})
