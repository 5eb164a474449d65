/**
 * Revocation (docs/several-instances.md, "Revocation"): a token is revoked when its `jti` is listed (`revokeToken`), or its `sub`
 * was revoked for tokens issued before some instant (`revokeSubject`) and its `iat` is earlier.
 * A token without `iat` whose subject is revoked counts as revoked: its age cannot be shown.
 * The `isRevoked` hook is run by the stage in state.ts next to the store.
 */
import type { StoreQuery } from './stores/store.js'
import type { VerifiedToken } from './types.js'

/** What the revocation store is asked about this token. */
export function revocationQuery (token: VerifiedToken): NonNullable<StoreQuery['revoked']> {
  const { jti, sub, iat } = token.claims
  return {
    jti: typeof jti === 'string' && jti.length > 0 ? jti : undefined,
    sub: typeof sub === 'string' && sub.length > 0 ? sub : undefined,
    // The iat the verifier read: it hands every NumericDate out as the number it read (a decimal
    // string under allowNumericStringDates included), so there is nothing to parse again here.
    iat: typeof iat === 'number' ? iat : undefined
  }
}
