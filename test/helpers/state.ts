/** Requests and assertions shared by the replay, revocation, JWKS and Redis tests. */
import type { FastifyInstance } from 'fastify'
import { bearer } from './app.js'

export const REALM = 'Bearer realm="vonage-jwt-guard"'
export const INVALID_TOKEN = `${REALM}, error="invalid_token", error_description="`

interface Answer {
  status: number
  code: string | undefined
  challenge: string | undefined
  /** Wall-clock ms the request took. */
  elapsed: number
}

/** GET `url` with the token as a Bearer token; the status, the code and the challenge. */
export async function send (app: FastifyInstance, jwt: string, url = '/v1/users'): Promise<Answer> {
  const started = Date.now()
  const res = await app.inject({ url, headers: bearer(jwt) })
  const body = res.statusCode === 200 ? {} : res.json()
  return { status: res.statusCode, code: body.code, challenge: res.headers['www-authenticate'] as string | undefined, elapsed: Date.now() - started }
}

interface Assert {
  equal: (...args: any[]) => unknown
  ok: (...args: any[]) => unknown
}

/** Status AND code AND challenge (the exact value, or its prefix when it ends with `error_description="`). */
export function rejected (t: Assert, answer: Answer, status: number, code: string, challenge: string): void {
  t.equal(answer.status, status, `status ${status}`)
  t.equal(answer.code, code, `code ${code}`)
  if (challenge.endsWith('error_description="')) t.ok(answer.challenge?.startsWith(challenge), `challenge ${String(answer.challenge)}`)
  else t.equal(answer.challenge, challenge, 'challenge')
}
