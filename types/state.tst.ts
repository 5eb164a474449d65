import Fastify from 'fastify'
import { expect, test } from 'tstyche'
import vonageJwtGuard, { createMemoryStore, DECISION_CHANNEL, type ErrorCode, type GuardDecision, type GuardOptions, type VonageClaims } from 'vonage-jwt-guard'
import { Cluster } from 'ioredis'
import { createRedisStore, type RedisStore, type ReplayDurability } from 'vonage-jwt-guard/redis'

test('replay takes true or a store', () => {
  expect<{ publicKey: string, replay: true }>().type.toBeAssignableTo<GuardOptions>()
  expect<{ publicKey: string, replay: { store: ReturnType<typeof createMemoryStore> } }>().type.toBeAssignableTo<GuardOptions>()
  expect<{ publicKey: string, replay: 'yes' }>().type.not.toBeAssignableTo<GuardOptions>()
})

test('isRevoked receives the claims and the framework request', () => {
  const app = Fastify()
  expect(app.register(vonageJwtGuard, {
    publicKey: 'pem',
    isRevoked: async (claims, request) => claims.jti === 'x' || request.headers['x-test'] === '1'
  })).type.not.toRaiseError()
  expect<Parameters<NonNullable<GuardOptions['isRevoked']>>[0]>().type.toBeAssignableTo<Readonly<VonageClaims>>()
})

test('createRedisStore takes a url or a client and returns a revocation store', () => {
  expect(createRedisStore({ url: 'redis://127.0.0.1:6379', prefix: 'vjg:' })).type.toBe<RedisStore>()
  expect(createRedisStore).type.not.toBeCallableWith({ prefix: 1 })
  const store = createRedisStore({ url: 'redis://127.0.0.1:6379' })
  expect(store.revokeToken).type.toBeCallableWith('jti', 1_800_000_000)
  expect(store.revokeSubject).type.toBeCallableWith('alice', 1_800_000_000)
})

test('createRedisStore takes a cluster (url list or Cluster client), Sentinels with a name, and a durability', () => {
  expect(createRedisStore({ url: ['redis://10.0.1.1:6379', 'redis://10.0.1.2:6379'] })).type.toBe<RedisStore>()
  expect(createRedisStore({ client: new Cluster([{ host: '10.0.1.1', port: 6379 }]) })).type.toBe<RedisStore>()
  expect(createRedisStore({ sentinels: [{ host: '10.0.0.1', port: 26379 }], name: 'mymaster', replayDurability: 'replica', logger: console })).type.toBe<RedisStore>()
  expect(createRedisStore).type.not.toBeCallableWith({ url: 'redis://127.0.0.1:6379', replayDurability: 'all' })
  expect(createRedisStore).type.not.toBeCallableWith({ sentinels: ['10.0.0.1:26379'], name: 'mymaster' })
  expect<RedisStore['replayDurability']>().type.toBe<ReplayDurability>()
})

test('the decision channel and its payload are public types', () => {
  expect(DECISION_CHANNEL).type.toBe<'vonage-jwt-guard:decision'>()
  expect<GuardDecision['cache']>().type.toBe<'hit' | 'miss' | 'off' | 'not-reached'>()
  expect<GuardDecision['failedOpen']>().type.toBe<readonly ('replay' | 'revocation' | 'isRevoked')[]>()
  expect<GuardDecision['failedChecks']>().type.toBe<readonly ('replay' | 'revocation' | 'isRevoked')[]>()
  expect<GuardDecision['code']>().type.toBe<ErrorCode | null>()
  expect<GuardDecision['path']>().type.toBe<string | null>()
})
