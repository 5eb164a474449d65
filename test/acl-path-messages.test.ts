/**
 * A 403 that `aclPath` caused names the path the ACL matched, and the request's own: a refusal
 * of `GET /v1/users/alice` under `aclPath: '/api'` says the path is outside the prefix.
 */
import t from 'tap'
import { bearer, buildApp } from './helpers/app.js'
import { token } from './helpers/keys.js'

t.test('an aclPath refusal names the request\'s path and the path it matched', async t => {
  const cases: Array<{ name: string, aclPath: string | ((request: unknown, path: string) => string | null), url: string, message: string }> = [
    { name: 'outside the prefix', aclPath: '/api', url: '/v1/users/alice', message: 'GET /v1/users/alice is outside aclPath "/api": only /api and the paths under it are matched against the token acl' },
    { name: 'stripped, then not granted', aclPath: '/api', url: '/api/v1/calls', message: 'GET /v1/calls is not granted by the token acl (the request\'s path /api/v1/calls, with aclPath "/api" stripped)' },
    { name: 'the prefix alone', aclPath: '/api', url: '/api', message: 'GET / is not granted by the token acl (the request\'s path /api, with aclPath "/api" stripped)' },
    { name: 'a function answering null', aclPath: () => null, url: '/v1/users/alice', message: 'GET /v1/users/alice is not granted: the aclPath function answered null (no acl rule may grant it)' },
    { name: 'a function mapping', aclPath: (_request, path) => path.replace(/^\/v2/, '/v1'), url: '/v2/calls', message: 'GET /v1/calls is not granted by the token acl (the request\'s path /v2/calls, as the aclPath function mapped it)' }
  ]
  const jwt = await token()
  for (const { name, aclPath, url, message } of cases) {
    const app = await buildApp({ aclPath: aclPath as never })
    const res = await app.inject({ url, headers: bearer(jwt) })
    t.equal(res.statusCode, 403, name)
    t.equal(res.json().code, 'VJG_ACL_DENIED', name)
    t.equal(res.json().message, message, name)
    await app.close()
  }

  const app = await buildApp({ aclPath: '/api' })
  t.equal((await app.inject({ url: '/api/v1/users/alice', headers: bearer(jwt) })).statusCode, 200, 'a path under the prefix is granted as before')
  await app.close()
  const plain = await buildApp()
  t.equal((await plain.inject({ url: '/v1/calls', headers: bearer(jwt) })).json().message, 'GET /v1/calls is not granted by the token acl', 'without aclPath the message is unchanged')
  await plain.close()
})
