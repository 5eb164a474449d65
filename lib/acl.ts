/**
 * The `acl` claim (SPEC section 3): its shape is checked and its patterns compiled once per
 * token, then `decide` answers per request whether a rule grants the method on the canonical
 * path. Pure functions, so they test without a server. What is cached (compiled patterns, the
 * last acls compiled) belongs to an `AclCompiler`, one per verifier: two guards in one process
 * share nothing, and a test starts from an empty cache by making a compiler.
 */
import { Minimatch } from 'minimatch'
import type { MinimatchOptions } from 'minimatch'
import { GuardError } from './errors.js'
import { isPlainObject } from './is-plain-object.js'
import type { AclContext, AclFilter } from './types.js'

export type { AclContext, AclFilter } from './types.js'

export interface AclRule {
  /** The pattern as the token states it. */
  readonly pattern: string
  /** Upper-cased methods the rule is limited to, or `null` for every method. */
  readonly methods: ReadonlySet<string> | null
  /** The rule's non-empty `filters`, or `null` when it has none (absent or `{}`). */
  readonly filters: Readonly<Record<string, unknown>> | null
  /** Whether the pattern matches a canonical path. Shared by every rule with this pattern compiled by one compiler. */
  readonly test: (path: string) => boolean
}

export interface CompiledAcl {
  readonly rules: readonly AclRule[]
}

export interface AclDecision {
  granted: true
  /** The first pattern that granted, or `null` for a root token (no `acl` claim). */
  grantedBy: string | null
}

export interface DecideOptions {
  requireAcl?: boolean
  /** `acl` is the `defaultAcl` option, standing in for a token without an acl claim (a 403 says so). */
  fromDefault?: boolean
  aclFilter?: AclFilter
  claims?: Record<string, unknown>
  request?: unknown
}

/**
 * How every pattern is compiled: no braces, extglobs, negation or comments (a claim is data,
 * not a glob program), `*` may match a segment starting with `.`, and POSIX semantics whatever
 * the host platform.
 */
export const MINIMATCH_OPTIONS: Readonly<MinimatchOptions> = Object.freeze({
  dot: true,
  nobrace: true,
  noext: true,
  nonegate: true,
  nocomment: true,
  platform: 'linux'
})

export const MAX_PATTERNS = 128
export const MAX_PATTERN_LENGTH = 512
/** Bound of a compiler's pattern cache; the oldest entry goes first. */
export const PATTERN_CACHE_MAX = 10_000
/** How many acls a compiler remembers with the claim they came from (see `compileAclClaim`). */
export const KNOWN_ACLS_MAX = 8

/** One remembered grant of a compiled acl. */
interface Grant {
  readonly method: string
  readonly path: string
  readonly grantedBy: string
}

/** Grants remembered per compiled acl (a client reuses one token for many requests to a few paths). */
const GRANTS_KEPT = 4
/** Longer paths are decided every time rather than kept. */
const GRANT_PATH_MAX = 256

/**
 * The last few grants of a compiled acl whose decision depends on the method and path alone (no
 * rule has `filters`, so neither `aclFilter` nor the request plays a part): a repeated request
 * skips the glob matching. Kept on the compiled acl itself, under a symbol (not a claim, not
 * enumerable), so they are bounded per acl and gone with it.
 */
const GRANTS = Symbol('vonage-jwt-guard.grants')

function grantsOf (acl: CompiledAcl): Grant[] | undefined {
  return (acl as { [GRANTS]?: Grant[] })[GRANTS]
}

function claimInvalid (reason: string, cause?: unknown): GuardError {
  return new GuardError('VJG_CLAIM_INVALID', reason, cause === undefined ? {} : { cause })
}

/** Own properties only, so a polluted `Object.prototype` cannot supply `methods` or `filters`. */
function own (object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined
}

// One trailing `/` of a pattern is ignored, as one trailing `/` of a request path is dropped:
// `@vonage/jwt`'s own tests grant `/messages/*/`, which matches what `/messages/*` matches, and
// `/**/` is `/**`. The root `/` stays itself; only one slash goes (`/a//` keeps an empty segment,
// which no canonical path has).
function matchedPattern (pattern: string): string {
  return pattern.length > 1 && pattern.endsWith('/') ? pattern.slice(0, -1) : pattern
}

/** A compiled pattern: whether it matches a canonical path. */
type PatternTest = (path: string) => boolean

function compilePattern (pattern: string): PatternTest {
  const full = new Minimatch(pattern, MINIMATCH_OPTIONS)
  // A trailing `/**` also matches the path without it (`/*/users/**` grants `/v1/users`), which
  // minimatch does not do by itself. `/**` alone already matches `/`.
  let prefix = pattern
  while (prefix.endsWith('/**')) prefix = prefix.slice(0, -3)
  const bare = prefix !== pattern && prefix !== '' ? new Minimatch(prefix, MINIMATCH_OPTIONS) : null
  return bare === null
    ? (path: string): boolean => full.match(path)
    : (path: string): boolean => full.match(path) || bare.match(path)
}

