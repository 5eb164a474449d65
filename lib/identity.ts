/**
 * The verified identity as headers for an upstream (forward-auth's grant, the CLI's proxy): the
 * claim-to-header table and the rule that a claim travels only if a header carries it unchanged.
 * A leaf module: options.ts turns the rule into a claim check of the verify stage
 * (`identityHeaders: true`), so such a token is refused like any bad claim, before it is cached
 * or granted, and is never a grant followed by a refusal.
 */
import { GuardError } from './errors.js'

/** The headers that carry the verified identity upstream, by claim: set from the claims only. */
export const IDENTITY_HEADERS = Object.freeze({
  application_id: 'x-vonage-application-id',
  sub: 'x-vonage-sub'
} as const)

/** A header value we pass on: printable ASCII. Control characters would split or smuggle headers. */
export const HEADER_SAFE = /^[\x20-\x7e]*$/

/**
 * The identity headers for verified claims: `application_id` and `sub`, each when present.
 * @throws {GuardError} 401 `VJG_CLAIM_INVALID` when a claim cannot travel in a header unchanged
 *   (not a string, or not printable ASCII: control characters would split or smuggle headers).
 */
export function identityHeaders (claims: Readonly<Record<string, unknown>>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [claim, header] of Object.entries(IDENTITY_HEADERS)) {
    const value = claims[claim]
    if (value === undefined) continue
    if (typeof value !== 'string' || !HEADER_SAFE.test(value)) {
      throw new GuardError('VJG_CLAIM_INVALID', `The "${claim}" claim cannot be passed to the upstream: it must be printable ASCII, without control characters`, { claim })
    }
    headers[header] = value
  }
  return headers
}
