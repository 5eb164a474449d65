/**
 * The `acl` claim (docs/acl.md, "The ACL and the canonical path"): its shape is checked once per token, then `decide` answers
 * per request whether a rule grants the method on the canonical path. Pure functions, so they
 * test without a server. What is cached (compiled patterns, the last acls compiled) belongs to
 * an `AclCompiler`, one per verifier: two guards in one process share nothing, and a test starts
 * from an empty cache by making a compiler.
 */
import { GuardError } from './errors.js'
import { compilePattern, type PatternTest } from './glob.js'
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
}

/** A rule as this module compiles it: with its match, which only this module's decisions call. */
export interface MatchRule extends AclRule {
  /** Whether the pattern matches a canonical path. Shared by every rule with this pattern compiled by one compiler. */
  readonly test: (path: string) => boolean
}

/** The rules of an acl this module compiled (every CompiledAcl is one: nothing else makes them). */
function matchRules (acl: CompiledAcl): readonly MatchRule[] {
  return acl.rules as readonly MatchRule[]
}

export interface CompiledAcl {
  readonly rules: readonly AclRule[]
}

export interface AclDecision {
  granted: true
  /** The first pattern that granted, or `null` for a root token (no `acl` claim). */
  grantedBy: string | null
}

interface DecideOptions {
  requireAcl?: boolean
  /** `acl` is the `defaultAcl` option, standing in for a token without an acl claim (a 403 says so). */
  fromDefault?: boolean
  aclFilter?: AclFilter
  claims?: Record<string, unknown>
  request?: unknown
}

export const MAX_PATTERNS = 128
const MAX_PATTERN_LENGTH = 512
/** Bound of a compiler's pattern cache; the oldest entry goes first. */
export const PATTERN_CACHE_MAX = 10_000
/** How many acls a compiler remembers with the claim they came from (see `compileAclClaim`). */
const KNOWN_ACLS_MAX = 8

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
 * A compiled acl. It keeps the last few grants of its own when its decision depends on the
 * method and path alone (no rule has `filters`, so neither `aclFilter` nor the request plays a
 * part): a repeated request skips the glob matching. In a private field, so they are bounded per
 * acl, gone with it, and invisible to its users.
 */
class Compiled implements CompiledAcl {
  readonly rules: readonly MatchRule[]
  readonly #grants: Grant[] | undefined

  constructor (rules: MatchRule[]) {
    this.rules = Object.freeze(rules)
    this.#grants = rules.every(rule => rule.filters === null) ? [] : undefined
    Object.freeze(this)
  }

  static grantsOf (acl: CompiledAcl): Grant[] | undefined {
    return #grants in acl ? acl.#grants : undefined
  }
}

function grantsOf (acl: CompiledAcl): Grant[] | undefined {
  return Compiled.grantsOf(acl)
}

/**
 * Compiled patterns by the pattern as matched, bounded: the oldest goes first. The order is kept
 * in a ring of the keys rather than read from the Map: the first key of a Map that has seen many
 * deletions is found by walking over their holes, which was slow once tokens with patterns of
 * their own kept the cache turning over (docs/benchmark.md, "Measured choices in the code").
 */
class PatternCache {
  readonly #tests = new Map<string, PatternTest>()
  readonly #order: string[] = []
  #oldest = 0

  get size (): number {
    return this.#tests.size
  }

  testFor (pattern: string): PatternTest {
    const cached = this.#tests.get(pattern)
    if (cached !== undefined) return cached
    const test = compilePattern(pattern)
    if (this.#order.length < PATTERN_CACHE_MAX) {
      this.#order.push(pattern)
    } else {
      this.#tests.delete(this.#order[this.#oldest] as string)
      this.#order[this.#oldest] = pattern
      this.#oldest = (this.#oldest + 1) % PATTERN_CACHE_MAX
    }
    this.#tests.set(pattern, test)
    return test
  }
}

/**
 * A rule of a token the verifier verified: it keeps its pattern, not a compiled test. The test is
 * looked up (compiled, the first time) in the verifier's bounded pattern cache when a decision
 * needs it, so a token whose ACL is its own holds strings only, and memory stays bounded by the
 * cache whatever the tokens' patterns (bench/memory.js: unique ACLs).
 */
class LazyRule implements MatchRule {
  readonly pattern: string
  readonly methods: ReadonlySet<string> | null
  readonly filters: Readonly<Record<string, unknown>> | null
  readonly #matched: string
  readonly #patterns: PatternCache

