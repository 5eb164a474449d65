/**
 * Replay protection (docs/several-instances.md, "Replay protection"): a `jti` is accepted once, and remembered until the token can no
 * longer be accepted anyway: its effective expiry plus the clock tolerance. Off by default,
 * because Vonage's Client SDKs send one token with many requests.
 */
import { GuardError } from './errors.js'
import type { StoreQuery } from './stores/store.js'
import type { VerifiedToken } from './types.js'

/** What the store records for this token; a token without a `jti` cannot be protected: 401 `VJG_CLAIM_MISSING`. */
export function consumeQuery (token: VerifiedToken, clockTolerance: number): NonNullable<StoreQuery['consume']> {
  const { jti, application_id: applicationId } = token.claims
  if (typeof jti !== 'string' || jti.length === 0) {
    throw new GuardError('VJG_CLAIM_MISSING', 'The token has no "jti" claim, which replay protection needs', { claim: 'jti' })
  }
  return {
    // jti values are unique per issuing application; scoping keeps one application from burning another's.
    scope: typeof applicationId === 'string' ? applicationId : '',
    jti,
    until: (token.expiresAt + clockTolerance) * 1000
  }
}
