/**
 * The profiles of SPEC 2.2 end to end: Video client tokens made by `@vonage/video`, OpenTok REST
 * tokens made by the `opentok` SDK, and Vonage signed webhooks (no SDK mints those: jose signs
 * them, and `@vonage/jwt` confirms Vonage's own verifier accepts what we sign). Every row asserts
 * the status, the code and the challenge, and that a refused request never reached the handler.
 */
import { createHash, randomUUID, type KeyObject } from 'node:crypto'
import { request as httpRequest, type RequestListener } from 'node:http'
import { createRequire } from 'node:module'
import { verifySignature as vonageVerifySignature } from '@vonage/jwt'
import { Video } from '@vonage/video'
import express, { type Express, type NextFunction, type Request, type Response } from 'express'
import Fastify from 'fastify'
import { decodeJwt, SignJWT } from 'jose'
import t from 'tap'
import { expressVonageJwt, isGuardError } from '../lib/express.js'
import vonageJwtGuard, { createVerifier } from '../lib/index.js'
import { APP_ID, keys, NOW, otherKeys } from './helpers/keys.js'
import { withServer } from './helpers/scenarios.js'

const REALM = 'Bearer realm="vonage-jwt-guard"'
const INVALID_TOKEN = `${REALM}, error="invalid_token", error_description="`
const INSUFFICIENT_SCOPE = `${REALM}, error="insufficient_scope", error_description="`

// The opentok SDK ships no types: the REST token generator is its public `generateJwt()`.
const require = createRequire(import.meta.url)
const OpenTok = require('opentok') as new (apiKey: string | number, apiSecret: string) => { generateJwt (): string }

const API_KEY = '47123456'
const API_SECRET = '0123456789abcdef0123456789abcdef01234567'
const WEBHOOK_KEY = 'a1b2c3d4'
const SIGNATURE_SECRET = 'vonage-signature-secret-of-32-bytes'
const SESSION_ID = '1_MX40NzEyMzQ1Nn5-MTcwMDAwMDAwMDAwMH5hYmNkZWZnaGlqfn4'

function sha256 (data: string): string {
  return createHash('sha256').update(data).digest('hex')
}

function iatOf (token: string): number {
  const iat = decodeJwt(token).iat
  if (typeof iat !== 'number') throw new Error('the SDK token has no iat')
  return iat
}

/** HS256 with jose, for the shapes no SDK makes. */
function hs256 (claims: Record<string, unknown>, secret: string | Buffer, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header } as { alg: string }).sign(Buffer.from(secret))
}

function rs256 (claims: Record<string, unknown>, key: KeyObject = keys.privateKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(key)
}

/** A Video client token's claims as generateClientToken writes them, at NOW; undefined deletes. */
function videoClaims (over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    scope: 'session.connect',
    session_id: SESSION_ID,
    role: 'publisher',
    initial_layout_class_list: '',
    sub: 'video',
    acl: { paths: { '/session/**': {} } },
    application_id: APP_ID,
    iat: NOW - 10,
    exp: NOW + 86_400,
    jti: randomUUID()
  }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

/**
 * A Video client token as the Java SDK writes it (VideoClient.generateToken on vonage-jwt-jdk's
 * JwtGenerator; the .NET SDK's has the same claims): a `type` header rather than `typ`, and no
 * `acl` and no `sub`, unlike @vonage/video's.
 */
function javaStyleVideoToken (over: Record<string, unknown> = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    application_id: APP_ID,
    exp: NOW - 10 + 86_400,
    role: 'publisher',
    session_id: SESSION_ID,
    scope: 'session.connect',
    iat: NOW - 10,
    jti: randomUUID(),
    ...over
  }
  return new SignJWT(claims).setProtectedHeader({ type: 'JWT', alg: 'RS256' } as { alg: string }).sign(keys.privateKey)
}

