/**
 * ACL patterns (docs/acl.md) compiled to a test of a canonical path: minimatch's answer, with the
 * trailing-`/**` rule on top. Patterns in the grammar Vonage's ACLs use (`*`, `**` and literal
 * segments) are matched by our own code, which mirrors minimatch's matching of those portions
 * (`#matchGlobstar` and `#matchOne` of minimatch 11.0.9) step for step; anything else (`?`,
 * `[...]`, a `.` segment) is handed to minimatch itself. Those two are private to minimatch, so
 * package.json pins the version test/glob.test.ts compared against: a new one is taken only
 * after that test ran on it. Why our own: a minimatch compile keeps a few kilobytes per pattern
 * alive, which made tokens with ACL patterns of their own slow to verify and heavy to keep (the
 * numbers: docs/benchmark.md, "Measured choices in the code"); ours compiles in a split and
 * holds the split. test/glob.test.ts compares both over the ACL tables and generated patterns
 * and paths.
 */
import { Minimatch } from 'minimatch'
import type { MinimatchOptions } from 'minimatch'

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

/** A compiled pattern: whether it matches a canonical path. */
export type PatternTest = (path: string) => boolean

/** `*`: one portion, not empty, not `.` or `..` (minimatch with `dot: true`). */
const STAR = 1
/** `**`: any number of portions, none of them `.` or `..`. */
const GLOBSTAR = 2
/** A portion of a pattern: a literal, compared as it is, or a wildcard. */
type Portion = string | typeof STAR | typeof GLOBSTAR

/** minimatch's `maxGlobstarRecursion` default: deeper `**` sections do not match. */
const GLOBSTAR_RECURSION_MAX = 200

/** A portion minimatch would read as more than a literal (or that we leave to it: `.`, `..`). */
const MAGIC = /[*?[\]\\]/

/**
 * A pattern's portions as minimatch splits them (runs of `/` are one, `**` twice in a row is
 * one), or undefined when a portion is outside our grammar.
 */
function portionsOf (pattern: string): Portion[] | undefined {
  const portions: Portion[] = []
  for (const part of pattern.split(/\/+/)) {
    if (part === '**') {
      if (portions[portions.length - 1] !== GLOBSTAR) portions.push(GLOBSTAR)
    } else if (part === '*') {
      portions.push(STAR)
    } else if (part === '.' || part === '..' || MAGIC.test(part)) {
      return undefined
    } else {
      portions.push(part)
    }
  }
  return portions
}

function dots (portion: string): boolean {
  return portion === '.' || portion === '..'
}

function portionMatch (p: Portion, f: string): boolean {
  return p === STAR ? f !== '' && !dots(f) : f === p
}

/** minimatch's `#matchOne` (not partial): `pattern` against `file` from `fileIndex`, up to `fileEnd`. */
function matchOne (file: readonly string[], pattern: readonly Portion[], fileIndex: number, fileEnd = file.length): boolean {
  const fl = Math.min(fileEnd, file.length)
  const pl = pattern.length
  let fi = fileIndex
  let pi = 0
  for (; fi < fl && pi < pl; fi++, pi++) {
    if (!portionMatch(pattern[pi] as Portion, file[fi] as string)) return false
  }
  if (fi === fl && pi === pl) return true
  if (fi === fl) return false
  // Out of pattern with file left: only the '' of a trailing slash may remain.
  return fi === fl - 1 && file[fi] === ''
}

/** The sections of a pattern around its `**`s, as minimatch's `#getGlobstarParts` makes them. */
interface GlobstarRow {
  readonly head: readonly Portion[]
  readonly tail: readonly Portion[]
  /** Each section between two `**`: its portions, and how many portions it and the later ones need. */
  readonly sections: ReadonlyArray<readonly [readonly Portion[], number]>
  readonly bodyLength: number
}

function globstarRow (pattern: readonly Portion[]): GlobstarRow {
  const first = pattern.indexOf(GLOBSTAR)
  const last = pattern.lastIndexOf(GLOBSTAR)
  const body = pattern.slice(first + 1, last)
  const sections: Array<[Portion[], number]> = [[[], 0]]
  const before: number[] = [0]
  let portions = 0
  for (const b of body) {
    if (b === GLOBSTAR) {
      before.push(portions)
      sections.push([[], 0])
    } else {
      (sections[sections.length - 1] as [Portion[], number])[0].push(b)
      portions++
    }
  }
  sections.forEach((section, i) => { section[1] = portions - (before[i] as number) })
  return { head: pattern.slice(0, first), tail: pattern.slice(last + 1), sections, bodyLength: body.length }
}

