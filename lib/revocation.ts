/**
 * Revocation (SPEC 7): a token is revoked when its `jti` is listed (`revokeToken`), or its `sub`
 * was revoked for tokens issued before some instant (`revokeSubject`) and its `iat` is earlier.
 * A token without `iat` whose subject is revoked counts as revoked: its age cannot be shown.
 * The `isRevoked` hook is run by the stage in state.ts next to the store.
 */
import type { VonageClaims } from './options.js'
import type { StoreQuery } from './stores/store.js'

const DIGITS = /^[0-9]{1,16}$/

/** `iat` as verified: a number, or a string of digits when `allowNumericStringDates` let it through. */
function issuedAt (value: unknown): number | undefined {
  if (typeof value === 'number') return value
  if (typeof value === 'string' && DIGITS.test(value)) return Number(value)
  return undefined
}

/** What the revocation store is asked about this token. */
export function revocationQuery (claims: Readonly<VonageClaims>): NonNullable<StoreQuery['revoked']> {
  return {
    jti: typeof claims.jti === 'string' && claims.jti.length > 0 ? claims.jti : undefined,
    sub: typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined,
    iat: issuedAt(claims.iat)
  }
}
