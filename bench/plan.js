/** What is measured: the servers, the scenarios and the targets of issue 16 (ratios within one run). */
import { BASELINE } from './dist.js'

/**
 * `auth`: answers 401 without a token; `acl`: enforces the token's acl.paths; `express`: compared
 * with bare Express; `baseline`: the server of the same id without `base-`, on the BENCH_BASELINE build.
 */
export const SERVERS = [
  { id: 'fastify-bare', module: 'fastify-bare', title: 'Fastify, no auth (ceiling)', auth: false, acl: false },
  { id: 'fastify-empty', module: 'fastify-empty', title: 'Fastify + an empty onRequest hook (what any hook costs)', auth: false, acl: false },
  { id: 'ours-cache', module: 'ours-fastify', title: 'vonage-jwt-guard, cache on', auth: true, acl: true },
  { id: 'ours-nocache', module: 'ours-fastify', options: { cache: false }, title: 'vonage-jwt-guard, cache off', auth: true, acl: true },
  { id: 'ours-5keys', module: 'ours-fastify', options: { keys: 5 }, title: 'vonage-jwt-guard, five keys, the signer last', auth: true, acl: true },
  { id: 'fastify-jwt-cache', module: 'fastify-jwt', options: { cache: true }, title: '@fastify/jwt, cache on', auth: true, acl: false },
  { id: 'fastify-jwt-nocache', module: 'fastify-jwt', title: '@fastify/jwt, cache off', auth: true, acl: false },
  { id: 'jose', module: 'fastify-jose', title: 'Fastify + jose jwtVerify + precompiled minimatch', auth: true, acl: true },
  { id: 'floor', module: 'fastify-floor', title: 'Fastify + hand-written crypto.verify (floor)', auth: true, acl: true },
  { id: 'floor-cache', module: 'fastify-floor', options: { cache: true }, title: 'floor with its verified tokens in a Map (hand-written cache)', auth: true, acl: true },
  { id: 'floor-async', module: 'fastify-floor-async', title: 'floor with crypto.verify on the libuv pool (thread-pool floor)', auth: true, acl: true },
  { id: 'express-bare', module: 'express-bare', title: 'Express, no auth (Express ceiling)', auth: false, acl: false, express: true },
  { id: 'express-empty', module: 'express-empty', title: 'Express + an empty middleware (what any middleware costs)', auth: false, acl: false, express: true },
  { id: 'express-jwt', module: 'express-jwt', title: 'Express + express-jwt', auth: true, acl: false, express: true },
  { id: 'ours-express', module: 'ours-express', title: 'vonage-jwt-guard/express, cache on', auth: true, acl: true, express: true },
  { id: 'app-bare', module: 'app', title: 'a Fastify app, not ours (a response schema), no guard', auth: false, acl: false },
  { id: 'app-empty', module: 'app', options: { guard: 'empty' }, title: 'the app + an empty callback onRequest hook', auth: false, acl: false },
  { id: 'app-ours', module: 'app', options: { guard: 'ours' }, title: 'the app + vonage-jwt-guard, registered with { publicKey } only', auth: true, acl: true },
  { id: 'cli-serve', module: 'cli-serve', title: 'the CLI\'s serve: a JSON echo of the decision', auth: true, acl: true },
  { id: 'cli-mock', module: 'cli-mock', title: 'the CLI\'s mock --openapi: the path checked, a documented example', auth: true, acl: true },
  ...(BASELINE === undefined
    ? []
    : [
        { id: 'base-cache', module: 'ours-fastify', options: { dist: BASELINE }, title: 'baseline build, cache on', auth: true, acl: true, baseline: 'ours-cache' },
        { id: 'base-nocache', module: 'ours-fastify', options: { dist: BASELINE, cache: false }, title: 'baseline build, cache off', auth: true, acl: true, baseline: 'ours-nocache' },
        { id: 'base-5keys', module: 'ours-fastify', options: { dist: BASELINE, keys: 5 }, title: 'baseline build, five keys', auth: true, acl: true, baseline: 'ours-5keys' },
        { id: 'base-express', module: 'ours-express', options: { dist: BASELINE }, title: 'baseline build, Express, cache on', auth: true, acl: true, express: true, baseline: 'ours-express' },
        { id: 'base-app-ours', module: 'app', options: { guard: 'ours', dist: BASELINE }, title: 'the app + the baseline build', auth: true, acl: true, baseline: 'app-ours' }
      ])
]

