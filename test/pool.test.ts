/**
 * Where RSA runs (lib/verify.ts, createPoolRule): a verification alone stays on the calling
 * thread (the pipeline answers without a promise); once BUSY verifications are under way (on
 * the thread pool, or on the calling thread in this turn of the event loop), the next goes to the
 * pool (a promise). The verdicts are the same either way. Observed by whether `authenticate`
 * answers with a promise, never by timing.
 */
import { pbkdf2 } from 'node:crypto'
import t from 'tap'
import { createGuard, type GuardRequest } from '../lib/guard.js'
import { normalizeOptions } from '../lib/options.js'
import { BUSY } from '../lib/signature.js'
import { createTokenVerifier } from '../lib/verify.js'
import { keys, NOW_MS, otherKeys, token } from './helpers/keys.js'

const request = (jwt: string, target = '/v1/users/a'): GuardRequest => ({
  target,
  method: 'GET',
  raw: { rawHeaders: ['Authorization', `Bearer ${jwt}`], headers: {} } as never,
  request: {}
})

const nextTurn = (): Promise<void> => new Promise(resolve => setImmediate(resolve))

t.test('alone on the calling thread; under load on the thread pool; the same verdicts', async t => {
  const guard = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS })
  const tokens = await Promise.all(Array.from({ length: BUSY + 4 }, async () => token()))
  await nextTurn()

  const alone = guard.authenticate(request(tokens[0]!))
  t.notOk(alone instanceof Promise, 'alone: no promise')
  t.equal((alone as { grantedBy: string }).grantedBy, '/*/users/**')
  await nextTurn()

  // Several in one turn: the first BUSY on the thread, the rest on the pool.
  const burst = tokens.slice(1, BUSY + 3).map(jwt => guard.authenticate(request(jwt)))
  burst.slice(0, BUSY).forEach((answer, i) => t.notOk(answer instanceof Promise, `request ${i + 1} of the turn: on the thread`))
  burst.slice(BUSY).forEach((answer, i) => t.ok(answer instanceof Promise, `request ${i + BUSY + 1} of the turn: on the pool`))
  const settled = await Promise.all(burst)
  t.ok(settled.every(auth => auth?.grantedBy === '/*/users/**'), 'all granted, on the thread or on the pool')

  // Across turns, what is on the pool counts. Its threads are kept busy (pbkdf2) so that the
  // pooled verifications are still waiting when the next turn begins.
  // (Tokens first: jose signs on the pool too.)
  const more = await Promise.all(Array.from({ length: BUSY + 4 }, async () => token()))
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const busy = Array.from({ length: threads }, () => new Promise(resolve => { pbkdf2('x', 'y', 400_000, 32, 'sha256', resolve) }))
  await nextTurn()
  const quota = more.slice(0, BUSY).map(jwt => guard.authenticate(request(jwt)))
  t.ok(quota.every(answer => !(answer instanceof Promise)), 'the turn\'s first BUSY on the thread')
  const queued = guard.authenticate(request(more[BUSY]!))
  t.ok(queued instanceof Promise, 'past them: on the pool (where it waits behind pbkdf2)')
  await nextTurn()
  const one = guard.authenticate(request(more[BUSY + 1]!))
  t.notOk(one instanceof Promise, 'a new turn with one on the pool: not busy, on the thread')
  const second = guard.authenticate(request(more[BUSY + 2]!))
  t.ok(second instanceof Promise, 'one on the pool and one on the thread this turn: busy, on the pool')
  await nextTurn()
  const behind = guard.authenticate(request(more[BUSY + 3]!))
  t.ok(behind instanceof Promise, 'a new turn with two on the pool: busy, on the pool')
  await Promise.all([queued, second, behind, ...busy])
  await nextTurn()
  const calm = guard.authenticate(request(await token()))
  t.notOk(calm instanceof Promise, 'the pool drained and a new turn began: on the thread again')
})

t.test('a forged signature is refused on the pool as on the thread', async t => {
  const guard = createGuard({ publicKey: keys.publicPem, now: () => NOW_MS })
  const forged = await Promise.all(Array.from({ length: BUSY + 1 }, async () => token({}, { key: otherKeys.privateKey })))
  await nextTurn()
  const answers: unknown[] = []
  for (const jwt of forged) {
    try {
      answers.push(guard.authenticate(request(jwt)))
    } catch (error) {
      answers.push(error)
    }
  }
  const last = answers.at(-1)
  t.ok(last instanceof Promise, 'the last one went to the pool')
  await t.rejects(last as Promise<unknown>, { code: 'VJG_SIGNATURE_INVALID' })
  for (const answer of answers.slice(0, -1)) t.match(answer, { code: 'VJG_SIGNATURE_INVALID' }, 'refused on the thread')
})

t.test('a verifier outside the adapters never uses the pool', async t => {
  const { verifyToken } = createTokenVerifier(normalizeOptions({ publicKey: keys.publicPem, now: () => NOW_MS }))
  const tokens = await Promise.all(Array.from({ length: BUSY + 3 }, async () => token()))
  for (const jwt of tokens) t.notOk(verifyToken(jwt) instanceof Promise)
})
