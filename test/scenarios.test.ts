/**
 * One scenario table, three servers: Fastify (inject), Express 5 and Express 4 (real sockets).
 * Each must give the status, code and challenge the table says, and all three the same answer.
 */
import { createRequire } from 'node:module'
import express from 'express'
import t from 'tap'
import { runExpress, runFastify, scenarios, type Answer, type ExpressFactory, type Scenario } from './helpers/scenarios.js'

const express4 = createRequire(import.meta.url)('express4') as ExpressFactory

const adapters: Array<[string, (scenario: Scenario) => Promise<Answer>]> = [
  ['fastify', runFastify],
  ['express 5', scenario => runExpress(express, scenario)],
  ['express 4', scenario => runExpress(express4, scenario)]
]

t.test('every scenario: the table, and the same answer from every adapter', async t => {
  /** Assert one answer against its row; returns the parsed body (null when there is none). */
  function check (scenario: Scenario, adapter: string, answer: Answer): unknown {
    const label = `${adapter}: ${scenario.name}`
    t.equal(answer.status, scenario.status, `${label}: status`)
    const body: unknown = answer.body === '' ? null : JSON.parse(answer.body)
    if (scenario.code !== undefined) {
      t.equal((body as { code?: string } | null)?.code, scenario.code, `${label}: code`)
      if (scenario.message !== undefined) t.equal((body as { message?: string } | null)?.message, scenario.message, `${label}: message`)
      const expected = scenario.challenge!
      if (expected.endsWith('error_description="')) {
        t.ok(answer.challenge?.startsWith(expected) && answer.challenge.endsWith('"'), `${label}: challenge ${answer.challenge}`)
      } else {
        t.equal(answer.challenge, expected, `${label}: challenge`)
      }
      t.notMatch(answer.body, /eyJ/, `${label}: the body never holds the token`)
    } else {
      t.equal(answer.challenge, undefined, `${label}: no challenge on success`)
      if (scenario.method !== 'HEAD') {
        const auth = (body as { auth: { grantedBy: string | null } | null }).auth
        if (scenario.auth === null) t.equal(auth, null, `${label}: auth is null`)
        else t.equal(auth?.grantedBy, scenario.auth?.grantedBy, `${label}: grantedBy`)
      }
    }
    return body
  }

  const table = await scenarios()
  t.ok(table.length > 60, 'the table is all there')
  for (const scenario of table) {
    const answers: Array<[string, Answer, unknown]> = []
    for (const [adapter, run] of adapters) {
      const answer = await run(scenario)
      answers.push([adapter, answer, check(scenario, adapter, answer)])
    }
    const [, first, firstBody] = answers[0]!
    for (const [adapter, answer, body] of answers.slice(1)) {
      t.equal(answer.status, first.status, `${scenario.name}: ${adapter} status as fastify`)
      t.equal(answer.challenge, first.challenge, `${scenario.name}: ${adapter} challenge as fastify`)
      t.same(body, firstBody, `${scenario.name}: ${adapter} body as fastify`)
    }
  }
})

t.test("errorFormat 'problem': the same RFC 7807 answer from every adapter", async t => {
  const table = (await scenarios()).filter(s => ['no token', 'path outside the ACL', 'expired', 'encoded slash', 'two Authorization headers (req.headers keeps one)'].includes(s.name))
  t.equal(table.length, 5)
  for (const row of table) {
    const scenario = { ...row, options: { ...row.options, errorFormat: 'problem' } }
    const answers = await Promise.all(adapters.map(async ([adapter, run]) => [adapter, await run(scenario)] as const))
    const [, first] = answers[0]!
    const { instance: _instance, ...expected } = JSON.parse(first.body)
    t.equal(first.status, row.status, `${row.name}: status`)
    t.equal(expected.code, row.code, `${row.name}: code`)
    t.ok(expected.type.startsWith('https://developer.vonage.com/api-errors#'), `${row.name}: type`)
    for (const [adapter, answer] of answers) {
      t.equal(answer.status, first.status, `${adapter}: ${row.name}: status`)
      t.equal(answer.challenge, first.challenge, `${adapter}: ${row.name}: challenge`)
      t.match(answer.contentType, /^application\/problem\+json/, `${adapter}: ${row.name}: content type`)
      const { instance, ...rest } = JSON.parse(answer.body)
      t.type(instance, 'string', `${adapter}: ${row.name}: instance`)
      t.same(rest, expected, `${adapter}: ${row.name}: body`)
    }
  }
})
