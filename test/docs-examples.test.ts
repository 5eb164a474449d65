/**
 * Every JavaScript and TypeScript example in README.md and docs/ against the package as users
 * import it: each code block becomes a module in a scratch folder inside the repository, where
 * `vonage-jwt-guard` resolves to the built package (its `exports` and `.d.ts`, as for a user),
 * and the TypeScript compiler checks it (JavaScript blocks with checkJs, TypeScript blocks with
 * `strict`). A renamed export, a removed option or a wrong shape in an example fails here. The
 * names an example leaves to the reader (`publicKey`, `token`, ...) are declared once below.
 * What the examples do at run time is tested where they are named: the README's two in the
 * consumer test, the others by the suites their page points to.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import { ROOT } from './helpers/examples.js'

/** What the examples take as given: the reader's own values. */
const GIVEN = `
declare global {
  const publicKey: string
  const token: string
  const APPLICATION_ID: string
  const apiKey: string
  const signatureSecret: string
  const jti: string
  const expiresAt: number
  const nowInSeconds: number
  function record (body: unknown): Promise<void>
}
export {}
`

interface Block {
  source: string
  line: number
  lang: 'js' | 'ts'
  code: string
}

function blocks (file: string): Block[] {
  const text = readFileSync(new URL(file, ROOT), 'utf8')
  const found: Block[] = []
  for (const match of text.matchAll(/^```(js|ts)\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, match.index).split('\n').length
    found.push({ source: file, line, lang: match[1] as 'js' | 'ts', code: match[2]! })
  }
  return found
}

const files = ['README.md', ...readdirSync(new URL('docs/', ROOT)).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
const examples = files.flatMap(blocks)

t.ok(examples.length >= 8, `${examples.length} examples found in ${files.length} files`)

t.test('every example compiles against the package', async t => {
  // Inside the repository, so that node_modules/vonage-jwt-guard (the built package) resolves.
  const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'module' }), 'given.d.ts': GIVEN })
  const names = examples.map((example, i) => {
    const name = join(dir, `example-${i}.${example.lang === 'ts' ? 'mts' : 'mjs'}`)
    // A block without an import is a script; as a module it keeps its names to itself.
    writeFileSync(name, /^import /m.test(example.code) ? example.code : `${example.code}\nexport {}\n`)
    return name
  })
  const base: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    noEmit: true,
    skipLibCheck: true
  }
  const check = (lang: 'js' | 'ts', options: ts.CompilerOptions): void => {
    const roots = [join(dir, 'given.d.ts'), ...names.filter((_, i) => examples[i]!.lang === lang)]
    const program = ts.createProgram(roots, { ...base, ...options })
    const diagnostics = ts.getPreEmitDiagnostics(program)
    for (const [i, example] of examples.entries()) {
      if (example.lang !== lang) continue
      const own = diagnostics.filter(d => d.file?.fileName === names[i])
      const messages = own.map(d => {
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
        return `line ${example.line + line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
      })
      t.same(messages, [], `${example.source}:${example.line} (${example.lang})`)
    }
    const elsewhere = diagnostics.filter(d => d.file === undefined || !names.includes(d.file.fileName))
    t.same(elsewhere.map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], `no ${lang} error outside the examples`)
  }
  check('js', { allowJs: true, checkJs: true })
  check('ts', { strict: true })
})
