/**
 * The packages as a user gets them (`npm run test:consumer`; `bash .ci/run` runs it once). Both
 * are packed as `npm publish` would pack them, then installed from the tarballs into scratch apps
 * whose other dependencies come from the npm registry:
 * - the tarballs hold the built code, its types and the LICENSE, and nothing of the repository;
 * - beside `fastify@5.2.0`: one Fastify, the README's Fastify example compiles under `strict`
 *   without `skipLibCheck` and answers 200 / 401 / 403 over a real socket;
 * - an Express-only app: no Fastify, at most 8 packages added, the README's Express example
 *   compiles and answers the same, and CommonJS `require()` works on every Node given;
 * - the CLI package installed alone (with the library's tarball: the library is not on the
 *   registry yet) runs `keygen`, `create`, `verify`, `serve` and `forward-auth`.
 * It needs the registry and a minute or two, so it is not part of `npm test`.
 */
import { execFile, spawn } from 'node:child_process'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { readmeExample, ROOT } from '../helpers/examples.js'
import { freePort, rawRequest, type RawResponse } from '../helpers/http.js'

const root = fileURLToPath(ROOT)
/** Node binaries for the CommonJS check besides this one (`VJG_NODES`, path-separated; .ci/run sets it). */
const nodes = [process.execPath, ...(process.env.VJG_NODES ?? '').split(delimiter).filter(path => path !== '')]
/** The repository's own compiler (5.9), beside the latest one each app installs. */
const repoTsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const REALM = 'Bearer realm="vonage-jwt-guard"'
const ACL = { paths: { '/*/users/**': {} } }

/** The environment of a user's shell, without tap's variables. */
const userEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env)
  .filter(([name]) => name !== 'NODE_OPTIONS' && !/^(TAP|_TAP|TS_NODE_)/.test(name)))

/**
 * A command as a user runs it: tap's process tracking puts its loaders into the NODE_OPTIONS of
 * every child it sees spawned, whatever env it is given, so the command goes through `env -u`.
 */
function asUser (file: string, args: string[]): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', file, ...args]]
}

const work = mkdtempSync(join(tmpdir(), 'vjg-consumer-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function exec (file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeout = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(...asUser(file, args), { cwd, env: { ...userEnv, ...env }, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1
      resolve({ code, stdout, stderr: error !== null && typeof error.code !== 'number' ? `${stderr}\n${error.message}` : stderr })
    })
  })
}

function npm (args: string[], cwd: string): Promise<Run> {
  return exec('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd)
}

/** A scratch ESM app with a strict tsconfig (no skipLibCheck) and the given files. */
function scratchApp (name: string, files: Record<string, string> = {}): string {
  const dir = join(work, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }, null, 2))
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], outDir: 'out' },
    include: ['*.ts']
  }, null, 2))
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
  return dir
}

interface Weight {
  packages: number
  bytes: number
}

/** What is installed: the packages the lock file lists under node_modules, and their bytes on disk. */
function weight (dir: string): Weight {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
  const packages = Object.keys(lock.packages).filter(key => key.startsWith('node_modules/')).length
  const size = (path: string): number => {
    const stat = lstatSync(path)
    if (!stat.isDirectory()) return stat.size
    return readdirSync(path).reduce((sum, entry) => sum + size(join(path, entry)), 0)
  }
  return { packages, bytes: size(join(dir, 'node_modules')) }
}

function mb (bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/** Every installed copy of `name`, as lock-file paths. */
function copiesOf (dir: string, name: string): Array<{ path: string, version: string }> {
  const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> }
  return Object.entries(lock.packages)
    .filter(([key]) => key === `node_modules/${name}` || key.endsWith(`/node_modules/${name}`))
    .map(([path, entry]) => ({ path, version: entry.version }))
}

interface Packed {
  name: string
  version: string
  filename: string
  files: Array<{ path: string }>
}

const packed = await (async () => {
  const run = await exec('npm', ['pack', '--workspaces', '--pack-destination', work, '--json'], root)
  if (run.code !== 0) throw new Error(`npm pack failed:\n${run.stderr}`)
  const list = JSON.parse(run.stdout) as Packed[]
  const find = (name: string): Packed & { tarball: string } => {
    const entry = list.find(p => p.name === name)
    if (entry === undefined) throw new Error(`npm pack made no ${name}`)
    return { ...entry, tarball: join(work, entry.filename) }
  }
  return { lib: find('vonage-jwt-guard'), cli: find('vonage-jwt-guard-cli') }
})()

