/**
 * The examples the docs mark as tested: the fenced code block right after an
 * `<!-- example: NAME -->` line. Tests read them from the Markdown itself, so a README example
 * cannot drift from what is compiled and run.
 */
import { readFileSync } from 'node:fs'

export const ROOT = new URL('../../', import.meta.url)

/** The code of the block marked `name` in `markdown`; throws when there is none, or two. */
export function markedExample (markdown: string, name: string): string {
  const marker = new RegExp(`^<!-- example: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)^\`\`\`$`, 'gm')
  const found = [...markdown.matchAll(marker)]
  if (found.length !== 1) throw new Error(`expected one code block marked "example: ${name}", found ${found.length}`)
  return found[0]![1]!
}

/** An example of the repository's README.md. */
export function readmeExample (name: string): string {
  return markedExample(readFileSync(new URL('README.md', ROOT), 'utf8'), name)
}