/** Why a pattern is refused, or `undefined` when it is acceptable. */
function patternProblem (pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return 'does not start with "/"'
  if (pattern.length > MAX_PATTERN_LENGTH) return `is longer than ${MAX_PATTERN_LENGTH} characters`
  // `\` is minimatch's escape, `%` could only match a path that was never decoded, and `..`
  // would reach outside the prefix the pattern appears to grant.
  if (pattern.includes('\\')) return 'holds "\\"'
  if (pattern.includes('%')) return 'holds "%"'
  if (pattern.split('/').includes('..')) return 'has a ".." segment'
  return undefined
}

function compileMethods (value: unknown, index: number): ReadonlySet<string> | null {
  if (value === undefined) return null
  if (!Array.isArray(value)) throw claimInvalid(`acl.paths rule ${index}: methods must be an array of strings`)
  const methods = new Set<string>()
  for (const method of value as unknown[]) {
    if (typeof method !== 'string' || method === '') {
      throw claimInvalid(`acl.paths rule ${index}: methods must be an array of non-empty strings`)
    }
    methods.add(method.toUpperCase())
  }
  // An empty list names no method, so the rule grants nothing (fail closed).
  return methods
}

function compileFilters (value: unknown, index: number): Readonly<Record<string, unknown>> | null {
  if (value === undefined) return null
  if (!isPlainObject(value)) throw claimInvalid(`acl.paths rule ${index}: filters must be an object`)
  return Object.keys(value).length === 0 ? null : value
}

function compileRules (acl: unknown, testFor: (pattern: string) => PatternTest): CompiledAcl {
  if (!isPlainObject(acl)) throw claimInvalid('acl must be an object')
  const paths = own(acl, 'paths')
  if (!isPlainObject(paths)) throw claimInvalid('acl.paths must be an object')
  // Object.entries lists own keys only; a `__proto__` key from JSON.parse is one of them and is
  // refused below like any pattern that does not start with `/`.
  const entries = Object.entries(paths)
  if (entries.length > MAX_PATTERNS) throw claimInvalid(`acl.paths has more than ${MAX_PATTERNS} patterns`)
  const rules: AclRule[] = []
  for (let index = 0; index < entries.length; index++) {
    const [pattern, rule] = entries[index] as [string, unknown]
    const problem = patternProblem(pattern)
    if (problem !== undefined) throw claimInvalid(`acl.paths pattern ${index} ${problem}`)
    if (!isPlainObject(rule)) throw claimInvalid(`acl.paths rule ${index} must be an object`)
    const methods = compileMethods(own(rule, 'methods'), index)
    const filters = compileFilters(own(rule, 'filters'), index)
    let test: PatternTest
    try {
      // Keyed by the pattern as matched, so `/a/*` and `/a/*/` share one compiled test.
      test = testFor(matchedPattern(pattern))
    } catch (error) {
      throw claimInvalid(`acl.paths pattern ${index} cannot be compiled`, error)
    }
    rules.push(Object.freeze({ pattern, methods, filters, test }))
  }
  const compiled: CompiledAcl = { rules: Object.freeze(rules) }
  if (rules.every(rule => rule.filters === null)) Object.defineProperty(compiled, GRANTS, { value: [] })
  return Object.freeze(compiled)
}

/**
 * Checks the shape of an `acl` claim and compiles its patterns (each once per call; a verifier
 * keeps its compiled patterns in its own `AclCompiler`).
 *
 * @throws {GuardError} `VJG_CLAIM_INVALID` (401) for any shape other than
 * `{ paths: { "<pattern>": { methods?: string[], filters?: object } } }`, a bad pattern or more
 * than 128 patterns. Reasons name the rule by its position, never its text.
 */
export function compileAcl (acl: unknown): CompiledAcl {
  return compileRules(acl, compilePattern)
}

/**
 * Whether two values out of JSON.parse are the same JSON: same keys in the same order, same
 * strings, numbers, booleans and nulls. Claims are frozen, so a value compared once stays so.
 */
