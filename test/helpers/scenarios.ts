/**
 * The scenario table both adapters must answer identically (SPEC section 5 and the route
 * settings of section 4), and how each adapter runs one scenario: Fastify through inject()
 * (or a real socket where inject would rewrite the target), Express 4 and 5 over real sockets.
 */
import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tokenGenerate } from '@vonage/jwt'
import type { Express, NextFunction, Request, Response } from 'express'
import { expressVonageJwt, isGuardError, type ExpressGuardOptions } from '../../lib/express.js'
import { bearer, buildApp } from './app.js'
import { rawRequest } from './http.js'
import { APP_ID, b64, claims, keys, NOW, NOW_MS, otherKeys, signRaw, token } from './keys.js'

/** The real clock: tokens of Vonage's own SDK carry the real time. */
const REAL_CLOCK = { now: Date.now }

export const REALM = 'Bearer realm="vonage-jwt-guard"'
export const INVALID_TOKEN = `${REALM}, error="invalid_token", error_description="`
export const INVALID_REQUEST = `${REALM}, error="invalid_request", error_description="`
export const INSUFFICIENT_SCOPE = `${REALM}, error="insufficient_scope", error_description="`

/** Route settings: Fastify `config.jwtGuard`, the Express middleware's own options. */
export interface RouteSettings {
  optional?: boolean
  acl?: boolean
  aclPath?: string | ((request: unknown, path: string) => unknown)
}

export interface Scenario {
  name: string
  /** The request target, sent byte for byte. @default '/v1/users' */
  url?: string
  method?: 'GET' | 'POST' | 'HEAD' | 'DELETE'
  headers?: Record<string, string | string[]>
  /** Guard options over `{ publicKey, now }`. */
  options?: Record<string, unknown>
  route?: RouteSettings
  /** inject() normalizes this target (dot segments, %2e): Fastify runs it over a real socket. */
  socket?: boolean
  status: number
  code?: string
  /** The exact challenge, or its prefix when it ends with `error_description="`. */
  challenge?: string
  /** The exact message of the error body. */
  message?: string
  /** For a 200: the `auth` the handler sees, null or with this `grantedBy`. */
  auth?: null | { grantedBy: string | null }
}

