/**
 * The examples the docs mark as tested: the fenced code block right after an
 * `<!-- example: NAME -->` line. Tests read them from the Markdown itself, so a README example
 * cannot drift from what is compiled and run.
 */
import { readFileSync } from 'node:fs'

export const ROOT = new URL('../../', import.meta.url)

/**
 * The code of the fenced block right after the line `<!-- MARKER -->` (`example: fastify`,
 * `config: nginx`, `config-example`) in the repository file `file`; throws when there is none,
 * or two.
 */
export function markedBlock (file: string, marker: string): string {
  const markdown = readFileSync(new URL(file, ROOT), 'utf8')
  const pattern = new RegExp(`^<!-- ${marker} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)^\`\`\`$`, 'gm')
  const found = [...markdown.matchAll(pattern)]
  if (found.length !== 1) throw new Error(`expected one code block marked "${marker}" in ${file}, found ${found.length}`)
  return found[0]![1]!
}

/** An example of the repository's README.md. */
export function readmeExample (name: string): string {
  return markedBlock('README.md', `example: ${name}`)
}
