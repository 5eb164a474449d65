/**
 * What the guard adds to a cached request, in one process (issue 27): on a shared machine the
 * HTTP rows move by more between rounds than the guard costs. Each app listens on loopback; a
 * client in the same process pipelines 16 requests at a time on one kept-alive socket; the CPU
 * time of the process per request (client and server: the client's share is the same for every
 * app), in interleaved rounds, medians and the per-round differences.
 *
 *   npm run build && cd bench && node inprocess.js [rounds] [requests per round] [apps]
 *
 * Apps (comma-separated): bare, empty (an empty callback onRequest hook), emptyro (one that reads
 * routeOptions), emptyasync, ours, base (BENCH_BASELINE's build): the app of servers/app.js;
 * xbare, xempty, xours, xbase: Express; fbare (a Fastify app answering 200 to every check),
 * fours, fbase: forward-auth, sent the checks nginx sends with docs/deployment.md's server block.
 * Needs bench/.cache/ (a run of run.js made it).
 */
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { createServer } from 'node:http'
import Fastify from 'fastify'
import express from 'express'
import { BASELINE, load } from './dist.js'
import { freshToken } from './fixture.js'

const fixture = JSON.parse(readFileSync(new URL('.cache/fixture.json', import.meta.url), 'utf8'))
const { CLIENT_SDK_ACL } = await load('mint.js')
const token = freshToken(fixture.privateKey, CLIENT_SDK_ACL)
const publicKey = fixture.publicKey
const [,, roundsArg = '15', nArg = '8000', kindsArg = 'bare,empty,ours'] = process.argv
const DIST = { ours: undefined, base: BASELINE }
const USER = { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, active: { type: 'boolean' } }, required: ['id', 'name', 'active'] } }
async function fastifyApp (kind) {
  const a = Fastify({ logger: false })
  if (kind === 'ours' || kind === 'base') {
    const { default: g } = await load('index.js', DIST[kind])
    await a.register(g, { publicKey })
  } else if (kind === 'empty') a.addHook('onRequest', (rq, rp, done) => { done() })
  else if (kind === 'emptyro') a.addHook('onRequest', (rq, rp, done) => { if (rq.routeOptions.config.jwtGuard === 1) throw new Error(); done() })
  else if (kind === 'emptyasync') a.addHook('onRequest', async (_request, _reply) => {})
  a.get('/v1/users/:id', { schema: { response: USER } }, async (rq) => ({ id: rq.params.id, name: 'Alice', active: true }))
  await a.listen({ port: 0, host: '127.0.0.1' })
  return a.server.address().port
}
async function expressApp (kind) {
  const app = express()
  if (kind === 'xours' || kind === 'xbase') {
    const { expressVonageJwt } = await load('express.js', DIST[kind === 'xours' ? 'ours' : 'base'])
    app.use(expressVonageJwt({ publicKey }))
  } else if (kind === 'xempty') app.use((req, res, next) => { next() })
  app.get('/v1/users/:id', (req, res) => { res.json({ id: req.params.id }) })
  app.use((error, req, res, _next) => { res.status(error.status ?? 500).end() })
  const server = createServer(app)
  await new Promise(r => server.listen(0, '127.0.0.1', r))
  return server.address().port
}
async function forwardAuthApp (kind) {
  const a = Fastify({ logger: false })
  if (kind === 'fbare') {
    a.all('/*', (request, reply) => reply.code(200).send())
  } else {
    const { forwardAuth } = await load('forward-auth.js', DIST[kind === 'fours' ? 'ours' : 'base'])
    await a.register(forwardAuth, { publicKey })
  }
  await a.listen({ port: 0, host: '127.0.0.1' })
  return a.server.address().port
}
const kinds = kindsArg.split(',')
const ports = {}
for (const k of kinds) ports[k] = k.startsWith('x') ? await expressApp(k) : k.startsWith('f') ? await forwardAuthApp(k) : await fastifyApp(k)
const REQ = Buffer.from(`GET /v1/users/abc HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pipe\r\nAccept: */*\r\nAuthorization: Bearer ${token}\r\n\r\n`)
// What nginx sends forward-auth with the docs' location block (the client's headers passed on).
const CHECK = Buffer.from(`GET /auth HTTP/1.1\r\nX-Original-Method: GET\r\nX-Original-URI: /v1/users/abc\r\nHost: vonage_guard\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: 5b0c4d2e\r\n\r\n`)
const DEPTH = 16
const sockets = {}
for (const k of kinds) {
  sockets[k] = await new Promise(r => { const s = connect(ports[k], '127.0.0.1', () => r(s)); s.setNoDelay(true) })
}
function run (k, n) {
  const s = sockets[k]
  return new Promise((resolve, reject) => {
    let done = 0; let sent = 0; let tail = ''; let bad = 0
    const burst = Buffer.concat(Array(DEPTH).fill(k.startsWith('f') ? CHECK : REQ))
    const onData = (chunk) => {
      const text = tail + chunk.toString('latin1')
      let i = -1
      while ((i = text.indexOf('HTTP/1.1 ', i + 1)) !== -1) { done++; if (text.slice(i + 9, i + 12) !== '200') bad++ }
      tail = text.slice(-12)
      if (bad) { s.off('data', onData); reject(new Error(k + ' non-200: ' + text.slice(0, 300))); return }
      if (done === sent) {
        if (sent >= n) { s.off('data', onData); resolve(); return }
        sent += DEPTH; s.write(burst)
      }
    }
    s.on('data', onData)
    sent += DEPTH; s.write(burst)
  })
}
async function batch (k, n) { const t = process.cpuUsage(); await run(k, n); const u = process.cpuUsage(t); return (u.user + u.system) / n }
const N = Number(nArg)
for (const k of kinds) await batch(k, N)
const res = Object.fromEntries(kinds.map(k => [k, []]))
for (let r = 0; r < Number(roundsArg); r++) for (let i = 0; i < kinds.length; i++) { const k = kinds[(i + r) % kinds.length]; res[k].push(await batch(k, N)) }
const med = (l) => { const s = [...l].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
for (const k of kinds) console.log(k.padEnd(7), med(res[k]).toFixed(2), ' ', res[k].map(x => x.toFixed(1)).join(' '))
const pairs = [['fours', 'fbare'], ['fbase', 'fbare'], ['fours', 'fbase'], ['emptyro', 'empty'], ['emptyasync', 'empty'], ['empty', 'bare'], ['ours', 'bare'], ['ours', 'empty'], ['base', 'bare'], ['base', 'empty'], ['ours', 'base'], ['xempty', 'xbare'], ['xours', 'xempty'], ['xbase', 'xempty'], ['xours', 'xbase']]
for (const [a, b] of pairs) { if (!res[a] || !res[b]) continue; const d = res[a].map((x, i) => x - res[b][i]); console.log(`${a}-${b}`.padEnd(14), 'median', med(d).toFixed(2), 'range', Math.min(...d).toFixed(2), Math.max(...d).toFixed(2)) }
process.exit(0)