/** minimatch's `#matchGlobStarBodySections` (not partial): false and null both mean no match, null that no other start can help. */
function matchSections (file: readonly string[], sections: GlobstarRow['sections'], fileLength: number, start: number, index: number, depth: number, sawTail: boolean, tried: Set<number>): boolean | null {
  const section = sections[index]
  if (section === undefined) {
    for (let i = start; i < fileLength; i++) {
      sawTail = true
      if (dots(file[i] as string)) return false
    }
    return sawTail
  }
  const [body, need] = section
  const after = fileLength - need
  for (let fileIndex = start; fileIndex <= after; fileIndex++) {
    const key = index * (file.length + 1) + fileIndex
    if (tried.has(key)) return false
    tried.add(key)
    if (matchOne(file, body, fileIndex, fileIndex + body.length) && depth < GLOBSTAR_RECURSION_MAX) {
      const rest = matchSections(file, sections, fileLength, fileIndex + body.length, index + 1, depth + 1, sawTail, tried)
      if (rest !== false) return rest
    }
    if (fileIndex === after) break
    if (dots(file[fileIndex] as string)) return false
  }
  return null
}

/** minimatch's `#matchGlobstar` (not partial). */
function matchGlobstar (file: readonly string[], row: GlobstarRow): boolean {
  const { head, tail, sections } = row
  let fileIndex = 0
  if (head.length > 0) {
    if (!matchOne(file, head, 0, head.length)) return false
    fileIndex = head.length
  }
  let tailMatched = 0
  if (tail.length > 0) {
    if (tail.length + fileIndex > file.length) return false
    const tailStart = file.length - tail.length
    if (matchOne(file, tail, tailStart)) {
      tailMatched = tail.length
    } else {
      // `a/**/*` matches `a/b/`: try once more before the '' of a trailing slash.
      if (file[file.length - 1] !== '' || fileIndex + tail.length === file.length) return false
      if (!matchOne(file, tail, tailStart - 1)) return false
      tailMatched = tail.length + 1
    }
  }
  if (row.bodyLength === 0) {
    // Ends on `/**` (no tail): something must follow the head.
    let sawSome = tailMatched > 0
    for (let i = fileIndex; i < file.length - tailMatched; i++) {
      sawSome = true
      if (dots(file[i] as string)) return false
    }
    return sawSome
  }
  return matchSections(file, sections, file.length - tailMatched, fileIndex, 0, 0, tailMatched > 0, new Set()) === true
}

/** A pattern in our grammar: a plain row, or a row with `**`. */
type Row = { readonly plain: readonly Portion[] } | { readonly globstar: GlobstarRow }

function rowOf (portions: Portion[]): Row {
  return portions.includes(GLOBSTAR) ? { globstar: globstarRow(portions) } : { plain: portions }
}

function matchRow (file: readonly string[], row: Row): boolean {
  return 'plain' in row ? matchOne(file, row.plain, 0) : matchGlobstar(file, row.globstar)
}

/** The path split as minimatch splits it; the last one is kept, as every rule of an acl tests the same path. */
let lastPath: string | undefined
let lastParts: readonly string[] = []

function partsOf (path: string): readonly string[] {
  if (path !== lastPath) {
    lastParts = path.includes('//') ? path.split(/\/+/) : path.split('/')
    lastPath = path
  }
  return lastParts
}

/**
 * Compile one pattern (already checked by the acl: starts with `/`, at most 512 characters, no
 * `\`, `%` or `..` segment). A trailing `/**` also matches the path without it (`/*\/users/**`
 * grants `/v1/users`), which minimatch does not do by itself; `/**` alone already matches `/`.
 */
export function compilePattern (pattern: string): PatternTest {
  let prefix = pattern
  while (prefix.endsWith('/**')) prefix = prefix.slice(0, -3)
  const hasBare = prefix !== pattern && prefix !== ''
  const full = portionsOf(pattern)
  if (full !== undefined) {
    const row = rowOf(full)
    if (!hasBare) return (path: string): boolean => matchRow(partsOf(path), row)
    // The prefix's portions are the pattern's first ones: in our grammar as well.
    const bare = rowOf(portionsOf(prefix) as Portion[])
    return (path: string): boolean => {
      const parts = partsOf(path)
      return matchRow(parts, row) || matchRow(parts, bare)
    }
  }
  return compileWithMinimatch(pattern)
}

/** The pattern handed to minimatch rather than matched by our own code (for tests and the differential check). */
export function usesMinimatch (pattern: string): boolean {
  return portionsOf(pattern) === undefined
}

/** minimatch's own answer for a pattern with the trailing-`/**` rule: the reference our matcher is checked against. */
export function compileWithMinimatch (pattern: string): PatternTest {
  let prefix = pattern
  while (prefix.endsWith('/**')) prefix = prefix.slice(0, -3)
  const mm = new Minimatch(pattern, MINIMATCH_OPTIONS)
  const mmBare = prefix !== pattern && prefix !== '' ? new Minimatch(prefix, MINIMATCH_OPTIONS) : null
  return mmBare === null
    ? (path: string): boolean => mm.match(path)
    : (path: string): boolean => mm.match(path) || mmBare.match(path)
}