function sameJson (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  // for-of with a counter: entries() would make an array per key, on every verified token.
  let i = 0
  for (const key of keysA) {
    if (key !== keysB[i++] || !sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false
  }
  return true
}

/** An acl claim as a token carried it, and what it compiled to. */
interface KnownAcl {
  readonly claim: unknown
  readonly compiled: CompiledAcl
}

/** A verifier's acl compilation, with the caches it owns. */
export interface AclCompiler {
  /** `compileAcl`, each pattern compiled once per compiler (a bounded cache, the oldest going first). */
  compileAcl (acl: unknown): CompiledAcl
  /**
   * `compileAcl` for an `acl` claim that came out of `JSON.parse` and was frozen, as verify() has
   * it: the tokens of one application carry the same acl, so the last few compiled acls are kept
   * with the claim they came from, and a token whose acl is the same JSON shares the compiled acl
   * (rules and remembered grants). Only filter-free acls are kept: their compiled form holds
   * nothing of the claim but strings, so equal JSON compiles to an equal acl. A value not from
   * JSON.parse (a class instance, a getter) must go through `compileAcl`.
   *
   * @throws {GuardError} `VJG_CLAIM_INVALID`, as `compileAcl`.
   */
  compileAclClaim (acl: unknown): CompiledAcl
  /** Patterns in the cache. */
  readonly patternCount: number
}

export function createAclCompiler (): AclCompiler {
  /** Tokens repeat the same few patterns: compile each once, not once per token. */
  const patterns = new Map<string, PatternTest>()
  /** The acls compiled most recently, the latest first. */
  const known: KnownAcl[] = []

  function testFor (pattern: string): PatternTest {
    const cached = patterns.get(pattern)
    if (cached !== undefined) return cached
    const test = compilePattern(pattern)
    if (patterns.size >= PATTERN_CACHE_MAX) {
      const oldest = patterns.keys().next()
      if (oldest.done !== true) patterns.delete(oldest.value)
    }
    patterns.set(pattern, test)
    return test
  }

  const compile = (acl: unknown): CompiledAcl => compileRules(acl, testFor)

  function compileAclClaim (acl: unknown): CompiledAcl {
    let i = 0
    for (const entry of known) {
      if (sameJson(acl, entry.claim)) {
        if (i > 0) {
          known.splice(i, 1)
          known.unshift(entry)
        }
        return entry.compiled
      }
      i++
    }
    const compiled = compile(acl)
    if (grantsOf(compiled) !== undefined && Object.isFrozen(acl)) {
      if (known.length >= KNOWN_ACLS_MAX) known.pop()
      known.unshift({ claim: acl, compiled })
    }
    return compiled
  }

  return Object.freeze({
    compileAcl: compile,
    compileAclClaim,
    get patternCount () {
      return patterns.size
    }
  })
}

function remember (grants: Grant[], method: string, path: string, grantedBy: string): void {
  if (path.length > GRANT_PATH_MAX) return
  // A copy: `path` may be a slice of the request target, and a kept slice would keep the whole
  // target (its query too) alive for as long as the acl lives. structuredClone makes a flat
  // string of its own, which is also what the comparison above is fastest with (measured: a
  // remembered grant kept as a slice made each decision about 40 ns slower).
  const grant = { method, path: structuredClone(path), grantedBy }
  if (grants.length >= GRANTS_KEPT) grants.pop()
  grants.unshift(grant)
}

const SHOWN_PATH_MAX = 200

/** The path as a 403 names it: bounded, and never cut inside a surrogate pair. */
function shownPath (path: string | null): string {
  if (path === null) return '(a path outside the acl path space)'
  if (path.length <= SHOWN_PATH_MAX) return path
  let cut = SHOWN_PATH_MAX
  const last = path.charCodeAt(cut - 1)
  if (last >= 0xd800 && last <= 0xdbff) cut--
  return `${path.slice(0, cut)}...`
}

function denied (method: string, path: string | null, why = 'is not granted by the token acl'): GuardError {
  return new GuardError('VJG_ACL_DENIED', `${method} ${shownPath(path)} ${why}`)
}

/**
 * Whether the token grants `method` on the canonical `path`. `acl === null` is a root token (no
 * `acl` claim): granted everywhere unless `requireAcl`. `path === null` is a path that could not be
 * mapped into the acl path space: no rule grants it.
 *
 * An `aclFilter` that throws is not caught: the caller maps it to 503.
 *
 * @throws {GuardError} `VJG_ACL_DENIED` (403), naming the method and path, never the token.
 */
export function decide (acl: CompiledAcl | null, method: string, path: string | null, options: DecideOptions = {}): AclDecision {
  const upper = method.toUpperCase()
  if (acl === null) {
    if (options.requireAcl === true) throw denied(upper, path, 'is not granted: the token has no acl claim and one is required')
    return { granted: true, grantedBy: null }
  }
  if (path !== null) {
    const grants = grantsOf(acl)
    if (grants !== undefined) {
      for (const grant of grants) {
        if (grant.path === path && grant.method === upper) return { granted: true, grantedBy: grant.grantedBy }
      }
    }
    for (const rule of acl.rules) {
      // HEAD is a GET without the body: a rule that grants GET grants HEAD.
      if (rule.methods !== null && !rule.methods.has(upper) && !(upper === 'HEAD' && rule.methods.has('GET'))) continue
      if (!rule.test(path)) continue
      if (rule.filters !== null) {
        if (options.aclFilter === undefined) continue
        const context: AclContext = { method: upper, path, claims: options.claims, request: options.request }
        // Exactly true: a filter written in JavaScript may answer anything.
        const verdict: unknown = options.aclFilter(rule.filters, context)
        if (verdict !== true) continue
      }
      if (grants !== undefined) remember(grants, upper, path, rule.pattern)
      return { granted: true, grantedBy: rule.pattern }
    }
  }
  throw denied(upper, path, options.fromDefault === true ? 'is not granted by defaultAcl (the token has no acl claim)' : undefined)
}
