import { expect, test } from 'tstyche'
import type { VonageClaims } from '../lib/index.js'

declare module '../lib/index.js' {
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
