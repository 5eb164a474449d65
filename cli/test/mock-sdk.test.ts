/**
 * mock --openapi under a real client: @vonage/server-sdk's Users and Conversations clients with
 * `apiHost` at the mock and tokens from `Auth({ jwtOptions: { acl } })`. Granted calls return the
 * SDK's own objects and its pagers end; a call outside the ACL is the SDK's error with 403; a
 * token for another application is 401.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Auth } from '@vonage/auth'
import { Vonage } from '@vonage/server-sdk'
import t from 'tap'
import { APP_ID, keys } from '../../test/helpers/keys.js'
import { start, stop } from './helpers/bin.js'

const CONVERSATION = join(fileURLToPath(new URL('./fixtures/openapi/', import.meta.url)), 'conversation.yaml')
const ALICE = 'USR-82e028d9-5201-4f1e-8188-604b2d3471ec'
const ACL = { paths: { '/*/users/**': {}, '/*/conversations/**': { methods: ['GET'] } } }

/** The status of the SDK's error (a VetchError carries the response). */
async function statusOf (call: () => Promise<unknown>): Promise<number | string> {
  try {
    await call()
    return 'no error'
  } catch (error) {
    return (error as { response?: { status?: number } }).response?.status ?? String(error)
  }
}

async function all<T> (pager: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = []
  for await (const item of pager) {
    items.push(item)
    if (items.length > 100) throw new Error('the pager does not end')
  }
  return items
}

t.test('@vonage/server-sdk against mock: its own objects, pagers that end, 403 and 401 as Vonage answers them', async t => {
  // The SDK calls /v1/...: the document, like Vonage's, says another version.
  const server = await start(['mock', '--openapi', CONVERSATION, '--base-path', '/v1', '--public-key', keys.publicPem, '--app-id', APP_ID, '--port', '0', '--log-level', 'warn'])
  t.teardown(() => stop(server))
  const vonage = new Vonage(new Auth({ applicationId: APP_ID, privateKey: keys.privatePem, jwtOptions: { acl: ACL } }), { apiHost: server.base })

  const user = await vonage.users.getUser(ALICE)
  t.equal(user.id, ALICE, 'getUser: the documented id')
  t.equal(user.name, 'alice')
  t.equal(user.displayName, 'Alice', 'the SDK\'s camelCase object')

  const users = await all(vonage.users.listAllUsers())
  t.same(users.map(u => u.name), ['alice', 'bob', 'alice', 'bob'], 'listAllUsers: the first page, then the page its next link leads to, then the end')

  const page = await vonage.users.getUserPage({ pageSize: 2 })
  t.equal(page._embedded?.users?.length, 2, 'getUserPage: _embedded as documented')

  const conversations = await all(vonage.conversations.listAllConversations())
  t.equal(conversations.length, 2, 'listAllConversations ends')
  t.equal(conversations[0]!.name, 'support')

  const conversation = await vonage.conversations.getConversation('CON-1d8f6f8e-2c4e-4f7a-9b1a-3c5d7e9f1a2b')
  t.type(conversation.id, 'string', 'getConversation: a body sampled from the schema')

  const created = await vonage.users.createUser({ name: 'carol' })
  t.type(created.id, 'string', 'createUser: the documented 201, sampled')

  t.equal(await statusOf(() => vonage.conversations.createConversation({ name: 'support' })), 403, 'POST outside the ACL (GET only): the SDK\'s error with 403')
  t.equal(await statusOf(() => vonage.users.getUser('not-a-user-id')), 400, 'a user id off the documented pattern: 400')

  const stranger = new Vonage(new Auth({ applicationId: '11111111-2222-4333-8444-555555555555', privateKey: keys.privatePem, jwtOptions: { acl: ACL } }), { apiHost: server.base })
  t.equal(await statusOf(() => stranger.users.getUser(ALICE)), 401, 'a token for another application: 401')
  t.equal(await statusOf(() => all(stranger.users.listAllUsers())), 401)
})
