/**
 * docs/cli.md's config files as a newcomer pastes them: the minimal file beside the keys
 * `keygen` writes, and the complete example with the key file made as the page says. The shell
 * lines run as written, with `npx vonage-jwt-guard` resolving to the built CLI, as in a project
 * where the CLI is installed.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync, spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { rawRequest } from '../../test/helpers/http.js'
import { APP_ID } from '../../test/helpers/keys.js'
import { markedBlock } from '../../test/helpers/examples.js'
import { portOf, waitFor } from './helpers/bin.js'
import { project, shellLines as lines, userEnv as env } from './helpers/pasted.js'

/** Run one pasted line to its end in `dir` (bash, as a user's shell). */
function paste (line: string, dir: string): string {
  return execFileSync('bash', ['-c', line], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })
}

/** Start a pasted server line; resolves with its base URL once it prints its banner. */
function pasteServer (t: Test, line: string, dir: string): Promise<{ base: string, out: () => string }> {
  // Its own process group: npx runs the bin as a child of its own, and both are stopped.
  const child = spawn('bash', ['-c', `exec ${line.replace(/^npx /, 'npx --no ')} --port 0`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  t.teardown(() => { process.kill(-child.pid!, 'SIGKILL') })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  return waitFor('the banner', () => /listening on http/.test(out), 30_000).then(() => ({ base: /listening on (http:\/\/\S+?),? /.exec(out)![1]!, out: () => out }))
}

t.test('the minimal config file works as pasted, beside the keys keygen writes', async t => {
  const dir = project(t)
  writeFileSync(join(dir, 'guard.json'), markedBlock('docs/cli.md', 'config-minimal'))
  const commands = lines(markedBlock('docs/cli.md', 'config-minimal: commands'))
  t.match(commands, [/keygen/, /serve --config guard\.json$/])
  paste(commands[0]!, dir)
  const server = await pasteServer(t, commands[1]!, dir)
  t.match(server.out(), /^keys: publicKey \(from guard\.json\)$/m, 'the banner names the file')
  // The token the banner says how to make.
  const make = /make a token with: (.*)$/m.exec(server.out())![1]!
  const jwt = paste(make, dir).trim()
  const port = portOf(server.base)
  t.equal((await rawRequest(port, '/v1/users/alice', { authorization: `Bearer ${jwt}` })).status, 200)
  t.equal((await rawRequest(port, '/v1/users/alice')).status, 401)
})

t.test('the complete example works once its key file is made as the page says; a path outside aclPath names it', async t => {
  const dir = project(t)
  for (const line of lines(markedBlock('docs/cli.md', 'config-example: keys'))) paste(line, dir)
  writeFileSync(join(dir, 'guard.json'), markedBlock('docs/cli.md', 'config-example'))
  const server = await pasteServer(t, 'npx vonage-jwt-guard serve --config guard.json', dir)
  const jwt = paste(`npx vonage-jwt-guard create --app-id ${APP_ID} --private-key keys/private.key --acl '{"paths":{"/*/users/**":{}}}'`, dir).trim()
  const port = portOf(server.base)
  t.equal((await rawRequest(port, '/api/v1/users/alice', { authorization: `Bearer ${jwt}` })).status, 200, 'under /api')
  const outside = await rawRequest(port, '/v1/users/alice', { authorization: `Bearer ${jwt}` })
  t.equal(outside.status, 403)
  t.equal(JSON.parse(outside.body).detail, 'GET /v1/users/alice is outside aclPath "/api": only /api and the paths under it are matched against the token acl')
})