/** The package.json inside a tarball. */
async function packedManifest (tarball: string): Promise<Record<string, any>> {
  const run = await exec('tar', ['-xzOf', tarball, 'package/package.json'], work)
  if (run.code !== 0) throw new Error(run.stderr)
  return JSON.parse(run.stdout) as Record<string, any>
}

/** Mint a key pair and a token with the installed `vonage-jwt-guard/mint`; writes public.key. */
async function mintIn (dir: string): Promise<{ token: string, privateKey: string }> {
  writeFileSync(join(dir, 'mint.mjs'), `
import { writeFileSync } from 'node:fs'
import { generateKeys, mintToken } from 'vonage-jwt-guard/mint'
const { privateKey, publicKey } = await generateKeys()
writeFileSync('public.key', publicKey)
const token = await mintToken({}, privateKey, { applicationId: 'app-1', sub: 'alice', acl: ${JSON.stringify(ACL)} })
process.stdout.write(JSON.stringify({ token, privateKey }))
`)
  const run = await exec(process.execPath, ['mint.mjs'], dir)
  if (run.code !== 0) throw new Error(`mint.mjs: ${run.stderr}`)
  return JSON.parse(run.stdout) as { token: string, privateKey: string }
}

/** Compile with the app's own (latest) TypeScript and with the repository's 5.9. */
async function compiles (t: Test, dir: string): Promise<void> {
  const latest = await exec(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', '.'], dir)
  const version = (await exec(join(dir, 'node_modules', '.bin', 'tsc'), ['--version'], dir)).stdout.trim()
  t.equal(latest.code, 0, `compiles with ${version}, strict, no skipLibCheck`, { output: latest.stdout + latest.stderr })
  const repo = await exec(process.execPath, [repoTsc, '-p', '.', '--noEmit'], dir)
  t.equal(repo.code, 0, 'compiles with the repository\'s TypeScript 5.9', { output: repo.stdout + repo.stderr })
}

/** Run a compiled example and wait until it accepts connections. */
async function serveExample (t: Test, dir: string, script: string): Promise<number> {
  const port = await freePort()
  const child = spawn(...asUser(process.execPath, [script]), { cwd: dir, env: { ...userEnv, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(() => { child.kill('SIGKILL') })
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode}:\n${output}`)
    const up = await rawRequest(port, '/health').then(() => true, () => false)
    if (up) return port
    if (waited > 20_000) throw new Error(`${script} did not listen within 20 s:\n${output}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** The README examples' promise: 200 with the claims, 401 without a token, 403 outside the ACL, an open /health. */
async function answersLikeTheReadme (t: Test, port: number, token: string): Promise<void> {
  const bearer = { authorization: `Bearer ${token}` }
  const code = (res: RawResponse): unknown => (JSON.parse(res.body) as { code?: string }).code

  const granted = await rawRequest(port, '/v1/users/abc', bearer)
  t.equal(granted.status, 200, 'a token whose ACL grants the path')
  t.same(JSON.parse(granted.body), { id: 'abc', sub: 'alice' }, 'the handler sees the claims')

  const missing = await rawRequest(port, '/v1/users/abc')
  t.equal(missing.status, 401, 'no token')
  t.equal(code(missing), 'VJG_TOKEN_MISSING')
  t.equal(missing.headers['www-authenticate'], REALM)

  const denied = await rawRequest(port, '/v1/calls', bearer)
  t.equal(denied.status, 403, 'a path outside the ACL')
  t.equal(code(denied), 'VJG_ACL_DENIED')
  t.match(denied.headers['www-authenticate'], /error="insufficient_scope"/)

  const health = await rawRequest(port, '/health')
  t.equal(health.status, 200, '/health is not guarded')
  t.equal(health.body, 'ok')
}

/**
 * A scratch app with `dependencies` from the registry, then the library's tarball: asserts that
 * both install and that the library adds at most 8 packages, and reports what it adds.
 */
async function appWithLibrary (t: Test, name: string, files: Record<string, string>, dependencies: string[]): Promise<string> {
  const dir = scratchApp(name, files)
  const base = await npm(['install', ...dependencies], dir)
  t.equal(base.code, 0, 'the app\'s own dependencies install', { stderr: base.stderr })
  const before = weight(dir)
  const added = await npm(['install', packed.lib.tarball], dir)
  t.equal(added.code, 0, 'the library\'s tarball installs', { stderr: added.stderr })
  const after = weight(dir)
  const count = after.packages - before.packages
  t.ok(count <= 8, `the library adds ${count} packages (at most 8)`)
  t.comment(`${name}: the library adds ${count} packages, ${mb(after.bytes - before.bytes)} (the app before it: ${before.packages} packages, ${mb(before.bytes)})`)
  return dir
}

t.test('the tarballs hold the built code, its types, the LICENSE and the docs, and nothing else', async t => {
  const libFiles = packed.lib.files.map(f => f.path)
  for (const entry of ['index', 'express', 'mint', 'stores/redis', 'forward-auth']) {
    t.ok(libFiles.includes(`dist/${entry}.js`), `dist/${entry}.js`)
    t.ok(libFiles.includes(`dist/${entry}.d.ts`), `dist/${entry}.d.ts`)
  }
  for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'docs/options.md']) t.ok(libFiles.includes(file), file)
  t.same(libFiles.filter(f => !/^(dist\/.+\.(js|d\.ts)|docs\/[\w-]+\.md|LICENSE|README\.md|CHANGELOG\.md|package\.json)$/.test(f)), [], 'nothing else')
  t.same(libFiles.filter(f => f.startsWith('dist/cli')), [], 'no command line in the library')

  const lib = await packedManifest(packed.lib.tarball)
  t.same(Object.keys(lib.dependencies).sort(), ['fastify-plugin', 'jose', 'minimatch'], 'the library depends on what it imports')
  t.same(lib.peerDependenciesMeta, { fastify: { optional: true }, ioredis: { optional: true }, '@types/express': { optional: true }, '@opentelemetry/api': { optional: true } }, 'optional peers')
  t.equal(lib.engines.node, '^20.19.0 || >=22.12.0')
  t.equal(lib.sideEffects, false)

  const cliFiles = packed.cli.files.map(f => f.path)
  t.same(cliFiles.filter(f => !/^(dist\/[\w-]+\.c?js|LICENSE|README\.md|package\.json)$/.test(f)), [], 'the CLI: its built commands, README and LICENSE')
  t.ok(cliFiles.includes('LICENSE'))
  const cli = await packedManifest(packed.cli.tarball)
  t.same(cli.bin, { 'vonage-jwt-guard': './dist/bin.cjs' })
  t.match(cli.dependencies['vonage-jwt-guard'], /^\^\d+\.\d+\.\d+$/, 'a real semver range on the library')
  // The mock command's OpenAPI reader, sampler and Fastify's own ajv compiler are the CLI's, never the library's.
  t.same(Object.keys(cli.dependencies).sort(), ['@apidevtools/json-schema-ref-parser', '@fastify/ajv-compiler', '@fastify/error', '@fastify/http-proxy',
    '@fastify/proxy-addr', '@fastify/rate-limit', '@opentelemetry/api', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/resources', '@opentelemetry/sdk-trace-node', 'commander', 'fastify', 'ioredis', 'openapi-sampler', 'pino-pretty', 'prom-client', 'vonage-jwt-guard'])
})

t.test('beside fastify@5.2.0: one Fastify, the README example compiles strictly and answers 200 / 401 / 403', async t => {
  const dir = await appWithLibrary(t, 'fastify-app', { 'fastify.ts': readmeExample('fastify') }, ['--save-exact', 'fastify@5.2.0', 'typescript', '@types/node@20'])
  t.same(copiesOf(dir, 'fastify'), [{ path: 'node_modules/fastify', version: '5.2.0' }], 'one fastify: the app\'s 5.2.0')

  await compiles(t, dir)
  const { token } = await mintIn(dir)
  const port = await serveExample(t, dir, 'out/fastify.js')
  await answersLikeTheReadme(t, port, token)
})

t.test('an Express-only app gets no Fastify; the README example compiles strictly and answers; require() works', async t => {
  const dir = await appWithLibrary(t, 'express-app', { 'express.ts': readmeExample('express') }, ['express', 'typescript', '@types/express', '@types/node@20'])
  t.same(copiesOf(dir, 'fastify'), [], 'no fastify installed')
  const ls = await npm(['ls', 'fastify', '--all', '--parseable'], dir)
  t.equal(ls.stdout.trim(), '', 'npm ls fastify: nothing')

  await compiles(t, dir)
  const { token } = await mintIn(dir)
  const port = await serveExample(t, dir, 'out/express.js')
  await answersLikeTheReadme(t, port, token)

  writeFileSync(join(dir, 'check.cjs'), `
const guard = require('vonage-jwt-guard')
const { expressVonageJwt, isGuardError, GuardError } = require('vonage-jwt-guard/express')
const { generateKeys, mintToken } = require('vonage-jwt-guard/mint')
;(async () => {
  const { privateKey, publicKey } = await generateKeys()
  const token = await mintToken({}, privateKey, { applicationId: 'app-1', acl: ${JSON.stringify(ACL)} })
  const verifier = guard.createVerifier({ publicKey })
  const verified = await verifier.verify(token)
  const { grantedBy } = verifier.authorize(verified, 'GET', guard.canonicalPath('/v1/users/abc?x=1'))
  let denied
  try { verifier.authorize(verified, 'GET', '/v1/calls') } catch (error) { denied = isGuardError(error) && error instanceof GuardError ? error.code : String(error) }
  process.stdout.write(JSON.stringify({ plugin: typeof guard.default, middleware: typeof expressVonageJwt(({ publicKey })), grantedBy, denied }))
})().catch((error) => { console.error(error); process.exit(1) })
`)
  for (const node of nodes) {
    const version = (await exec(node, ['--version'], dir)).stdout.trim()
    const run = await exec(node, ['check.cjs'], dir)
    t.equal(run.code, 0, `require() on Node ${version}`, { stderr: run.stderr })
    if (run.code === 0) {
      t.same(JSON.parse(run.stdout), { plugin: 'function', middleware: 'function', grantedBy: '/*/users/**', denied: 'VJG_ACL_DENIED' }, `CommonJS on Node ${version}: the plugin, the middleware, a verdict`)
    }
  }
})

t.test('the CLI package installed alone runs keygen, create, verify, serve and forward-auth', async t => {
  const dir = scratchApp('cli-user')
  const install = await npm(['install', packed.cli.tarball, packed.lib.tarball], dir)
  t.equal(install.code, 0, 'the two tarballs install', { stderr: install.stderr })
  t.same(copiesOf(dir, 'vonage-jwt-guard').map(c => c.path), ['node_modules/vonage-jwt-guard'], 'one library, shared by the CLI')
  const installed = weight(dir)
  t.comment(`CLI alone: ${installed.packages} packages, ${mb(installed.bytes)}`)
  const cli = (args: string[]): Promise<Run> => exec('npx', ['--no-install', 'vonage-jwt-guard', ...args], dir)

  const keygen = await cli(['keygen', '--out', 'keys'])
  t.equal(keygen.code, 0, 'keygen', { stderr: keygen.stderr })
  t.match(readFileSync(join(dir, 'keys', 'private.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/)

  const create = await cli(['create', '--app-id', 'app-1', '--private-key', 'keys/private.key', '--sub', 'alice', '--acl', JSON.stringify(ACL)])
  t.equal(create.code, 0, 'create', { stderr: create.stderr })
  const token = create.stdout.trim()
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a token alone on stdout')

  const granted = await cli(['verify', token, '--public-key', 'keys/public.key', '--path', '/v1/users/abc'])
  t.equal(granted.code, 0, 'verify, granted', { output: granted.stdout + granted.stderr })
  t.match(granted.stdout, /granted by "\/\*\/users\/\*\*"/)
  const denied = await cli(['verify', token, '--public-key', 'keys/public.key', '--method', 'POST', '--path', '/v1/calls'])
  t.equal(denied.code, 1, 'verify, outside the ACL: exit 1')
  t.match(denied.stdout, /VJG_ACL_DENIED/)

  /** Start a server command of the installed bin; resolves with its port. */
  const started = (args: string[]): Promise<number> => {
    const child = spawn(...asUser('npx', ['--no-install', 'vonage-jwt-guard', ...args]), { cwd: dir, env: userEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    // npx runs the bin in a child of its own: end the whole group.
    t.teardown(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // Already gone.
      }
    })
    return new Promise<number>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`${args[0]!} did not listen within 30 s:\n${out}`)), 30_000)
      child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const match = /listening on (http:\/\/[^\s,]+)/.exec(out)
        if (match !== null) {
          clearTimeout(timer)
          resolve(Number(new URL(match[1]!).port))
        }
      })
    })
  }
  const port = await started(['serve', '--port', '0', '--public-key', 'keys/public.key', '--log-level', 'warn'])
  const answer = await rawRequest(port, '/v1/users/abc', { authorization: `Bearer ${token}` })
  t.equal(answer.status, 200, 'serve answers a granted request')
  t.equal((await rawRequest(port, '/v1/users/abc')).status, 401, 'serve refuses a request without a token')

  // forward-auth loads the library's vonage-jwt-guard/forward-auth through the packed exports map.
  const checks = await started(['forward-auth', '--port', '0', '--public-key', 'keys/public.key', '--log-level', 'warn'])
  const check = { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/v1/users/abc' }
  const grant = await rawRequest(checks, '/auth', { authorization: `Bearer ${token}`, ...check })
  t.equal(grant.status, 200, 'forward-auth grants a check')
  t.equal(grant.headers['x-vonage-sub'], 'alice', 'with the verified sub')
  t.equal((await rawRequest(checks, '/auth', check)).status, 401, 'forward-auth refuses a check without a token')
})