const PEERS = ['fastify-bare', 'ours-cache', 'ours-nocache', 'fastify-jwt-cache', 'fastify-jwt-nocache', 'jose', 'floor', 'express-bare', 'express-jwt', 'ours-express', 'base-cache', 'base-nocache', 'base-express']
const CACHE_ONLY = ['ours-cache', 'ours-nocache', 'base-cache']

/**
 * `tokens`: `reused` (one token), `app` (one token of 15 minutes, minted for the run), `stream` (the next token of the distinct pool for every request,
 * a cursor kept across the warm-up and the runs of a server, so no token repeats until the pool
 * is used up), `cycle` (the first `pool` distinct tokens in order, over and over), `random` (the
 * first `pool` in random order), `unique-acl` (a stream of tokens whose nine ACL patterns are
 * their own, each request to the path its last pattern grants). Servers start afresh for every
 * scenario (an empty cache). `warmupRequests`: the warm-up is this many requests rather than
 * BENCH_WARMUP seconds (a cycling pool has to go round twice before the cache is what it will be:
 * a token is kept from its second sighting).
 */
export const SCENARIOS = [
  { id: 'reused', title: 'One token reused', detail: 'every request carries the same token (cache hits where there is a cache)', tokens: 'reused', servers: [...PEERS, 'fastify-empty', 'floor-cache', 'express-empty', 'cli-serve', 'cli-mock'] },
  { id: 'app', title: 'A Fastify app not ours, one token reused', detail: 'one route with a response schema, one Client SDK token of 15 minutes for every request (a cache hit), 10 connections', tokens: 'app', servers: ['app-bare', 'app-empty', 'app-ours', 'base-app-ours'] },
  { id: 'distinct', title: 'Distinct tokens', detail: 'every request carries a token no earlier request carried (all misses)', tokens: 'stream', servers: [...PEERS, 'ours-5keys', 'base-5keys', 'floor-async'] },
  { id: 'cycle-9500', title: '9,500 tokens cycling', detail: 'a pool of 9,500 tokens in order, over and over: fits the default cache (10,000)', tokens: 'cycle', pool: 9500, servers: CACHE_ONLY },
  { id: 'cycle-10500', title: '10,500 tokens cycling', detail: 'a pool of 10,500 tokens in order, over and over: 5% more than the cache holds', tokens: 'cycle', pool: 10_500, servers: CACHE_ONLY },
  { id: 'cycle-20000', title: '20,000 tokens cycling', detail: 'a pool of 20,000 tokens in order, over and over: twice the cache', tokens: 'cycle', pool: 20_000, servers: CACHE_ONLY },
  { id: 'random-20000', title: '20,000 tokens at random', detail: 'each request takes one of 20,000 tokens at random: at best half of them fit', tokens: 'random', pool: 20_000, servers: CACHE_ONLY },
  { id: 'unique-acl', title: 'An ACL of its own per token', detail: 'distinct tokens, each with nine ACL patterns no other token has; the last one grants the request', tokens: 'unique-acl', servers: ['ours-cache', 'floor', 'jose', 'base-cache'] },
  { id: 'conn-1', title: 'Distinct tokens, 1 connection', detail: 'all misses, one request at a time', tokens: 'stream', connections: 1, servers: ['ours-cache', 'floor', 'floor-async', 'base-cache'] },
  { id: 'conn-2', title: 'Distinct tokens, 2 connections', detail: 'all misses, two requests at a time', tokens: 'stream', connections: 2, servers: ['ours-cache', 'floor', 'floor-async', 'base-cache'] },
  { id: 'conn-100', title: 'Distinct tokens, 100 connections', detail: 'all misses, a hundred requests at a time', tokens: 'stream', connections: 100, servers: ['ours-cache', 'floor', 'floor-async', 'base-cache'] }
]

/**
 * Each target: the ratio of two servers' median req/s in one scenario (`versusScenario`: the
 * second server's figure in another scenario of the same run), a micro ratio, or a memory check.
 * `maxAddedCpu`: instead of a ratio, the server CPU per request (us) the first server spends over
 * the second, the difference of their medians, at most this much (issue 27: steadier than req/s).
 * `baseline`: needs BENCH_BASELINE. The spread is the lowest and highest per-round ratio.
 */
