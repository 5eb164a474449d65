/**
 * vonage-jwt-guard: accept Vonage-style JWTs exactly as Vonage's APIs do.
 * The Fastify plugin (default and named export) and the framework-free core.
 */
import { vonageJwtGuard } from './fastify.js'

export default vonageJwtGuard
export { vonageJwtGuard }
export type { FastifyGuardOptions, JwtGuardDecorator } from './fastify.js'

export { createVerifier, verifySignature } from './verify.js'
export type { Verifier, VerifiedToken, AuthorizeContext } from './verify.js'
export { canonicalPath } from './canonical-path.js'
export { compileAcl, decide, MINIMATCH_OPTIONS } from './acl.js'
export type { AclDecision, AclFilter, AclContext, AclRule, CompiledAcl } from './acl.js'
export { createGuard, DECISION_CHANNEL } from './guard.js'
export type { Guard, RouteGuard, RouteGuardOption } from './guard.js'
export type { AuthResult, CacheOutcome, GuardDecision, GuardRequest, RequestLog, StateCheck } from './types.js'
export { errors, GuardError, InvalidOptionError, isGuardError, challenge, problemBody, DEFAULT_REALM } from './errors.js'
export type { ErrorCode, ProblemBody } from './errors.js'
export { normalizeOptions } from './options.js'
export type { GuardOptions, NormalizedOptions, TokenSource, VonageClaims } from './options.js'
export type { PublicKeyInput, JsonWebKeyInput } from './keys.js'
export { PROFILES } from './profiles.js'
export type { ProfileName } from './profiles.js'
export { createMemoryStore, StoreFullError } from './stores/memory.js'
export type { MemoryStore, MemoryStoreOptions } from './stores/memory.js'
export type { GuardStore, StoreQuery, StoreAnswer } from './stores/store.js'
export type { RevocationHook } from './types.js'
