/**
 * Every install line the docs give, as a user pastes it (`npm run test:consumer`; it needs the
 * registry for the apps' other dependencies and a few minutes). The repository is cloned afresh
 * (the committed tree, as a user gets it), the clone's block runs in it as written, and the
 * project's blocks run in scratch folders with `CLONE` set to the clone, as the README asks.
 *
 * Every line of README.md, cli/README.md and docs/ that installs one of the packages
 * (`npm install ... vonage-jwt-guard...`, `npx ... vonage-jwt-guard-cli`, `npx -p ...tgz`)
 * must be in one of these blocks, or in a block marked as meant for after the first release, or
 * be the compose file's copy of the `npx -p` line run here: a line that cannot work today and
 * says nothing about it fails this test.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { markedBlock, ROOT } from '../helpers/examples.js'

const root = fileURLToPath(ROOT)
const DOCS = ['README.md', 'cli/README.md', ...readdirSync(new URL('docs/', ROOT)).filter(f => f.endsWith('.md')).map(f => `docs/${f}`)]
const RUN = ['install: in the clone', 'install: today', 'install: today, npx']
const AFTER_RELEASE = 'install: after the first release'

/** A line that installs or fetches one of our packages. */
const INSTALLS = /\bnpm (?:install|i|add)\b(?!.*\s-w\s).*vonage-jwt-guard|\bnpx\b.*(?:vonage-jwt-guard-cli|-p \S*\.tgz)/

/** The environment of a user's shell, without tap's variables. */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !/^(TAP|_TAP|TS_NODE_)/.test(name)))

function sh (script: string, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { ...userEnv, ...env }, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr })
    })
  })
}

/** The fenced blocks of a Markdown file, each with the marker line before it (or ''). */
function fencedBlocks (file: string): Array<{ marker: string, code: string, line: number }> {
  const text = readFileSync(join(root, file), 'utf8')
  return [...text.matchAll(/(?:^<!-- (.+?) -->\n)?^```[a-z]*\n([\s\S]*?)^```$/gm)].map(match => ({
    marker: match[1] ?? '',
    code: match[2]!,
    line: text.slice(0, match.index).split('\n').length
  }))
}

t.test('every install line of the docs is run here or marked for after the first release', async t => {
  const npxForm = markedBlock('README.md', 'install: today, npx').trim()
  // The README's npx line with the tarballs in any folder: `npx --yes -p DIR/...-cli-0.1.0.tgz -p DIR/...-0.1.0.tgz`.
  const npxPattern = new RegExp(`^${npxForm.replace(/ vonage-jwt-guard --help$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll('"\\$CLONE"/', '\\S+/')}(?: |$)`)
  let seen = 0
  for (const file of DOCS) {
    for (const block of fencedBlocks(file)) {
      for (const line of block.code.split('\n').filter(l => INSTALLS.test(l))) {
        seen++
        const where = `${file}:${block.line}: ${line.trim()}`
        if (RUN.includes(block.marker) || block.marker === AFTER_RELEASE || /after the first release/i.test(line)) {
          t.pass(where)
        } else {
          // A container's command (compose, Kubernetes) runs the README's npx line on tarballs
          // mounted elsewhere: the same command, another folder.
          const words = line.replace(/^\s*command:\s*/, '').replace(/[[\]",\s]+/g, ' ').trim()
          t.ok(npxPattern.test(words), `${where}: not in a marked block, and not the README's npx line on other tarball paths`)
        }
      }
    }
  }
  t.ok(seen >= 6, `${seen} install lines found`)
})

t.test('the install lines that work today work, as written', async t => {
  const work = mkdtempSync(join(tmpdir(), 'vjg-install-'))
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })
  const clone = join(work, 'clone')
  const cloned = await sh(`git clone --quiet ${JSON.stringify(root)} ${JSON.stringify(clone)}`, work)
  t.equal(cloned.code, 0, 'git clone', { stderr: cloned.stderr })

  const inClone = await sh(markedBlock('README.md', 'install: in the clone'), clone)
  t.equal(inClone.code, 0, 'the clone\'s block: npm ci && npm pack --workspaces', { stderr: inClone.stderr.slice(-4000) })
  const tarballs = readdirSync(clone).filter(name => name.endsWith('.tgz')).sort()
  t.same(tarballs, ['vonage-jwt-guard-0.1.0.tgz', 'vonage-jwt-guard-cli-0.1.0.tgz'], 'the two tarballs the README names')

  // A user's project: a package.json of its own, then the README's lines.
  const app = join(work, 'app')
  await sh(`mkdir ${JSON.stringify(app)}`, work)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'my-api', private: true, type: 'module' }, null, 2))
  const today = await sh(markedBlock('README.md', 'install: today'), app, { CLONE: clone })
  t.equal(today.code, 0, 'the project\'s block', { stderr: today.stderr.slice(-4000) })
  t.match(today.stdout, /Usage: vonage-jwt-guard/, 'npx vonage-jwt-guard runs the installed CLI')
  const manifest = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>, devDependencies: Record<string, string> }
  t.match(manifest.dependencies, { 'vonage-jwt-guard': /^file:.*vonage-jwt-guard-0\.1\.0\.tgz$/, fastify: /^\^5\./ })
  t.match(manifest.devDependencies, { 'vonage-jwt-guard-cli': /^file:.*vonage-jwt-guard-cli-0\.1\.0\.tgz$/ })
  const lib = await sh('node --input-type=module -e "import guard from \'vonage-jwt-guard\'; console.log(typeof guard)"', app)
  t.equal(lib.stdout.trim(), 'function', 'the library imports in the project')

  // npx without a project, from an empty folder.
  const empty = join(work, 'empty')
  await sh(`mkdir ${JSON.stringify(empty)}`, work)
  const npx = await sh(markedBlock('README.md', 'install: today, npx'), empty, { CLONE: clone, npm_config_cache: join(work, 'npm-cache') })
  t.equal(npx.code, 0, 'the npx line', { stderr: npx.stderr.slice(-4000) })
  t.match(npx.stdout, /Usage: vonage-jwt-guard/)
})
