/**
 * docs/quick-starts.md as a newcomer pastes it: each block runs whole in bash, in a project where
 * `npx vonage-jwt-guard` is the built CLI, and prints what its comments say. The fixed ports of
 * the page (3000, 3001, 8080) become free ones, the only change made to the text.
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import t from 'tap'
import { markedBlock } from '../../test/helpers/examples.js'
import { freePort, waitFor } from './helpers/bin.js'
import { project, userEnv } from './helpers/pasted.js'

/**
 * Run a whole block in bash with job control on, as in a terminal (`kill %1` then signals the
 * job's whole process group: npx and the CLI under it), in a process group of its own: done when
 * bash exits, then whatever is left of the group is killed.
 */
function pasteBlock (block: string, cwd: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `set -m\n${block}`], { cwd, env: userEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { process.kill(-child.pid!, 'SIGKILL') }, 90_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // The group is gone already.
      }
      resolve({ code, stdout, stderr })
    })
  })
}

/** Whether something still listens on `port` (a server the block should have stopped). */
function listening (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  })
}

/** The lines of `out` that are among `wanted`, in order: the server's own output left out. */
const among = (out: string, wanted: string[]): string[] => out.split('\n').map(line => line.trim()).filter(line => wanted.includes(line.toLowerCase())).map(line => line.toLowerCase())

t.test('the proxy quick start prints what its comments say', async t => {
  const up = await freePort()
  const guard = await freePort()
  const block = markedBlock('docs/quick-starts.md', 'quick-start: proxy').replaceAll('8080', String(up)).replaceAll('3000', String(guard))
  const result = await pasteBlock(block, project(t))
  t.equal(result.code, 0, result.stderr)
  const wanted = ['hello alice', '401', '403']
  t.same(among(result.stdout, wanted), wanted, result.stdout)
  await waitFor('kill %1 %2 to stop both servers', async () => !(await listening(guard)) && !(await listening(up)))
})

t.test('the forward-auth quick start prints what its comments say', async t => {
  const guard = await freePort()
  const block = markedBlock('docs/quick-starts.md', 'quick-start: forward-auth').replaceAll('3001', String(guard))
  const result = await pasteBlock(block, project(t))
  t.equal(result.code, 0, result.stderr)
  const wanted = ['http/1.1 200 ok', 'x-vonage-application-id: my-app', 'x-vonage-sub: alice', '403']
  t.same(among(result.stdout, wanted), wanted, result.stdout)
  await waitFor('kill %1 to stop the server', async () => !(await listening(guard)))
})
