/**
 * Docs' shell blocks as a user pastes them: a project folder where `npx vonage-jwt-guard` runs
 * the built CLI (an installed CLI's bin), and the shell to run them in, without tap's variables.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { CLI } from './bin.js'

/** A project folder where `npx vonage-jwt-guard` runs the built CLI (its bin, as a shell script). */
export function project (t: Test): string {
  const dir = t.testdir({ 'package.json': JSON.stringify({ private: true }) })
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true })
  const bin = join(dir, 'node_modules', '.bin', 'vonage-jwt-guard')
  writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`)
  chmodSync(bin, 0o755)
  return dir
}

/** A user's environment: tap's loaders and variables left out. */
export const userEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !/^(TAP|_TAP)/.test(name)))

/** The shell lines of a block, comments and blank lines left out. */
export const shellLines = (block: string): string[] => block.split('\n').map(line => line.replace(/\s+#.*$/, '').trim()).filter(line => line !== '' && !line.startsWith('#'))
