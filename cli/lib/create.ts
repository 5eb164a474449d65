/**
 * `create`: sign a Vonage application JWT with the flags of `vonage jwt create`, and print the
 * token alone on stdout (so `TOKEN=$(vonage-jwt-guard create ...)` works).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { InvalidArgumentError, type Command } from 'commander'
import { compileAcl, createVerifier, GuardError } from 'vonage-jwt-guard'
import { isPublicOnly, keyFlagValue } from './key-kind.js'
import { mintToken } from 'vonage-jwt-guard/mint'
import { integerFlag, readKeyText, UsageError } from './shared.js'

interface CreateFlags {
  appId?: string
  privateKey: string
  sub?: string
  acl?: unknown
  exp?: number
  ttl: number
  claim?: Record<string, unknown>
}

/** NumericDate seconds: a positive integer below 2^53. */
const numericDateFlag = integerFlag(1, Number.MAX_SAFE_INTEGER)

/** Why the verifier would refuse this `acl` claim, or undefined when it accepts it. */
function aclProblem (acl: unknown): string | undefined {
  try {
    // Validated exactly as the verifier validates the claim, so a token we print is one it accepts.
    compileAcl(acl)
    return undefined
  } catch (error) {
    if (error instanceof GuardError) return error.message
    throw error
  }
}

function aclFlag (value: string): unknown {
  let acl: unknown
  try {
    acl = JSON.parse(value)
  } catch {
    throw new InvalidArgumentError('Expected JSON, e.g. \'{"paths":{"/*/users/**":{}}}\'.')
  }
  const problem = aclProblem(acl)
  if (problem !== undefined) throw new InvalidArgumentError(`${problem}.`)
  return acl
}

/** `--claim key=value`, repeatable: the value is JSON when it parses as JSON, else a string. */
function claimFlag (value: string, previous: Record<string, unknown> | undefined): Record<string, unknown> {
  const eq = value.indexOf('=')
  if (eq <= 0) throw new InvalidArgumentError('Expected key=value.')
  const name = value.slice(0, eq)
  const raw = value.slice(eq + 1)
  let parsed: unknown = raw
  try {
    parsed = JSON.parse(raw)
  } catch {
    // Not JSON: the text itself.
  }
  return { ...previous, [name]: parsed }
}

function privateKeyFrom (value: string): KeyObject {
  const text = readKeyText(value, '--private-key')
  if (isPublicOnly(text)) {
    throw new UsageError(`--private-key ${keyFlagValue(value)}: a public key, not a private one: a token is signed with the application's private key (private.key, from the Vonage dashboard or keygen); the public key is what the guard verifies with (--public-key)`)
  }
  try {
    return createPrivateKey(text)
  } catch (error) {
    // Node's reason names no key material (e.g. "error:1E08010C:DECODER routines::unsupported").
    throw new UsageError(`--private-key: not a private key in PEM (${(error as Error).message})`)
  }
}

/**
 * A lifetime the guard's defaults do not accept in full: one warning on stderr saying what a
 * guard does with it (the token is still printed: a guard configured with a longer
 * --max-lifetime accepts it). The limits are the library's own defaults, read from a verifier.
 */
function warnPastMaxLifetime (key: KeyObject, iat: number, lifetime: number, given: string): void {
  const { maxLifetime } = createVerifier({ publicKey: createPublicKey(key) }).rules
  if (lifetime <= maxLifetime) return
  const capped = new Date((iat + maxLifetime) * 1000).toISOString().replace('.000Z', 'Z')
  process.stderr.write(`warning: ${given} makes a lifetime of ${lifetime} s, past the guard's default --max-lifetime of ${maxLifetime} s: a guard with the defaults accepts this token only until iat + ${maxLifetime} (${capped}, --lifetime-policy cap, as Vonage does), and refuses it (401 VJG_LIFETIME_EXCEEDED) under --lifetime-policy reject\n`)
}

export function registerCreate (program: Command): void {
  program
    .command('create')
    .description('sign a Vonage application JWT (RS256) and print it alone on stdout')
    .option('--app-id <id>', 'the application_id claim (required unless --claim application_id=...)')
    .requiredOption('--private-key <path|pem>', 'the application private key: a path to private.key, or the PEM itself')
    .option('--sub <user>', 'the sub claim (the Client SDK user name)')
    .option('--acl <json>', 'the acl claim as JSON, checked as the verifier checks it', aclFlag)
    .option('--exp <seconds>', 'the exp claim, unix seconds, in the future (wins over --ttl)', numericDateFlag)
    .option('--ttl <seconds>', 'lifetime: exp = iat + ttl', integerFlag(1, 315_360_000), 900)
    .option('--claim <key=value>', 'any other claim (repeat the flag for several); the value is parsed as JSON when it can be', claimFlag)
    .addHelpText('after', `
Example:
  $ vonage-jwt-guard create --app-id aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee --private-key private.key \\
      --sub alice --acl '{"paths":{"/*/users/**":{},"/*/conversations/**":{}}}'`)
    .action(async (flags: CreateFlags) => {
      const claims = { ...flags.claim }
      if (flags.appId === undefined && typeof claims.application_id !== 'string') {
        throw new UsageError('--app-id is required (or --claim application_id=<id>)')
      }
      if (flags.acl !== undefined && claims.acl !== undefined) throw new UsageError('give the acl with --acl or --claim acl=..., not both')
      const problem = claims.acl === undefined ? undefined : aclProblem(claims.acl)
      if (problem !== undefined) throw new UsageError(`--claim acl: ${problem}`)
      const iat = typeof claims.iat === 'number' ? claims.iat : Math.floor(Date.now() / 1000)
      if (flags.exp !== undefined && flags.exp <= iat) {
        // vonage jwt create silently signs now + ttl instead, which hides the mistake; a token
        // whose exp is not after its iat is one every verifier refuses (ours: VJG_CLAIM_INVALID).
        // An expired token on purpose: give its iat too (--claim iat=...).
        const at = new Date(flags.exp * 1000).toISOString().replace('.000Z', 'Z')
        throw new UsageError(`--exp ${flags.exp} (${at}) is not after the token's iat (${iat}${typeof claims.iat === 'number' ? '' : ', now'}): it would expire before it is issued; give a later --exp or --ttl (or an earlier --claim iat=... for a token that has already expired)`)
      }
      const key = privateKeyFrom(flags.privateKey)
      warnPastMaxLifetime(key, iat, flags.exp === undefined ? flags.ttl : flags.exp - iat, flags.exp === undefined ? `--ttl ${flags.ttl}` : `--exp ${flags.exp}`)
      const token = await mintToken(claims, key, {
        applicationId: flags.appId,
        sub: flags.sub,
        acl: flags.acl,
        ttl: flags.ttl,
        ...(flags.exp === undefined ? {} : { exp: flags.exp })
      })
      process.stdout.write(`${token}\n`)
    })
}
