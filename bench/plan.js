/** What is measured: the servers, the scenarios and the targets of issue 5 (ratios within one run). */
import { BASELINE } from './dist.js'

/**
 * `auth`: answers 401 without a token; `acl`: enforces the token's acl.paths; `express`: compared
 * with bare Express; `baseline`: the server of the same id without `base-`, on the BENCH_BASELINE build.
 */
export const SERVERS = [
  { id: 'fastify-bare', module: 'fastify-bare', title: 'Fastify, no auth (ceiling)', auth: false, acl: false },
  { id: 'ours-cache', module: 'ours-fastify', title: 'vonage-jwt-guard, cache on', auth: true, acl: true },
  { id: 'ours-nocache', module: 'ours-fastify', options: { cache: false }, title: 'vonage-jwt-guard, cache off', auth: true, acl: true },
  { id: 'fastify-jwt-cache', module: 'fastify-jwt', options: { cache: true }, title: '@fastify/jwt, cache on', auth: true, acl: false },
  { id: 'fastify-jwt-nocache', module: 'fastify-jwt', title: '@fastify/jwt, cache off', auth: true, acl: false },
  { id: 'jose', module: 'fastify-jose', title: 'Fastify + jose jwtVerify + precompiled minimatch', auth: true, acl: true },
  { id: 'floor', module: 'fastify-floor', title: 'Fastify + hand-written crypto.verify (floor)', auth: true, acl: true },
  { id: 'floor-async', module: 'fastify-floor-async', title: 'floor with crypto.verify on the libuv pool (callback)', auth: true, acl: true, experiment: true },
  { id: 'express-bare', module: 'express-bare', title: 'Express, no auth (Express ceiling)', auth: false, acl: false, express: true },
  { id: 'express-jwt', module: 'express-jwt', title: 'Express + express-jwt', auth: true, acl: false, express: true },
  { id: 'ours-express', module: 'ours-express', title: 'vonage-jwt-guard/express, cache on', auth: true, acl: true, express: true },
  ...(BASELINE === undefined
    ? []
    : [
        { id: 'base-cache', module: 'ours-fastify', options: { dist: BASELINE }, title: 'baseline build, cache on', auth: true, acl: true, baseline: 'ours-cache' },
        { id: 'base-nocache', module: 'ours-fastify', options: { dist: BASELINE, cache: false }, title: 'baseline build, cache off', auth: true, acl: true, baseline: 'ours-nocache' },
        { id: 'base-express', module: 'ours-express', options: { dist: BASELINE }, title: 'baseline build, Express, cache on', auth: true, acl: true, express: true, baseline: 'ours-express' }
      ])
]

export const SCENARIOS = [
  { id: 'reused', title: 'One token reused', detail: 'every request carries the same token (cache hits where there is a cache)' },
  { id: 'distinct', title: 'Distinct tokens', detail: 'each request takes the next token of a pool larger than every cache (all misses)' }
]

/** Each target: a ratio of two servers' median req/s in one scenario, or a micro ratio. */
export const TARGETS = [
  { scenario: 'reused', server: 'ours-cache', versus: 'fastify-bare', min: 0.90, text: 'one token reused: ours (cache on) >= 0.90x bare Fastify' },
  { scenario: 'reused', server: 'ours-cache', versus: 'fastify-jwt-cache', min: 1.0, text: 'one token reused: ours (cache on) ahead of @fastify/jwt cache on' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'fastify-jwt-nocache', min: 1.05, text: 'distinct tokens: ours >= 1.05x @fastify/jwt cache off' },
  { scenario: 'distinct', server: 'ours-cache', versus: 'floor', min: 0.90, text: 'distinct tokens: ours >= 0.90x the crypto.verify floor plugin' },
  { micro: 'verifyVsRaw', min: 0.85, text: 'verify() uncached >= 0.85x raw crypto.verify ops/s' },
  { memory: true, text: '100,000 distinct tokens: the heap stays within the cache bound' }
]