export async function scenarios (): Promise<Scenario[]> {
  const valid = await token()
  const [h, p] = valid.split('.')
  const custom = { tokenSources: [{ cookie: 'vjg' }, { header: 'x-token', scheme: null }, { query: 'jwt' }] }
  // The rule @vonage/jwt's own test suite writes, with its trailing slash.
  const messages = tokenGenerate(APP_ID, keys.privatePem, { acl: { paths: { '/messages/*/': { methods: ['GET'] } } } })
  return [
    { name: '@vonage/jwt token, acl /messages/*/: GET /messages/MSG-1', url: '/messages/MSG-1', headers: bearer(messages), options: REAL_CLOCK, status: 200, auth: { grantedBy: '/messages/*/' } },
    { name: '@vonage/jwt token, acl /messages/*/: GET /messages/MSG-1/', url: '/messages/MSG-1/', headers: bearer(messages), options: REAL_CLOCK, status: 200, auth: { grantedBy: '/messages/*/' } },
    { name: '@vonage/jwt token, acl /messages/*/: POST is not listed', method: 'POST', url: '/messages/MSG-1', headers: bearer(messages), options: REAL_CLOCK, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: '@vonage/jwt token, acl /messages/*/: one segment only', url: '/messages/MSG-1/status', headers: bearer(messages), options: REAL_CLOCK, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },

    { name: 'valid token on an ACL path', url: '/v1/users/abc', headers: bearer(valid), status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'valid token, HEAD counts as GET', method: 'HEAD', url: '/v1/users/abc', headers: bearer(valid), status: 200 },
    { name: 'valid token, POST', method: 'POST', url: '/v1/conversations/c', headers: bearer(valid), status: 200, auth: { grantedBy: '/*/conversations/**' } },
    { name: 'scheme is case-insensitive', url: '/v1/users', headers: { authorization: `bEaReR ${valid}` }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'the query is dropped before the ACL', url: '/v1/users?next=/v1/calls', headers: bearer(valid), status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'root token (no acl) is allowed everywhere', url: '/v1/calls/x', headers: bearer(await token({ acl: undefined })), status: 200, auth: { grantedBy: null } },
    { name: 'token from a cookie', url: '/v1/users', headers: { cookie: `a=b; vjg=${valid}` }, options: custom, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'token from a custom header without scheme', url: '/v1/users', headers: { 'x-token': valid }, options: custom, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'token from the query', url: `/v1/users?jwt=${valid}`, options: custom, status: 200, auth: { grantedBy: '/*/users/**' } },

    { name: 'no token', url: '/v1/users', status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'another scheme is no bearer token', url: '/v1/users', headers: { authorization: 'Basic dXNlcjpwYXNz' }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'a longer scheme that starts with Bearer is another scheme', url: '/v1/users', headers: { authorization: `Bearerx ${valid}` }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    // Only letters fold: "^" and "~" differ by the bit that separates "A" from "a".
    { name: 'a custom scheme in another letter case', url: '/v1/users', headers: { 'x-token': `tOK^EN ${valid}` }, options: { tokenSources: [{ header: 'x-token', scheme: 'Tok^en' }] }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'a scheme one case bit away that is no letter', url: '/v1/users', headers: { 'x-token': `Tok~en ${valid}` }, options: { tokenSources: [{ header: 'x-token', scheme: 'Tok^en' }] }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'Authorization is not a source when tokenSources leave it out', url: '/v1/users', headers: bearer(valid), options: custom, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'a custom realm', url: '/v1/users', options: { realm: 'my-api' }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: 'Bearer realm="my-api"' },

    { name: 'a bare scheme', url: '/v1/users', headers: { authorization: 'Bearer' }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'empty bearer token', url: '/v1/users', headers: { authorization: 'Bearer ' }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'two parts', url: '/v1/users', headers: bearer(`${h}.${p}`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'five parts (JWE)', url: '/v1/users', headers: bearer(`${valid}.${h}.${p}`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'base64 padding', url: '/v1/users', headers: bearer(`${valid}==`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'payload not JSON', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, 'not json')), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'payload a JSON array', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, [1, 2])), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'header not an object', url: '/v1/users', headers: bearer(signRaw('"RS256"', claims())), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'over maxTokenLength', url: '/v1/users', headers: bearer(valid), options: { maxTokenLength: 100 }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'typ other than JWT', url: '/v1/users', headers: bearer(await token({}, { header: { typ: 'at+jwt' } })), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },

    { name: 'two tokens from two sources', url: `/v1/users?token=${valid}`, headers: bearer(valid), options: { tokenSources: [{ header: 'authorization' }, { query: 'token' }] }, status: 400, code: 'VJG_TOKEN_AMBIGUOUS', challenge: INVALID_REQUEST },
    { name: 'two Authorization headers (req.headers keeps one)', url: '/v1/users', headers: { authorization: [`Bearer ${valid}`, `Bearer ${valid}`] }, socket: true, status: 400, code: 'VJG_TOKEN_AMBIGUOUS', challenge: INVALID_REQUEST },
    { name: 'a cookie and a custom header', url: '/v1/users', headers: { 'x-token': valid, cookie: `vjg=${valid}` }, options: custom, status: 400, code: 'VJG_TOKEN_AMBIGUOUS', challenge: INVALID_REQUEST },

    { name: 'alg none', url: '/v1/users', headers: bearer(`${b64({ alg: 'none' })}.${p}.`), status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'alg none with a signature part', url: '/v1/users', headers: bearer(`${b64({ alg: 'none' })}.${p}.AAAA`), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'alg HS256', url: '/v1/users', headers: bearer(signRaw({ alg: 'HS256' }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'alg RS384 not in algorithms', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS384' }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'crit header', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256', crit: ['exp'] }, claims())), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },

    { name: 'signed by another key', url: '/v1/users', headers: bearer(await token({}, { key: otherKeys.privateKey })), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'payload swapped after signing', url: '/v1/users', headers: bearer(`${h}.${b64(claims({ sub: 'admin' }))}.${valid.split('.')[2]}`), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },

    { name: 'unknown application_id with publicKeys', url: '/v1/users', headers: bearer(await token({ application_id: 'someone-else' })), options: { publicKey: undefined, publicKeys: { [APP_ID]: keys.publicPem } }, status: 401, code: 'VJG_KEY_UNKNOWN', challenge: INVALID_TOKEN },

    { name: 'no jti', url: '/v1/users', headers: bearer(await token({ jti: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'no application_id', url: '/v1/users', headers: bearer(await token({ application_id: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'no iat', url: '/v1/users', headers: bearer(await token({ iat: undefined })), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'neither iat nor exp', url: '/v1/users', headers: bearer(await token({ iat: undefined, exp: undefined })), options: { requiredClaims: ['application_id'] }, status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },

    { name: 'a docs-style string exp ("exp": "<digits>") is that NumericDate', url: '/v1/users', headers: bearer(await token({ exp: String(NOW + 60) })), status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'a string iat, as a Vonage walkthrough sent it', url: '/v1/users', headers: bearer(await token({ iat: String(NOW - 10), exp: undefined })), status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'a string exp with a leading zero', url: '/v1/users', headers: bearer(await token({ exp: `0${NOW + 60}` })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'a string exp that is not digits', url: '/v1/users', headers: bearer(await token({ exp: `${NOW + 60}.5` })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'a string exp with allowNumericStringDates: false', url: '/v1/users', headers: bearer(await token({ exp: String(NOW + 60) })), options: { allowNumericStringDates: false }, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'exp 1e309', url: '/v1/users', headers: bearer(signRaw({ alg: 'RS256' }, `{"application_id":"${APP_ID}","iat":${NOW},"jti":"j","exp":1e309}`)), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'exp before iat', url: '/v1/users', headers: bearer(await token({ exp: NOW - 20 })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'acl of the wrong shape', url: '/v1/users', headers: bearer(await token({ acl: { paths: ['/*/users/**'] } })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'empty jti', url: '/v1/users', headers: bearer(await token({ jti: '' })), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },

    { name: 'application_id not allowed', url: '/v1/users', headers: bearer(valid), options: { applicationId: ['another-app'] }, status: 401, code: 'VJG_APPLICATION_MISMATCH', challenge: INVALID_TOKEN },

    { name: 'expired', url: '/v1/users', headers: bearer(await token({ iat: NOW - 1000, exp: NOW - 31 })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'no exp: 15 minutes from iat', url: '/v1/users', headers: bearer(await token({ iat: NOW - 931, exp: undefined })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'exp a week away is capped at iat + 24 h', url: '/v1/users', headers: bearer(await token({ iat: NOW - 86_431, exp: NOW + 7 * 86_400 })), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },

    { name: 'iat in the future', url: '/v1/users', headers: bearer(await token({ iat: NOW + 31 })), status: 401, code: 'VJG_TOKEN_NOT_YET_VALID', challenge: INVALID_TOKEN },
    { name: 'nbf in the future', url: '/v1/users', headers: bearer(await token({ nbf: NOW + 31 })), status: 401, code: 'VJG_TOKEN_NOT_YET_VALID', challenge: INVALID_TOKEN },

    { name: 'lifetime under minLifetime', url: '/v1/users', headers: bearer(await token({ exp: NOW - 10 + 29 })), options: { minLifetime: 30 }, status: 401, code: 'VJG_LIFETIME_TOO_SHORT', challenge: INVALID_TOKEN },
    { name: 'lifetime at minLifetime', url: '/v1/users', headers: bearer(await token({ exp: NOW - 10 + 30 })), options: { minLifetime: 30 }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'lifetime over 24 h with policy reject', url: '/v1/users', headers: bearer(await token({ exp: NOW - 10 + 86_401 })), options: { lifetimePolicy: 'reject' }, status: 401, code: 'VJG_LIFETIME_EXCEEDED', challenge: INVALID_TOKEN },

    { name: 'path outside the ACL', url: '/v1/calls/abc', headers: bearer(valid), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: '/*/users/** does not match /v1/userss', url: '/v1/userss', headers: bearer(valid), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'defaultAcl: a token without acl gets it', url: '/v1/users/x', headers: bearer(await token({ acl: undefined })), options: { defaultAcl: { paths: { '/*/users/**': { methods: ['GET'] } } } }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'defaultAcl: outside it a token without acl is refused', url: '/v1/calls/x', headers: bearer(await token({ acl: undefined })), options: { defaultAcl: { paths: { '/*/users/**': { methods: ['GET'] } } } }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'defaultAcl: a token with its own acl is judged by that', url: '/v1/conversations/c', headers: bearer(valid), options: { defaultAcl: { paths: { '/*/users/**': { methods: ['GET'] } } } }, status: 200, auth: { grantedBy: '/*/conversations/**' } },
    { name: 'root token (no acl) with requireAcl', url: '/v1/users', headers: bearer(await token({ acl: undefined })), options: { requireAcl: true }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'methods not listed', method: 'DELETE', url: '/v1/users/x', headers: bearer(await token({ acl: { paths: { '/*/users/**': { methods: ['GET'] } } } })), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },

    { name: 'path parameter', url: '/v1/users;jsessionid=x', headers: bearer(valid), status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'encoded slash', url: '/v1/users%2F..%2Fcalls', headers: bearer(valid), status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'path checked before the token', url: '/v1//users', status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'dot-dot segment', url: '/v1/users/../calls', headers: bearer(valid), socket: true, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'dot segment', url: '/v1/users/./x', headers: bearer(valid), socket: true, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'trailing dot-dot', url: '/v1/users/..', headers: bearer(valid), socket: true, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'encoded dot-dot', url: '/v1/calls/%2e%2e/users/x', headers: bearer(valid), socket: true, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'absolute-form target', url: 'http://127.0.0.1/v1/users', headers: bearer(valid), socket: true, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },

    { name: 'a throwing aclFilter fails closed', url: '/v1/users/x', headers: bearer(await token({ acl: { paths: { '/v1/users/**': { filters: { a: 1 } } } } })), options: { aclFilter: () => { throw new Error('down') } }, status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM },
    { name: 'a rejecting getToken fails closed', url: '/v1/users', options: { getToken: async () => { throw new Error('down') } }, status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM },

    { name: 'optional: no token', url: '/v1/users/me', route: { optional: true }, status: 200, auth: null },
    { name: 'optional: a valid token', url: '/v1/users/me', headers: bearer(valid), route: { optional: true }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'optional: a bad token is still refused', url: '/v1/users/me', headers: bearer(`${valid}x`), route: { optional: true }, status: 401, code: 'VJG_TOKEN_MALFORMED', challenge: INVALID_TOKEN },
    { name: 'optional: a forged token is still refused', url: '/v1/users/me', headers: bearer(await token({}, { key: otherKeys.privateKey })), route: { optional: true }, status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'optional: the ACL still applies', url: '/v1/calls/x', headers: bearer(valid), route: { optional: true }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'optional: the path is still checked', url: '/v1//users', route: { optional: true }, status: 400, code: 'VJG_PATH_INVALID', challenge: INVALID_REQUEST },
    { name: 'acl false: authenticate only', url: '/v1/calls/x', headers: bearer(valid), route: { acl: false }, status: 200, auth: { grantedBy: null } },
    { name: 'acl false: a token is still required', url: '/v1/calls/x', route: { acl: false }, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'route aclPath strips the prefix', url: '/api/v1/users/x', headers: bearer(valid), route: { aclPath: '/api' }, status: 200, auth: { grantedBy: '/*/users/**' } },
    { name: 'route aclPath: outside the ACL after stripping', url: '/api/v1/calls/x', headers: bearer(valid), route: { aclPath: '/api' }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'route aclPath: a path outside the prefix grants nothing', url: '/v1/users/x', headers: bearer(valid), route: { aclPath: '/api' }, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'option aclPath strips the prefix', url: '/api/v1/users/x', headers: bearer(valid), options: { aclPath: '/api' }, status: 200, auth: { grantedBy: '/*/users/**' } },
    // aclPath maps the decoded canonical path, computed once; nothing parses its answer again.
    ...await aclPathScenarios(),
    { name: 'without aclPath the prefix is part of the path', url: '/api/v1/users/x', headers: bearer(valid), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE }
  ]
}

const identity = (_request: unknown, path: string): string => path

/** aclPath as an option and per route, as a prefix and as a function, over decoded paths. */
async function aclPathScenarios (): Promise<Scenario[]> {
  const users = bearer(await token({ acl: { paths: { '/*/users': {} } } }))
  const files = bearer(await token({ acl: { paths: { '/*/files/**': {} } } }))
  const root = bearer(await token({ acl: undefined }))
  const rows: Scenario[] = []
  for (const [where, place] of [['option', 'options'], ['route', 'route']] as const) {
    const mapped = (aclPath: RouteSettings['aclPath']): Pick<Scenario, 'options' | 'route'> => ({ [place]: { aclPath } })
    rows.push(
      { name: `${where} aclPath identity: a decoded "?" is part of the path, not a query`, url: '/v1/users%3F/secret/admin', headers: users, ...mapped(identity), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE, message: 'GET /v1/users?/secret/admin is not granted by the token acl' },
      { name: `${where} aclPath identity: a decoded "#" is part of the path`, url: '/v1/users%23/secret', headers: users, ...mapped(identity), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE, message: 'GET /v1/users#/secret is not granted by the token acl' },
      { name: `${where} aclPath identity: the path without "?" is still granted`, url: '/v1/users', headers: users, ...mapped(identity), status: 200, auth: { grantedBy: '/*/users' } },
      { name: `${where} aclPath identity: non-ASCII decoded`, url: '/v1/files/caf%C3%A9', headers: files, ...mapped(identity), status: 200, auth: { grantedBy: '/*/files/**' } },
      { name: `${where} aclPath identity: a space decoded`, url: '/v1/files/a%20b', headers: files, ...mapped(identity), status: 200, auth: { grantedBy: '/*/files/**' } },
      { name: `${where} aclPath identity: brackets decoded`, url: '/v1/files/a%5Bb%5D', headers: files, ...mapped(identity), status: 200, auth: { grantedBy: '/*/files/**' } },
      { name: `${where} aclPath function sees the decoded path and maps it`, url: '/proxy/v1/files/caf%C3%A9', headers: files, ...mapped((_r: unknown, p: string) => p.replace(/^\/proxy/, '')), status: 200, auth: { grantedBy: '/*/files/**' } },
      { name: `${where} aclPath prefix strips from the decoded path`, url: '/proxy/v1/files/caf%C3%A9', headers: files, ...mapped('/proxy'), status: 200, auth: { grantedBy: '/*/files/**' } },
      { name: `${where} aclPath prefix: a decoded "?" stays in the path`, url: '/proxy/v1/users%3F/secret', headers: users, ...mapped('/proxy'), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE, message: 'GET /v1/users?/secret is not granted by the token acl (the request\'s path /proxy/v1/users?/secret, with aclPath "/proxy" stripped)' },
      { name: `${where} aclPath null: no rule grants`, url: '/v1/users', headers: users, ...mapped(() => null), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
      { name: `${where} aclPath null: a root token still passes`, url: '/v1/users', headers: root, ...mapped(() => null), status: 200, auth: { grantedBy: null } },
      { name: `${where} aclPath returns undefined: fail closed`, url: '/v1/users', headers: users, ...mapped(() => undefined), status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM, message: 'The guard is misconfigured for this request (see the server log)' },
      { name: `${where} aclPath returns a relative path: fail closed`, url: '/v1/users', headers: users, ...mapped((_r: unknown, p: string) => p.slice(1)), status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM },
      { name: `${where} aclPath returns a promise: fail closed`, url: '/v1/users', headers: users, ...mapped(async (_r: unknown, p: string) => p), status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM },
      { name: `${where} aclPath returns a number: fail closed, even for a root token`, url: '/v1/users', headers: root, ...mapped(() => 42), status: 503, code: 'VJG_UNAVAILABLE', challenge: REALM }
    )
  }
  rows.push({ name: 'without aclPath: a decoded "?" is part of the path', url: '/v1/users%3F/secret/admin', headers: users, status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE, message: 'GET /v1/users?/secret/admin is not granted by the token acl' })
  return rows
}

/** One answer, whichever adapter and transport gave it. */
export interface Answer {
  status: number
  challenge: string | undefined
  contentType: string | undefined
  body: string
}

function guardOptions (scenario: Scenario): Record<string, unknown> {
  return { publicKey: keys.publicPem, now: () => NOW_MS, ...scenario.options }
}

/** Fastify: through inject(), or over a real socket when the scenario says inject would rewrite it. */
export async function runFastify (scenario: Scenario): Promise<Answer> {
  const app = await buildApp(guardOptions(scenario), app => {
    app.all('/*', { config: { jwtGuard: scenario.route } }, async (request) => ({ auth: request.auth }))
  })
  try {
    if (scenario.socket === true) {
      await app.listen({ port: 0, host: '127.0.0.1' })
      return fromRaw(await rawRequest((app.server.address() as AddressInfo).port, scenario.url ?? '/v1/users', scenario.headers, scenario.method))
    }
    const res = await app.inject({ method: scenario.method ?? 'GET', url: scenario.url ?? '/v1/users', headers: scenario.headers })
    return {
      status: res.statusCode,
      challenge: res.headers['www-authenticate'] as string | undefined,
      contentType: res.headers['content-type'] as string | undefined,
      body: res.body
    }
  } finally {
    await app.close()
  }
}

function fromRaw (res: { status: number, headers: Record<string, string>, body: string }): Answer {
  return { status: res.status, challenge: res.headers['www-authenticate'], contentType: res.headers['content-type'], body: res.body }
}

/**
 * The error-handler pattern of the README's Express example: the guard's errors become Fastify's
 * body `{ statusCode, code, error, message }` with the challenge header; anything else goes on.
 */
export function guardErrorHandler (err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (!isGuardError(err)) return next(err)
  res.status(err.status).set(err.headers).json({ statusCode: err.statusCode, code: err.code, error: err.error, message: err.message })
}

export type ExpressFactory = () => Express

/** An Express app guarded by one middleware; every request that passes echoes `req.auth`. */
export function expressApp (express: ExpressFactory, options: Partial<ExpressGuardOptions>, errorHandler = true): Express {
  const app = express()
  app.set('env', 'test') // finalhandler would print every rejection's stack to stderr otherwise
  app.use(expressVonageJwt({ publicKey: keys.publicPem, now: () => NOW_MS, ...options }))
  app.use((req, res) => { res.json({ auth: req.auth }) })
  if (errorHandler) app.use(guardErrorHandler)
  return app
}

/** Listen on a free port, run `fn` with it, then close. */
export async function withServer<T> (listener: RequestListener, fn: (port: number) => Promise<T>): Promise<T> {
  const server = createServer(listener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  try {
    return await fn((server.address() as AddressInfo).port)
  } finally {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
}

/** Express (4 or 5): always over a real socket, the target sent byte for byte. */
export async function runExpress (express: ExpressFactory, scenario: Scenario): Promise<Answer> {
  const app = expressApp(express, { ...guardOptions(scenario), ...scenario.route })
  return withServer(app, async port => fromRaw(await rawRequest(port, scenario.url ?? '/v1/users', scenario.headers, scenario.method)))
}
