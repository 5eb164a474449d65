import { expect, test } from 'tstyche'
import type { VonageClaims } from 'vonage-jwt-guard'

declare module 'vonage-jwt-guard' {
  interface VonageClaims {
    tenant?: string
  }
}

test('VonageClaims carries the Vonage claims', () => {
  expect<VonageClaims['application_id']>().type.toBe<string | undefined>()
  expect<VonageClaims['iat']>().type.toBe<number | undefined>()
})

test('users extend VonageClaims with their own claims', () => {
  expect<VonageClaims['tenant']>().type.toBe<string | undefined>()
})