function opentokClaims (over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { iss: API_KEY, ist: 'project', iat: NOW - 10, exp: NOW + 290 }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

/** A signed webhook token as Vonage sends it, for this body (or query). */
function webhookClaims (signed: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    iat: NOW - 5,
    jti: randomUUID(),
    iss: 'Vonage',
    payload_hash: sha256(signed),
    api_key: WEBHOOK_KEY,
    application_id: APP_ID
  }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

const VIDEO = { profile: 'vonage-video', publicKey: keys.publicPem }
const OPENTOK = { profile: 'opentok', secrets: { [API_KEY]: API_SECRET } }
const WEBHOOK = { profile: 'vonage-webhook', secrets: { [WEBHOOK_KEY]: SIGNATURE_SECRET } }

interface ProfileCase {
  name: string
  options: Record<string, unknown>
  /** The clock, NumericDate seconds. */
  now: number
  method?: 'GET' | 'POST' | 'PUT' | 'HEAD'
  url: string
  headers?: Record<string, string>
  /** The raw body bytes sent, as a string. */
  body?: string
  status: number
  code?: string
  challenge?: string
  /** For a 200: the pattern that granted (undefined: not checked). */
  grantedBy?: string | null
  /** For a 200: the body the handler saw, parsed by the framework's own JSON parser. */
  parsed?: unknown
}

async function profileCases (): Promise<ProfileCase[]> {
  // Tokens from the vendors' SDKs. They take the real clock: the guard's clock is set from their iat.
  const video = new Video({ applicationId: APP_ID, privateKey: keys.privatePem })
  const sdkVideo = video.generateClientToken(SESSION_ID)
  const videoNow = iatOf(sdkVideo) + 10
  const sdkModerator = video.generateClientToken(SESSION_ID, {
    role: 'moderator',
    data: 'name=Ada',
    initialLayoutClassList: ['focus', 'full'],
    expireTime: videoNow + 30 * 86_400 - 20
  })
  const sdkSubscriber = video.generateClientToken(SESSION_ID, { role: 'subscriber' })
  const sdkOtherKey = new Video({ applicationId: APP_ID, privateKey: otherKeys.privatePem }).generateClientToken(SESSION_ID)
  // Vonage's own video reference app passed expireTime in milliseconds; Vonage accepted the tokens.
  const sdkMillis = video.generateClientToken(SESSION_ID, { expireTime: (videoNow + 7 * 86_400) * 1000 })
  const millisIat = iatOf(sdkMillis)

  const sdkOpentok = new OpenTok(API_KEY, API_SECRET).generateJwt()
  const opentokNow = iatOf(sdkOpentok) + 10
  const sdkOpentokNumericKey = new OpenTok(Number(API_KEY), API_SECRET).generateJwt()
  const sdkOpentokOtherProject = new OpenTok('47999999', API_SECRET).generateJwt()
  const sdkOpentokWrongSecret = new OpenTok(API_KEY, 'ffffffffffffffffffffffffffffffffffffffff').generateJwt()

  const body = '{"message_uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","status":"delivered","to":"447700900000"}'
  const parsed = JSON.parse(body)
  const bigBody = JSON.stringify({ text: 'é'.repeat(150_000) })
  const query = 'msisdn=447700900000&to=447700900001&text=Hello%20world&type=text'
  const webhook = (over: Record<string, unknown> = {}, signed = body) => hs256(webhookClaims(signed, over), SIGNATURE_SECRET)
  const json = { 'content-type': 'application/json' }
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  return [
    // vonage-video: tokens of @vonage/video's generateClientToken.
    { name: 'video: SDK publisher token on /session/**', options: VIDEO, now: videoNow, url: `/session/${SESSION_ID}`, headers: bearer(sdkVideo), status: 200, grantedBy: '/session/**' },
    { name: 'video: SDK moderator token with data, layout and a 30-day expiry', options: VIDEO, now: videoNow, url: '/session/x/connection', headers: bearer(sdkModerator), status: 200, grantedBy: '/session/**' },
    { name: 'video: SDK subscriber token', options: VIDEO, now: videoNow, method: 'POST', url: '/session/x', headers: bearer(sdkSubscriber), status: 200, grantedBy: '/session/**' },
    { name: 'video: the /session/** acl denies other paths', options: VIDEO, now: videoNow, url: '/v2/project/x/archive', headers: bearer(sdkVideo), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: SDK token signed by another application key', options: VIDEO, now: videoNow, url: '/session/x', headers: bearer(sdkOtherKey), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: SDK token past its 24 h default expiry', options: VIDEO, now: videoNow + 86_400 + 30, url: '/session/x', headers: bearer(sdkVideo), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'video: Java-style token without acl, inside /session/**', options: VIDEO, now: NOW, method: 'POST', url: `/session/${SESSION_ID}/connection`, headers: bearer(await javaStyleVideoToken()), status: 200, grantedBy: '/session/**' },
    { name: 'video: Java-style token without acl is no root token', options: VIDEO, now: NOW, url: '/v1/users/x', headers: bearer(await javaStyleVideoToken()), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: Java-style token without acl, outside /session/**', options: VIDEO, now: NOW, url: '/v2/project/x/archive', headers: bearer(await javaStyleVideoToken({ role: 'moderator' })), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: @vonage/video token without its acl, same as Java', options: VIDEO, now: NOW, url: '/v1/calls', headers: bearer(await rs256(videoClaims({ acl: undefined }))), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: defaultAcl null makes a token without acl root again', options: { ...VIDEO, defaultAcl: null }, now: NOW, url: '/v1/users/x', headers: bearer(await javaStyleVideoToken()), status: 200, grantedBy: null },
    { name: 'video: a defaultAcl of your own', options: { ...VIDEO, defaultAcl: { paths: { '/v2/project/*/session/**': {} } } }, now: NOW, url: '/v2/project/p1/session/s1', headers: bearer(await javaStyleVideoToken()), status: 200, grantedBy: '/v2/project/*/session/**' },
    { name: 'video: a defaultAcl of your own replaces /session/**', options: { ...VIDEO, defaultAcl: { paths: { '/v2/project/*/session/**': {} } } }, now: NOW, url: '/session/x', headers: bearer(await javaStyleVideoToken()), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: requireAcl refuses a token without acl, defaultAcl or not', options: { ...VIDEO, requireAcl: true }, now: NOW, url: '/session/x', headers: bearer(await javaStyleVideoToken()), status: 403, code: 'VJG_ACL_DENIED', challenge: INSUFFICIENT_SCOPE },
    { name: 'video: requireAcl still lets a token with its own acl in', options: { ...VIDEO, requireAcl: true }, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims())), status: 200, grantedBy: '/session/**' },
    { name: 'video: wrong role', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ role: 'admin' }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: role publisheronly', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ role: 'publisheronly' }))), status: 200, grantedBy: '/session/**' },
    { name: 'video: missing role', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ role: undefined }))), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'video: missing scope', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ scope: undefined }))), status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'video: another scope', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ scope: 'session.admin' }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: session_id not a string', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ session_id: 42 }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: connection_data of 1000 chars', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ connection_data: 'x'.repeat(1000) }))), status: 200, grantedBy: '/session/**' },
    { name: 'video: connection_data of 1001 chars', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ connection_data: 'x'.repeat(1001) }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: legacy data of 1001 chars', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ data: 'x'.repeat(1001) }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: initial_layout_class_list as an array', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ initial_layout_class_list: ['focus'] }))), status: 200, grantedBy: '/session/**' },
    { name: 'video: initial_layout_class_list a number', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ initial_layout_class_list: 7 }))), status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'video: lifetime of 30 days + 1 s is capped at 30 days', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ exp: NOW - 10 + 30 * 86_400 + 1 }))), status: 200, grantedBy: '/session/**' },
    { name: 'video: lifetime of 30 days + 1 s, expired 30 days after iat', options: VIDEO, now: NOW - 10 + 30 * 86_400 + 30, url: '/session/x', headers: bearer(await rs256(videoClaims({ exp: NOW - 10 + 30 * 86_400 + 1 }))), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'video: lifetime of 30 days + 1 s with lifetimePolicy reject', options: { ...VIDEO, lifetimePolicy: 'reject' }, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ exp: NOW - 10 + 30 * 86_400 + 1 }))), status: 401, code: 'VJG_LIFETIME_EXCEEDED', challenge: INVALID_TOKEN },
    { name: 'video: SDK token with a millisecond exp is capped and accepted', options: VIDEO, now: videoNow, url: '/session/x', headers: bearer(sdkMillis), status: 200, grantedBy: '/session/**' },
    { name: 'video: SDK token with a millisecond exp, 30 days after its iat', options: VIDEO, now: millisIat + 30 * 86_400 + 30, url: '/session/x', headers: bearer(sdkMillis), status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'video: SDK token with a millisecond exp and lifetimePolicy reject', options: { ...VIDEO, lifetimePolicy: 'reject' }, now: videoNow, url: '/session/x', headers: bearer(sdkMillis), status: 401, code: 'VJG_LIFETIME_EXCEEDED', challenge: INVALID_TOKEN },
    { name: 'video: minLifetime refuses a token living 29 s', options: { ...VIDEO, minLifetime: 30 }, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ exp: NOW + 19 }))), status: 401, code: 'VJG_LIFETIME_TOO_SHORT', challenge: INVALID_TOKEN },
    { name: 'video: string dates are read as NumericDates, as under vonage', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await rs256(videoClaims({ iat: String(NOW - 10), exp: String(NOW + 3600) }))), status: 200, grantedBy: '/session/**' },
    { name: 'video: HS256 sent to an RS256 profile', options: VIDEO, now: NOW, url: '/session/x', headers: bearer(await hs256(videoClaims(), API_SECRET)), status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },

    // opentok: the REST token of the opentok SDK, in X-OPENTOK-AUTH.
    { name: 'opentok: SDK REST token', options: OPENTOK, now: opentokNow, url: '/v2/project/47123456/session', headers: { 'x-opentok-auth': sdkOpentok }, status: 200, grantedBy: null },
    { name: 'opentok: SDK REST token of a numeric API key', options: OPENTOK, now: opentokNow, url: '/v2/project/47123456', headers: { 'x-opentok-auth': sdkOpentokNumericKey }, status: 200, grantedBy: null },
    { name: 'opentok: iss as a JSON integer is compared as a string', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ iss: Number(API_KEY) }), API_SECRET) }, status: 200 },
    { name: 'opentok: ist account, with a jti', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ ist: 'account', jti: randomUUID() }), API_SECRET) }, status: 200 },
    { name: 'opentok: the token in Authorization is not read', options: OPENTOK, now: opentokNow, url: '/v2/project/x', headers: bearer(sdkOpentok), status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM },
    { name: 'opentok: unknown API key', options: OPENTOK, now: opentokNow, url: '/v2/project/x', headers: { 'x-opentok-auth': sdkOpentokOtherProject }, status: 401, code: 'VJG_KEY_UNKNOWN', challenge: INVALID_TOKEN },
    { name: 'opentok: signed with another secret', options: OPENTOK, now: opentokNow, url: '/v2/project/x', headers: { 'x-opentok-auth': sdkOpentokWrongSecret }, status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'opentok: SDK token past its 5 minutes', options: OPENTOK, now: opentokNow - 10 + 300 + 30, url: '/v2/project/x', headers: { 'x-opentok-auth': sdkOpentok }, status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'opentok: exp - iat over 5 minutes', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ exp: NOW - 10 + 301 }), API_SECRET) }, status: 401, code: 'VJG_LIFETIME_EXCEEDED', challenge: INVALID_TOKEN },
    { name: 'opentok: no exp', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ exp: undefined }), API_SECRET) }, status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'opentok: no iat', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ iat: undefined }), API_SECRET) }, status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'opentok: a string exp stays refused (strict numbers)', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ exp: String(NOW + 290) }), API_SECRET) }, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'opentok: ist neither project nor account', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await hs256(opentokClaims({ ist: 'user' }), API_SECRET) }, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'opentok: RS256 sent to an HS256 profile', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await rs256(opentokClaims()) }, status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'opentok: HS512 is not HS256', options: OPENTOK, now: NOW, url: '/v2/project/x', headers: { 'x-opentok-auth': await new SignJWT(opentokClaims()).setProtectedHeader({ alg: 'HS512' }).sign(Buffer.from(API_SECRET)) }, status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'opentok: a preset option overridden (Bearer, as the SDK sends to Vonage)', options: { ...OPENTOK, tokenSources: [{ header: 'authorization' }] }, now: opentokNow, url: '/v2/project/x', headers: bearer(sdkOpentok), status: 200 },

    // vonage-webhook: HS256 with the signature secret; payload_hash over the raw body.
    { name: 'webhook: signed JSON body', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook()) }, body, status: 200, parsed },
    { name: 'webhook: tampered body', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook()) }, body: body.replace('delivered', 'rejected'), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: the same JSON with other whitespace is another body', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook()) }, body: JSON.stringify(parsed, null, 1), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: a 300 kB body hashed across many chunks', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({}, bigBody)) }, body: bigBody, status: 200, parsed: JSON.parse(bigBody) },
    { name: 'webhook: PUT with a signed body', options: WEBHOOK, now: NOW, method: 'PUT', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook()) }, body, status: 200, parsed },
    { name: 'webhook: POST without a body signs the empty string', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/event', headers: bearer(await webhook({}, '')), status: 200 },
    { name: 'webhook: POST without a body, token for a body', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/event', headers: bearer(await webhook()), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: GET signs the query as received', options: WEBHOOK, now: NOW, url: `/webhooks/inbound?${query}`, headers: bearer(await webhook({}, query)), status: 200 },
    { name: 'webhook: GET with a changed query', options: WEBHOOK, now: NOW, url: `/webhooks/inbound?${query.replace('Hello', 'Hullo')}`, headers: bearer(await webhook({}, query)), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: GET query re-encoded is another query', options: WEBHOOK, now: NOW, url: `/webhooks/inbound?${query.replace('%20', '+')}`, headers: bearer(await webhook({}, query)), status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: 5 minutes old plus the tolerance', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iat: NOW - 329 })) }, body, status: 200, parsed },
    { name: 'webhook: stale', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iat: NOW - 330 })) }, body, status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'webhook: stale even with a later exp', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iat: NOW - 600, exp: NOW + 600 })) }, body, status: 401, code: 'VJG_TOKEN_EXPIRED', challenge: INVALID_TOKEN },
    { name: 'webhook: maxAge raised to 15 minutes', options: { ...WEBHOOK, maxAge: 900 }, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iat: NOW - 600 })) }, body, status: 200, parsed },
    { name: 'webhook: unknown api_key', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ api_key: 'someone-else' })) }, body, status: 401, code: 'VJG_KEY_UNKNOWN', challenge: INVALID_TOKEN },
    { name: 'webhook: signed with another secret', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await hs256(webhookClaims(body), 'another-signature-secret-0123')) }, body, status: 401, code: 'VJG_SIGNATURE_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: a string iat stays refused (strict numbers)', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iat: String(NOW - 5) })) }, body, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: iss other than Vonage', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ iss: 'Nexmo' })) }, body, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: no payload_hash', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ payload_hash: undefined })) }, body, status: 401, code: 'VJG_CLAIM_MISSING', challenge: INVALID_TOKEN },
    { name: 'webhook: upper-case payload_hash', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await webhook({ payload_hash: sha256(body).toUpperCase() })) }, body, status: 401, code: 'VJG_CLAIM_INVALID', challenge: INVALID_TOKEN },
    { name: 'webhook: RS256 sent to an HS256 profile', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: { ...json, ...bearer(await rs256(webhookClaims(body))) }, body, status: 401, code: 'VJG_ALG_NOT_ALLOWED', challenge: INVALID_TOKEN },
    { name: 'webhook: no token', options: WEBHOOK, now: NOW, method: 'POST', url: '/webhooks/status', headers: json, body, status: 401, code: 'VJG_TOKEN_MISSING', challenge: REALM }
  ]
}

/** What the handler saw: proves it ran only for accepted requests, with the app's own parsing. */
interface Seen {
  auth: { grantedBy: string | null } | null
  body: unknown
}

interface Answer {
  status: number
  headers: Record<string, unknown>
  body: string
}

type Send = (c: ProfileCase, handled: Seen[]) => Promise<Answer>

/** Fastify: the plugin with the case's options, the app's default JSON parser, inject(). */
const fastifySend: Send = async (c, handled) => {
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { ...c.options, now: () => c.now * 1000 } as never)
  app.all('/*', async (request) => {
    handled.push({ auth: request.auth, body: request.body })
    return { ok: true }
  })
  try {
    const response = await app.inject({ method: c.method ?? 'GET', url: c.url, headers: c.headers, payload: c.body })
    return { status: response.statusCode, headers: response.headers, body: response.body }
  } finally {
    await app.close()
  }
}

function runCases (name: string, send: Send): void {
  t.test(name, async (t) => {
    for (const c of await profileCases()) {
      const handled: Seen[] = []
      const answer = await send(c, handled)
      t.equal(answer.status, c.status, `${c.name}: status`)
      if (c.status === 200) {
        t.equal(handled.length, 1, `${c.name}: the handler ran once`)
        if (c.grantedBy !== undefined) t.equal(handled[0]?.auth?.grantedBy, c.grantedBy, `${c.name}: grantedBy`)
        if (c.parsed !== undefined) t.same(handled[0]?.body, c.parsed, `${c.name}: the app parsed the body`)
        continue
      }
      t.equal(handled.length, 0, `${c.name}: the handler never ran`)
      t.equal(JSON.parse(answer.body).code, c.code, `${c.name}: code`)
      const challenge = String(answer.headers['www-authenticate'])
      if (c.challenge?.endsWith('error_description="')) t.ok(challenge.startsWith(c.challenge), `${c.name}: challenge ${challenge}`)
      else t.equal(challenge, c.challenge, `${c.name}: challenge`)
    }
  })
}

runCases('profiles through the Fastify plugin', fastifySend)

type ExpressModule = typeof express
const express4 = require('express4') as ExpressModule

/** Express' error handler for the tests: the GuardError's status, challenge and code. */
function guardErrors (err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (!isGuardError(err)) return next(err)
  res.status(err.status).set(err.headers).json({ statusCode: err.statusCode, code: err.code, error: err.error, message: err.message })
}

/** One request over a real socket, the body sent byte for byte. */
function send (listener: RequestListener, c: Pick<ProfileCase, 'method' | 'url' | 'headers' | 'body'>): Promise<Answer> {
  return withServer(listener, (port) => new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string | number> = { ...c.headers }
    if (c.body !== undefined) headers['content-length'] = Buffer.byteLength(c.body)
    const req = httpRequest({ host: '127.0.0.1', port, method: c.method ?? 'GET', path: c.url, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(c.body)
  }))
}

/** Express: the guard first, then the app's own express.json(), as docs/profiles.md shows. */
function expressSendWith (factory: ExpressModule): Send {
  return async (c, handled) => {
    const app: Express = factory()
    app.set('env', 'test')
    app.use(expressVonageJwt({ ...c.options, now: () => c.now * 1000 } as never))
    app.use(factory.json({ limit: '1mb' }))
    app.use((req, res) => {
      handled.push({ auth: req.auth ?? null, body: req.body })
      res.json({ ok: true })
    })
    app.use(guardErrors)
    return send(app, c)
  }
}

runCases('profiles through the Express 5 middleware', expressSendWith(express))
runCases('profiles through the Express 4 middleware', expressSendWith(express4))

for (const [version, factory] of [['express 5', express], ['express 4', express4]] as const) {
  t.test(`${version}: the webhook body check wherever the body is read`, async (t) => {
    const body = '{"status":"delivered"}'
    const token = await hs256(webhookClaims(body), SIGNATURE_SECRET)
    const request = (sent: string) => ({ method: 'POST' as const, url: '/webhooks/status', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: sent })
    const guard = () => expressVonageJwt({ ...WEBHOOK, now: () => NOW * 1000 } as never)

    // A body parser first that keeps the raw bytes (its verify option): they are checked.
    let ran = 0
    const kept = factory()
    kept.use(factory.json({ verify: (req, _res, buf) => { (req as { rawBody?: Buffer }).rawBody = buf } }))
    kept.use(guard())
    kept.use((req, res) => { ran++; res.json(req.body) })
    kept.use(guardErrors)
    let answer = await send(kept, request(body))
    t.equal(answer.status, 200, 'raw body kept by the parser: accepted')
    t.same(JSON.parse(answer.body), JSON.parse(body))
    answer = await send(kept, request('{"status":"rejected"}'))
    t.equal(answer.status, 401, 'raw body kept by the parser: tampered')
    t.equal(JSON.parse(answer.body).code, 'VJG_SIGNATURE_INVALID')
    t.ok(String(answer.headers['www-authenticate']).startsWith(INVALID_TOKEN))
    t.equal(ran, 1)

    // A body parser first that keeps nothing: the body cannot be checked, so it is refused.
    const lost = factory()
    lost.use(factory.json())
    lost.use(guard())
    lost.use((_req, res) => { ran++; res.json({}) })
    lost.use(guardErrors)
    answer = await send(lost, request(body))
    t.equal(answer.status, 401)
    t.equal(JSON.parse(answer.body).code, 'VJG_SIGNATURE_INVALID')
    t.match(JSON.parse(answer.body).message, /read before the guard/)
    t.equal(ran, 1, 'the handler never ran')

    // A handler that reads the body by hand, with no 'error' listener: the guard answers.
    const byHand = factory()
    byHand.use(guard())
    byHand.use((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => { ran++; res.json({ length: Buffer.concat(chunks).length }) })
    })
    answer = await send(byHand, request(body))
    t.equal(answer.status, 200, 'read by hand: accepted')
    t.equal(JSON.parse(answer.body).length, body.length)
    answer = await send(byHand, request('{"status":"rejected"}'))
    t.equal(answer.status, 401, 'read by hand: tampered')
    t.equal(JSON.parse(answer.body).code, 'VJG_SIGNATURE_INVALID')
    t.ok(String(answer.headers['www-authenticate']).startsWith(INVALID_TOKEN))
    t.equal(ran, 2, 'the end of a tampered body never reached the handler')

    // Problem format: the guard answers itself, the parser never completes, the handler never runs.
    const problem = factory()
    problem.use(expressVonageJwt({ ...WEBHOOK, errorFormat: 'problem', now: () => NOW * 1000 } as never))
    problem.use(factory.json())
    problem.use((_req, res) => { ran++; res.json({}) })
    answer = await send(problem, request('{"status":"rejected"}'))
    t.equal(answer.status, 401, 'problem format: tampered')
    t.match(answer.headers['content-type'], /^application\/problem\+json/)
    t.equal(JSON.parse(answer.body).code, 'VJG_SIGNATURE_INVALID')
    t.ok(String(answer.headers['www-authenticate']).startsWith(INVALID_TOKEN))
    answer = await send(problem, request(body))
    t.equal(answer.status, 200, 'problem format: accepted')
    t.equal(ran, 3)
  })
}

t.test('the webhook token we sign is one @vonage/jwt verifies with the signature secret', async (t) => {
  const token = await hs256(webhookClaims('{}'), SIGNATURE_SECRET)
  t.equal(vonageVerifySignature(token, SIGNATURE_SECRET), true)
  t.equal(vonageVerifySignature(token, 'another-signature-secret-0123'), false)
})

t.test('a tampered webhook body in problem format is answered before the handler', async (t) => {
  const handled: Seen[] = []
  const body = '{"status":"delivered"}'
  const token = await hs256(webhookClaims(body), SIGNATURE_SECRET)
  const answer = await fastifySend({
    name: 'problem',
    options: { ...WEBHOOK, errorFormat: 'problem' },
    now: NOW,
    method: 'POST',
    url: '/webhooks/status',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: '{"status":"rejected"}',
    status: 401
  }, handled)
  t.equal(answer.status, 401)
  t.match(answer.headers['content-type'], /^application\/problem\+json/)
  t.equal(JSON.parse(answer.body).code, 'VJG_SIGNATURE_INVALID')
  t.ok(String(answer.headers['www-authenticate']).startsWith(INVALID_TOKEN))
  t.equal(handled.length, 0)
})

t.test('fastify.jwtGuard.authenticate as a route hook checks the webhook body too', async (t) => {
  const body = '{"status":"delivered"}'
  const token = await hs256(webhookClaims(body), SIGNATURE_SECRET)
  for (const hook of ['onRequest', 'preHandler'] as const) {
    const app = Fastify({ logger: false })
    await app.register(vonageJwtGuard, { ...WEBHOOK, now: () => NOW * 1000 } as never)
    let ran = 0
    app.post('/webhooks/status', { config: { jwtGuard: false }, [hook]: app.jwtGuard.authenticate }, async (request) => {
      ran++
      return request.body
    })
    const send = (payload: string) => app.inject({ method: 'POST', url: '/webhooks/status', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, payload })
    const tampered = await send('{"status":"rejected"}')
    t.equal(tampered.statusCode, 401, `${hook}: tampered`)
    t.equal(tampered.json().code, 'VJG_SIGNATURE_INVALID', `${hook}: code`)
    t.ok(String(tampered.headers['www-authenticate']).startsWith(INVALID_TOKEN), `${hook}: challenge`)
    t.equal(ran, 0, `${hook}: the handler never ran`)
    const accepted = await send(body)
    t.equal(accepted.statusCode, 200, `${hook}: accepted`)
    t.same(accepted.json(), JSON.parse(body))
    t.equal(ran, 1)
    await app.close()
  }
})

t.test('a captured webhook is accepted once with replay: true', async (t) => {
  const body = '{"status":"delivered"}'
  const token = await hs256(webhookClaims(body), SIGNATURE_SECRET)
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` }
  const app = Fastify({ logger: false })
  await app.register(vonageJwtGuard, { ...WEBHOOK, replay: true, now: () => NOW * 1000 } as never)
  app.post('/webhooks/status', async () => ({ ok: true }))
  const first = await app.inject({ method: 'POST', url: '/webhooks/status', headers, payload: body })
  t.equal(first.statusCode, 200)
  const second = await app.inject({ method: 'POST', url: '/webhooks/status', headers, payload: body })
  t.equal(second.statusCode, 401)
  t.equal(second.json().code, 'VJG_TOKEN_REPLAYED')
  t.ok(String(second.headers['www-authenticate']).startsWith(INVALID_TOKEN))
  await app.close()
})

t.test('refused combinations are a TypeError naming the option', async (t) => {
  const rows: Array<{ name: string, options: Record<string, unknown>, option: string }> = [
    { name: 'an HS profile with a public key', options: { ...OPENTOK, publicKey: keys.publicPem }, option: 'publicKey' },
    { name: 'an HS profile with publicKeys', options: { ...WEBHOOK, publicKeys: { [APP_ID]: keys.publicPem } }, option: 'publicKeys' },
    { name: 'an HS profile without secrets', options: { profile: 'opentok' }, option: 'secrets' },
    { name: 'an empty secrets object', options: { profile: 'vonage-webhook', secrets: {} }, option: 'secrets' },
    { name: 'a secret under 16 bytes', options: { profile: 'opentok', secrets: { [API_KEY]: '0123456789abcde' } }, option: `secrets.${API_KEY}` },
    { name: 'a PEM public key as a secret', options: { profile: 'vonage-webhook', secrets: { [WEBHOOK_KEY]: keys.publicPem } }, option: `secrets.${WEBHOOK_KEY}` },
    { name: 'an RSA key object as a secret', options: { profile: 'vonage-webhook', secrets: { [WEBHOOK_KEY]: keys.publicKey } }, option: `secrets.${WEBHOOK_KEY}` },
    { name: 'RS256 with secrets', options: { ...OPENTOK, algorithms: ['RS256'] }, option: 'algorithms' },
    { name: 'secrets on the RS256 vonage profile', options: { publicKey: keys.publicPem, secrets: { [API_KEY]: API_SECRET } }, option: 'secrets' },
    { name: 'secrets on the RS256 vonage-video profile', options: { ...VIDEO, secrets: { [API_KEY]: API_SECRET } }, option: 'secrets' },
    { name: 'HS256 with a public key', options: { ...VIDEO, algorithms: ['RS256', 'HS256'] }, option: 'algorithms' },
    { name: 'opentok lifetimes above 5 minutes', options: { ...OPENTOK, maxLifetime: 301 }, option: 'maxLifetime' },
    { name: 'video lifetimes above 30 days', options: { ...VIDEO, maxLifetime: 30 * 86_400 + 1 }, option: 'maxLifetime' },
    { name: 'maxAge of 0', options: { ...WEBHOOK, maxAge: 0 }, option: 'maxAge' },
    { name: 'an unknown profile', options: { ...VIDEO, profile: 'vonage-sms' }, option: 'profile' },
    { name: 'a defaultAcl beside requireAcl', options: { ...VIDEO, requireAcl: true, defaultAcl: { paths: { '/session/**': {} } } }, option: 'defaultAcl' }
  ]
  for (const row of rows) {
    t.throws(() => createVerifier(row.options as never), { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: row.option }, row.name)
  }
  const app = Fastify({ logger: false })
  await t.rejects(async () => {
    await app.register(vonageJwtGuard, { profile: 'opentok', secrets: { [API_KEY]: 'short' } })
    await app.ready()
  }, { name: 'TypeError', code: 'VJG_INVALID_OPTION', option: `secrets.${API_KEY}` }, 'register().ready() rejects')
})

t.test('a verified webhook token is cached no longer than maxAge', async (t) => {
  let now = NOW
  const verifier = createVerifier({ ...WEBHOOK, now: () => now * 1000 } as never)
  const token = await hs256(webhookClaims('{}', { iat: NOW }), SIGNATURE_SECRET)
  t.equal((await verifier.verify(token)).expiresAt, NOW + 300)
  now = NOW + 329
  t.ok(await verifier.verify(token), 'within maxAge plus the tolerance, from the cache')
  now = NOW + 330
  await t.rejects(verifier.verify(token), { code: 'VJG_TOKEN_EXPIRED' })
})
