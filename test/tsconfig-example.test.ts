/**
 * The README's tsconfig compiles the README's TypeScript examples as a user's project holds them:
 * `"type": "module"`, the tsconfig as written, `vonage-jwt-guard` resolved to the built package
 * (run `npm run build` first). `tsc --strict` on the same file without it fails, which is why the
 * README gives it.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { readmeExample, ROOT } from './helpers/examples.js'

const tsc = fileURLToPath(new URL('node_modules/typescript/bin/tsc', ROOT))

function compile (args: string[], cwd: string): Promise<{ code: number, out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : 1, out: stdout + stderr })
    })
  })
}

t.test('the README\'s tsconfig compiles its examples; tsc --strict alone does not', async t => {
  // Inside the repository, so that node_modules/vonage-jwt-guard (the built package) resolves.
  const dir = t.testdir({
    'package.json': JSON.stringify({ type: 'module' }),
    'tsconfig.json': readmeExample('tsconfig'),
    'app.ts': readmeExample('fastify'),
    'express-app.ts': readmeExample('express')
  })
  const built = await compile(['-p', '.'], dir)
  t.equal(built.code, 0, built.out)

  const bare = await compile(['--strict', '--noEmit', join(dir, 'app.ts')], dir)
  t.equal(bare.code, 1, 'without it, tsc fails (the reason the README gives the file)')
  t.match(bare.out, /TS1378|TS1375|top-level 'await'/, 'on top-level await')
})
