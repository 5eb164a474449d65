/**
 * Installing the repository on a supported Node is quiet: no dependency of the root or of bench/
 * asks for a Node the engines field supports and npm refuses (`EBADENGINE`). cookie@2 (Node >= 22)
 * came in through Fastify's light-my-request; `overrides` pins the cookie 1.1 it also works with.
 * `npm ci --dry-run` reads the lock file and checks every engine without installing anything.
 * CI runs this on Node 20, 22 and 24.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ROOT } from './helpers/examples.js'

function dryRun (cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['ci', '--dry-run', '--no-audit', '--no-fund'], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`npm ci --dry-run in ${cwd}: ${error.message}\n${stderr}`))
      else resolve(stdout + stderr)
    })
  })
}

for (const folder of ['.', 'bench']) {
  t.test(`npm ci in ${folder} warns about no engine on Node ${process.version}`, async t => {
    const output = await dryRun(fileURLToPath(new URL(`${folder}/`, ROOT)))
    t.notMatch(output, /EBADENGINE/, output.split('\n').filter(line => line.includes('EBADENGINE')).join('\n'))
  })
}