export const TARGETS = [
  { scenario: 'reused', server: 'ours-cache', versus: 'fastify-bare', min: 0.95, text: 'one token reused: ours >= 0.95x bare Fastify' },
  { scenario: 'reused', server: 'ours-cache', versus: 'fastify-empty', min: 0.95, text: 'one token reused: ours >= 0.95x Fastify with an empty onRequest hook' },
  { scenario: 'reused', server: 'ours-cache', versus: 'floor-cache', min: 1.0, text: 'one token reused: ours >= 1.0x the floor with a hand-written cache' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'floor-async', min: 1.0, text: 'distinct tokens: ours >= 1.0x the thread-pool floor' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'floor', min: 1.0, text: 'distinct tokens: ours >= 1.0x the floor (RSA on the event loop)' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'jose', min: 1.05, text: 'distinct tokens: ours >= 1.05x jose in a hook' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'fastify-jwt-nocache', min: 1.3, text: 'distinct tokens: ours >= 1.3x @fastify/jwt (cache off)' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'fastify-jwt-cache', min: 1.3, text: 'distinct tokens: ours >= 1.3x @fastify/jwt (cache on)' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'ours-nocache', min: 1.0, text: 'distinct tokens: ours, cache on >= 1.0x cache off (misses do not pay for the cache)' },
  { scenario: 'cycle-10500', server: 'ours-cache', versusScenario: 'distinct', versus: 'ours-cache', min: 2.0, text: '10,500 tokens cycling: ours >= 2x our distinct-token figure' },
  { scenario: 'unique-acl', server: 'ours-cache', versus: 'floor', min: 0.9, text: 'an ACL of its own per token: ours >= 0.9x the floor with ACL' },
  { memory: 'uniqueAcl', text: 'heap with 10,000 cached tokens of nine unique patterns each < 60 MiB' },
  { scenario: 'distinct', server: 'ours-5keys', versus: 'ours-cache', min: 0.9, text: 'five keys, the signer last: >= 0.9x one key' },
  { scenario: 'conn-1', server: 'ours-cache', versus: 'base-cache', min: 1.2, baseline: true, text: 'one connection, distinct tokens: >= 1.2x the baseline build' },
  { scenario: 'conn-1', server: 'ours-cache', versus: 'floor', min: 0.9, text: 'one connection, distinct tokens: ours >= 0.9x the floor (RSA on the event loop)' },
  { micro: 'verifyVsRaw', min: 0.82, text: 'verify() uncached >= 0.82x a bare crypto.verify' },
  { micro: 'verifyVsFloor', min: 0.9, text: 'verify() uncached >= 0.9x the floor that checks nothing (issue 27)' },
  { scenario: 'app', server: 'app-ours', versus: 'app-bare', maxAddedCpu: 1.0, text: 'a Fastify app not ours, one token reused: ours adds <= 1.0 us of server CPU per request (issue 27)' },
  { scenario: 'app', server: 'app-ours', versus: 'app-bare', min: 0.95, text: 'a Fastify app not ours, one token reused: ours >= 0.95x the app without the guard (issue 27)' },
  { scenario: 'app', server: 'app-ours', versus: 'app-empty', maxAddedCpu: 1.0, text: 'a Fastify app not ours, one token reused: ours adds <= 1.0 us over an empty callback onRequest hook' },
  { scenario: 'distinct', server: 'ours-express', versus: 'express-jwt', min: 1.1, text: 'Express, distinct tokens: ours >= 1.1x express-jwt' },
  { scenario: 'reused', server: 'ours-express', versus: 'express-bare', min: 0.95, text: 'Express, one token reused: ours >= 0.95x bare Express' },
  { scenario: 'reused', server: 'ours-express', versus: 'express-empty', min: 0.95, text: 'Express, one token reused: ours >= 0.95x Express with an empty middleware' },
  { scenario: 'reused', server: 'ours-express', versus: 'express-empty', maxAddedCpu: 1.5, text: 'Express, one token reused: ours adds <= 1.5 us of server CPU per request over an empty middleware (issue 27)' },
  { memory: 'distinct', text: '100,000 distinct tokens: the heap stays within the cache bound' },
  { scenario: 'reused', server: 'cli-mock', versus: 'cli-serve', min: 0.8, text: 'mock --openapi, one token reused, a documented example: >= 0.8x serve\'s echo' }
]
