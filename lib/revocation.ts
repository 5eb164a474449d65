/**
 * Revocation (SPEC 7): a token is revoked when its `jti` is listed (`revokeToken`), or its `sub`
 * was revoked for tokens issued before some instant (`revokeSubject`) and its `iat` is earlier.
 * A token without `iat` whose subject is revoked counts as revoked: its age cannot be shown.
 * The `isRevoked` hook is run by the stage in state.ts next to the store.
 */
import type { VonageClaims } from './options.js'
import type { StoreQuery } from './stores/store.js'
import { numericDateValue } from './verify.js'

/** What the revocation store is asked about this token. */
export function revocationQuery (claims: Readonly<VonageClaims>): NonNullable<StoreQuery['revoked']> {
  return {
    jti: typeof claims.jti === 'string' && claims.jti.length > 0 ? claims.jti : undefined,
    sub: typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined,
    // As the verifier read it: a number, or a decimal string allowNumericStringDates let through.
    iat: numericDateValue(claims.iat)
  }
}
