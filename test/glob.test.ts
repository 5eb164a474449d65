/**
 * Our matcher of ACL patterns (lib/glob.ts) against minimatch, the reference: the same answer
 * for every pattern and path of the ACL table, of a corpus of hand-picked edge cases, and of
 * patterns and paths fast-check generates (run count: VJG_FUZZ_RUNS, as in fuzz.test.ts; seed:
 * VJG_FUZZ_SEED). Patterns outside our grammar are handed to minimatch, and that hand-over is
 * checked too.
 */
import fc from 'fast-check'
import t from 'tap'
import { compilePattern, compileWithMinimatch, usesMinimatch } from '../lib/glob.js'
import { decisions } from './helpers/acl-table.js'

const RUNS = Number(process.env.VJG_FUZZ_RUNS ?? 150) * 20
const SEED = process.env.VJG_FUZZ_SEED === undefined ? undefined : Number(process.env.VJG_FUZZ_SEED)

function params (numRuns: number): fc.Parameters<unknown> {
  return { numRuns, ...(SEED === undefined ? {} : { seed: SEED }) }
}

/** Where ours and minimatch disagree over these paths: `pattern path ours/minimatch`. */
function disagreements (pattern: string, paths: readonly string[]): string[] {
  const ours = compilePattern(pattern)
  const reference = compileWithMinimatch(pattern)
  const found: string[] = []
  for (const path of paths) {
    const a = ours(path)
    const b = reference(path)
    if (a !== b) found.push(`${JSON.stringify(pattern)} ${JSON.stringify(path)}: ours ${String(a)}, minimatch ${String(b)}`)
  }
  return found
}

const EDGE_PATTERNS = [
  '/', '//', '/a//', '/a', '/a/', '/*', '/*/', '/**', '/**/', '/**/**', '/a/**/**', '/a/**/b', '/a/**/b/**/c',
  '/**/a', '/**/a/**', '/*/**/*', '/a/**/*', '/a/*/**/b/*', '/v1/*/x/**/y/*', '/a//b', '/a///**', '/*/*/*',
  '/**/*/**', '/a/**/**/b', '/.a/*', '/a.b/**', '/x y/*', '/é/**', '/😀', '/+(a)', '/{a,b}', '/!a', '/(b)', '/a]', '/@',
  // handed to minimatch
  '/?', '/[ab]', '/a*', '/*a', '/[a]', '/a?b', '/[!a]/**', '/./a', '/a/.', '/**a', '/a**/b'
]

const EDGE_PATHS = [
  '/', '//', '///', '/a', '/a/', '/a//', '/a/b', '/a/b/', '/a/b/c', '/a//b', '//a', '/a/./b', '/a/../b', '/a/.', '/a/..',
  '/.', '/..', '/.a', '/a/.b', '/ab', '/b', '/a/b/c/d/e', '/v1/users', '/v1/users/abc', '/v1/userss', '/v1/q/x/y/z',
  '/v1/q/x/m/y/z', '/v1/q/x/y/', '/x y/z', '/é/x', '/😀', '/+(a)', '/{a,b}', '/!a', '/(b)', '/a]', '/*', '/**', '/?',
  '/[ab]', '/\u2028', '/\n', '/a/\u2028b', '', 'a', 'a/b'
]

t.test('the ACL table and the edge corpus: every pattern against every path', async t => {
  const patterns = new Set([...EDGE_PATTERNS, ...decisions.flatMap(([, paths]) => Object.keys(paths))])
  const paths = [...new Set([...EDGE_PATHS, ...decisions.flatMap(([, , , path]) => path === null ? [] : [path])])]
  const found: string[] = []
  for (const pattern of patterns) found.push(...disagreements(pattern, paths))
  t.strictSame(found, [], `${patterns.size} patterns x ${paths.length} paths`)
  t.ok([...patterns].filter(p => !usesMinimatch(p)).length > 40, 'most of them matched by our own code')
})

t.test('our grammar and what goes to minimatch', async t => {
  for (const pattern of ['/*/users/**', '/a/**/b', '/', '/x y/{a,b}/+(c)', '/a//b']) t.notOk(usesMinimatch(pattern), `${pattern}: ours`)
  for (const pattern of ['/?', '/[ab]', '/a*', '/./a', '/a/..', '/a]']) t.ok(usesMinimatch(pattern), `${pattern}: minimatch`)
})

const LITERALS = ['a', 'b', 'v1', 'users', '.a', 'a.b', 'x y', 'é', '😀', '+(a)', '{a,b}', '@', '!a', '(b)', '-', '_', '~', ':']
const MAGIC = ['?', '[ab]', 'a*', '*a', '[a]', 'a?b', '[!a]', '.', '**a', ']']
const portion = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('*', '**') },
  { weight: 5, arbitrary: fc.constantFrom(...LITERALS) },
  { weight: 1, arbitrary: fc.constantFrom('', ...MAGIC) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 3 }).filter(s => !s.includes('/') && !s.includes('\\') && !s.includes('%') && s !== '..') }
)
const pattern = fc.tuple(fc.array(portion, { maxLength: 6 }), fc.boolean())
  .map(([portions, slash]) => `/${portions.join('/')}${slash ? '/' : ''}`)

const pathPortion = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...LITERALS) },
  { weight: 2, arbitrary: fc.constantFrom('', '.', '..', '\u2028', '\n', '*', '**', '?') },
  { weight: 1, arbitrary: fc.string({ maxLength: 4 }).filter(s => !s.includes('/')) }
)
const randomPath = fc.tuple(fc.array(pathPortion, { maxLength: 7 }), fc.boolean())
  .map(([portions, slash]) => `/${portions.join('/')}${slash ? '/' : ''}`)

/** A path built from the pattern itself (each wildcard filled in), so that many of them match. */
function instance (source: string, fill: readonly string[][]): string {
  let k = 0
  return source.split('/').map((part) => {
    const pick = fill[k++ % fill.length] ?? []
    if (part === '**') return pick.join('/')
    if (part === '*') return pick[0] ?? 'x'
    return part
  }).join('/')
}

t.test('generated patterns and paths: ours answers as minimatch does', async t => {
  const property = fc.property(pattern, fc.array(randomPath, { maxLength: 4 }), fc.array(fc.array(pathPortion, { maxLength: 3 }), { minLength: 1, maxLength: 4 }), (p, paths, fill) => {
    const found = disagreements(p, [...paths, instance(p, fill)])
    if (found.length > 0) throw new Error(found.join('\n'))
  })
  t.doesNotThrow(() => { fc.assert(property, params(RUNS)) })
})
