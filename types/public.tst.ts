import { expect, test } from 'tstyche'
import type { AclRule, GuardError, Verifier, VerifierRules } from 'vonage-jwt-guard'

test('a verifier exposes the rules it checks by, not its keys, stores or hooks', () => {
  expect<Verifier>().type.toHaveProperty('rules')
  expect<Verifier>().type.not.toHaveProperty('options')
  expect<VerifierRules>().type.not.toHaveProperty('keys')
  expect<VerifierRules>().type.not.toHaveProperty('state')
  expect<VerifierRules>().type.not.toHaveProperty('aclFilter')
})

test('a compiled rule shows its pattern, methods and filters, not its matcher', () => {
  expect<AclRule>().type.toHaveProperty('pattern')
  expect<AclRule>().type.not.toHaveProperty('test')
})

test('a refusal carries its check and claim as data', () => {
  expect<GuardError['check']>().type.toBe<'request' | 'path' | 'token' | 'format' | 'header' | 'key' | 'signature' | 'required' | 'claim' | 'application' | 'lifetime' | 'replay' | 'revocation' | 'acl' | 'body' | 'dependency'>()
  expect<GuardError['claim']>().type.toBe<string | undefined>()
})
