/**
 * vonage-jwt-guard: accept Vonage-style JWTs exactly as Vonage's APIs do.
 * The Fastify plugin (default and named export) and the framework-free core (docs/options.md, "The framework-free core"), with the
 * types a user names in their own code. Everything else in lib/ is internal: the package's
 * `exports` map offers no path to it, and nothing here re-exports it.
 */
import { vonageJwtGuard } from './fastify.js'

export default vonageJwtGuard
export { vonageJwtGuard }
export type { FastifyGuardOptions, JwtGuardDecorator } from './fastify.js'

export { createVerifier } from './verify.js'
export type { Verifier, VerifierRules, VerifiedToken, AuthorizeContext } from './verify.js'
export { checkOrder, effectiveExpiry, readNumericDate } from './claims.js'
export { canonicalPath, isCanonicalRoutePath } from './canonical-path.js'
export { compileAcl, explainAcl } from './acl.js'
export type { AclDecision, AclFilter, AclContext, AclRule, AclRuleVerdict, CompiledAcl } from './acl.js'
export { aclCoverage, openApiMount, openApiOperations, OPENAPI_METHODS, operationParameters, sampleParameter, servedPath } from './openapi-coverage.js'
export type { AclCoverage, AclCoverageOptions, OpenApiMountOptions, OpenApiOperation } from './openapi-coverage.js'
export { DECISION_CHANNEL } from './guard.js'
export { readiness, readyz } from './readiness.js'
export type { ReadinessReport } from './readiness.js'
export type { CacheOutcome, GuardDecision, RequestLog, StateCheck } from './types.js'
export { errors, GuardError, isGuardError } from './errors.js'
export type { ErrorCode, GuardCheck, ProblemBody } from './errors.js'
export type { AuthResult, RouteGuardOption } from './guard.js'
export type { GuardOptions, TokenSource, VonageClaims } from './options.js'
export type { PublicKeyInput, JsonWebKeyInput } from './keys.js'
export type { ProfileName } from './profiles.js'
export { createMemoryStore } from './stores/memory.js'
export type { MemoryStore, MemoryStoreOptions } from './stores/memory.js'
export type { GuardStore, StoreQuery, StoreAnswer } from './stores/store.js'
export type { RevocationHook } from './types.js'