  constructor (pattern: string, matched: string, methods: ReadonlySet<string> | null, filters: Readonly<Record<string, unknown>> | null, patterns: PatternCache) {
    this.pattern = pattern
    this.methods = methods
    this.filters = filters
    this.#matched = matched
    this.#patterns = patterns
    Object.freeze(this)
  }

  get test (): PatternTest {
    try {
      return this.#patterns.testFor(this.#matched)
    } catch (error) {
      throw claimInvalid('an acl.paths pattern cannot be compiled', error)
    }
  }
}

/** How a compiler turns one checked rule into a MatchRule. */
type RuleMaker = (pattern: string, matched: string, methods: ReadonlySet<string> | null, filters: Readonly<Record<string, unknown>> | null, index: number) => MatchRule

/** A rule with its test compiled now (`compileAcl`): through `testFor`, so a compiler shares it by pattern. */
function eagerRules (testFor: (pattern: string) => PatternTest): RuleMaker {
  return (pattern, matched, methods, filters, index) => {
    let test: PatternTest
    try {
      test = testFor(matched)
    } catch (error) {
      throw claimInvalid(`acl.paths pattern ${index} cannot be compiled`, error)
    }
    return Object.freeze({ pattern, methods, filters, test })
  }
}

function claimInvalid (reason: string, cause?: unknown): GuardError {
  return new GuardError('VJG_CLAIM_INVALID', reason, cause === undefined ? { claim: 'acl' } : { claim: 'acl', cause })
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

/** Why a pattern is refused, or `undefined` when it is acceptable. */
function patternProblem (pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return 'does not start with "/"'
  if (pattern.length > MAX_PATTERN_LENGTH) return `is longer than ${MAX_PATTERN_LENGTH} characters`
  // `\` is minimatch's escape, `%` could only match a path that was never decoded, and `..`
  // would reach outside the prefix the pattern appears to grant.
  if (pattern.includes('\\')) return 'holds "\\"'
  if (pattern.includes('%')) return 'holds "%"'
  // A '..' segment: after a '/', before a '/' or the end (the pattern starts with '/'); without a split per pattern.
  if (pattern.includes('/../') || pattern.endsWith('/..')) return 'has a ".." segment'
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

function compileRules (acl: unknown, makeRule: RuleMaker): CompiledAcl {
  if (!isPlainObject(acl)) throw claimInvalid('acl must be an object')
  const paths = own(acl, 'paths')
  if (!isPlainObject(paths)) throw claimInvalid('acl.paths must be an object')
  // Object.entries lists own keys only; a `__proto__` key from JSON.parse is one of them and is
  // refused below like any pattern that does not start with `/`.
  const entries = Object.entries(paths)
  if (entries.length > MAX_PATTERNS) throw claimInvalid(`acl.paths has more than ${MAX_PATTERNS} patterns`)
  const rules: MatchRule[] = []
  for (let index = 0; index < entries.length; index++) {
    const [pattern, rule] = entries[index] as [string, unknown]
    const problem = patternProblem(pattern)
    if (problem !== undefined) throw claimInvalid(`acl.paths pattern ${index} ${problem}`)
    if (!isPlainObject(rule)) throw claimInvalid(`acl.paths rule ${index} must be an object`)
    const methods = compileMethods(own(rule, 'methods'), index)
    const filters = compileFilters(own(rule, 'filters'), index)
    // Keyed by the pattern as matched, so `/a/*` and `/a/*/` share one compiled test.
    rules.push(makeRule(pattern, matchedPattern(pattern), methods, filters, index))
  }
  return new Compiled(rules)
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
  return compileRules(acl, eagerRules(compilePattern))
}

/**
 * A snapshot of a JSON value, for `sameJson`: its keys in order and its primitives, taken once
 * when an acl is remembered. A snapshot rather than the claim itself, so that no later change to
 * a claim object (claims are frozen only where a cache shares them) can make another acl look
 * like the remembered one.
 */
type Shape = string | number | boolean | null | ShapeNode
interface ShapeNode {
  /** An object's own keys, in order; null for an array. */
  readonly keys: readonly string[] | null
  readonly values: readonly Shape[]
}

/** The snapshot of a JSON value, or undefined for anything JSON.parse does not make. */
function shapeOf (value: unknown): Shape | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value
  if (typeof value !== 'object') return undefined
  const keys = Array.isArray(value) ? null : Object.keys(value)
  const values: Shape[] = []
  for (const item of keys === null ? value as unknown[] : keys.map(key => (value as Record<string, unknown>)[key])) {
    const shape = shapeOf(item)
    if (shape === undefined) return undefined
    values.push(shape)
  }
  return { keys, values }
}

/**
 * Whether a value out of JSON.parse is the JSON of a snapshot: same own keys in the same order,
 * same strings, numbers, booleans and nulls. A for-in walk against the snapshot's key lists
 * makes no array per object, which Object.keys on both sides did (docs/benchmark.md, "Measured choices in the code").
 */
function sameJson (value: unknown, shape: Shape): boolean {
  if (typeof shape !== 'object' || shape === null) return value === shape
  if (typeof value !== 'object' || value === null) return false
  const { keys, values } = shape
  if (keys === null) {
    if (!Array.isArray(value) || value.length !== values.length) return false
    for (let i = 0; i < values.length; i++) if (!sameJson(value[i], values[i] as Shape)) return false
    return true
  }
  if (Array.isArray(value)) return false
  let i = 0
  for (const key in value) {
    if (key !== keys[i] || !Object.hasOwn(value, key) || !sameJson((value as Record<string, unknown>)[key], values[i] as Shape)) return false
    i++
  }
  return i === keys.length
}

/** An acl claim as a token carried it (a snapshot), and what it compiled to. */
interface KnownAcl {
  readonly shape: Shape
  readonly compiled: CompiledAcl
}

/** A verifier's acl compilation, with the caches it owns. */
interface AclCompiler {
  /** `compileAcl`, each pattern compiled once per compiler (a bounded cache, the oldest going first). */
  compileAcl (acl: unknown): CompiledAcl
  /**
   * `compileAcl` for an `acl` claim that came out of `JSON.parse`, as verify() has it. Its rules
   * keep their patterns, compiled (into the compiler's bounded cache) when a decision first
   * needs them, so that a token holds no compiled pattern of its own. And the tokens of one
   * application carry the same acl, so the last few compiled acls are kept with a snapshot of
   * the claim they came from, and a token whose acl is the same JSON shares the compiled acl
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
  const patterns = new PatternCache()
  /** The acls compiled most recently, the latest first. */
  const known: KnownAcl[] = []
  const eager = eagerRules(pattern => patterns.testFor(pattern))
  const lazy: RuleMaker = (pattern, matched, methods, filters) => new LazyRule(pattern, matched, methods, filters, patterns)

  function compileAclClaim (acl: unknown): CompiledAcl {
    let i = 0
    for (const entry of known) {
      if (sameJson(acl, entry.shape)) {
        if (i > 0) {
          known.splice(i, 1)
          known.unshift(entry)
        }
        return entry.compiled
      }
      i++
    }
    const compiled = compileRules(acl, lazy)
    const shape = grantsOf(compiled) === undefined ? undefined : shapeOf(acl)
    if (shape !== undefined) {
      if (known.length >= KNOWN_ACLS_MAX) known.pop()
      known.unshift({ shape, compiled })
    }
    return compiled
  }

  return Object.freeze({
    compileAcl: (acl: unknown): CompiledAcl => compileRules(acl, eager),
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
  // string of its own, which is also what the comparison above is fastest with (a slice was
  // slower: docs/benchmark.md, "Measured choices in the code").
  const grant = { method, path: structuredClone(path), grantedBy }
  if (grants.length >= GRANTS_KEPT) grants.pop()
  grants.unshift(grant)
}

const SHOWN_PATH_MAX = 200

/** The path as a 403 names it: bounded, and never cut inside a surrogate pair. */
export function shownPath (path: string | null): string {
  if (path === null) return '(a path outside the acl path space)'
  if (path.length <= SHOWN_PATH_MAX) return path
  let cut = SHOWN_PATH_MAX
  const last = path.charCodeAt(cut - 1)
  if (last >= 0xd800 && last <= 0xdbff) cut--
  return `${path.slice(0, cut)}...`
}

/** Whether a rule's methods let `upper` (an upper-cased method) through. */
function methodAllowed (rule: AclRule, upper: string): boolean {
  // HEAD is a GET without the body: a rule that grants GET grants HEAD.
  return rule.methods === null || rule.methods.has(upper) || (upper === 'HEAD' && rule.methods.has('GET'))
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
    for (const rule of matchRules(acl)) {
      if (!methodAllowed(rule, upper)) continue
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

/** The options the ACL stage decides with. */
interface AclStageOptions {
  /** The acl of a token without one (already compiled), or null: such a token is a root token. */
  readonly defaultAcl: CompiledAcl | null
  readonly requireAcl: boolean
  readonly aclFilter: AclFilter | undefined
}

/**
 * The ACL stage of one verifier: it compiles the `acl` claim of each verified token (its shape is
 * part of verification: 401), keeps what it compiled, and decides requests on it. The pipeline
 * hands the compiled acl on with the token; `verify()` and `authorize()` of the public verifier,
 * which hand out and take a plain `VerifiedToken`, find it again through `keep` and `aclOf`.
 */
interface AclStage {
  /** The compiled `acl` claim of a payload out of `JSON.parse` (null: no claim). @throws {GuardError} `VJG_CLAIM_INVALID`. */
  compileClaim (claims: Readonly<Record<string, unknown>>): CompiledAcl | null
  /** Remember the acl compiled for a token `verify()` hands out, for `aclOf`. */
  keep (verified: VerifiedLike, acl: CompiledAcl | null): void
  /** The compiled acl of a verified token: the one kept for it, else its claim compiled now (and kept). */
  aclOf (verified: VerifiedLike): CompiledAcl | null
  /** Whether the token's acl (or `defaultAcl` without one) grants `method` on `path`. @throws {GuardError} `VJG_ACL_DENIED`. */
  decide (acl: CompiledAcl | null, claims: Readonly<Record<string, unknown>>, method: string, path: string | null, request: unknown): AclDecision
}

/** What the ACL stage reads of a verified token. */
interface VerifiedLike {
  readonly claims: Readonly<Record<string, unknown>>
}

export function createAclStage (options: AclStageOptions): AclStage {
  const compiler = createAclCompiler()
  /**
   * The compiled acls of tokens the public `verify()` handed out, or `authorize()` was given. A
   * WeakMap entry per token is work for the garbage collector, so the pipeline (which hands the
   * compiled acl on itself) never adds one.
   */
  const kept = new WeakMap<VerifiedLike, CompiledAcl | null>()
  const { defaultAcl, requireAcl, aclFilter } = options
  return Object.freeze({
    compileClaim: (claims: Readonly<Record<string, unknown>>) => claims.acl === undefined ? null : compiler.compileAclClaim(claims.acl),
    keep: (verified: VerifiedLike, acl: CompiledAcl | null) => { kept.set(verified, acl) },
    aclOf (verified: VerifiedLike): CompiledAcl | null {
      let acl = kept.get(verified)
      if (acl === undefined) {
        // A token verified elsewhere: its claim may be any value, so it is compiled as `compileAcl` does.
        acl = verified.claims.acl === undefined ? null : compiler.compileAcl(verified.claims.acl)
        kept.set(verified, acl)
      }
      return acl
    },
    decide (acl: CompiledAcl | null, claims: Readonly<Record<string, unknown>>, method: string, path: string | null, request: unknown): AclDecision {
      // A token without acl gets defaultAcl (null under requireAcl, which then refuses it).
      const fromDefault = acl === null && defaultAcl !== null
      return decide(fromDefault ? defaultAcl : acl, method, path, { requireAcl, aclFilter, claims, request, fromDefault })
    }
  })
}

/** What one rule of an acl makes of a request, for a tool that explains a 403. */
export interface AclRuleVerdict {
  /** The pattern as the token states it. */
  readonly pattern: string
  /** Whether the pattern matches the path. */
  readonly matches: boolean
  /** Whether the rule's `methods` (all when it has none) let the method through, HEAD counting as GET. */
  readonly methodAllowed: boolean
  /** The rule's methods, upper-cased; null: every method. */
  readonly methods: readonly string[] | null
  /** Whether the rule has `filters`, which only `aclFilter` can make grant. */
  readonly hasFilters: boolean
}

/**
 * Rule by rule, what an acl claim makes of `method` on the canonical `path`: the same match and
 * method rules as a decision, without `aclFilter`.
 *
 * @throws {GuardError} `VJG_CLAIM_INVALID`, as `compileAcl`.
 */
export function explainAcl (acl: unknown, method: string, path: string): AclRuleVerdict[] {
  const upper = method.toUpperCase()
  return matchRules(compileAcl(acl)).map(rule => ({
    pattern: rule.pattern,
    matches: rule.test(path),
    methodAllowed: methodAllowed(rule, upper),
    methods: rule.methods === null ? null : [...rule.methods],
    hasFilters: rule.filters !== null
  }))
}
