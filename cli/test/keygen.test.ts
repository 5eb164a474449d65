/**
 * keygen: the key pair as Vonage hands it out, never overwritten without --force.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { importPKCS8, importSPKI } from 'jose'
import t from 'tap'
import { run } from './helpers/bin.js'


t.test('keygen writes a PKCS#8 private key (0600) and its SPKI public key, and never overwrites without --force', async t => {
  const dir = t.testdir()
  const out = join(dir, 'keys')
  const first = await run(['keygen', '--out', out])
  t.equal(first.code, 0, first.stderr)
  const privatePem = readFileSync(join(out, 'private.key'), 'utf8')
  const publicPem = readFileSync(join(out, 'public.key'), 'utf8')
  t.match(privatePem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8 PEM')
  t.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n/, 'SPKI PEM')
  t.equal(statSync(join(out, 'private.key')).mode & 0o777, 0o600)
  const privateKey = createPrivateKey(privatePem)
  t.equal(privateKey.asymmetricKeyType, 'rsa')
  t.equal(privateKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(privateKey.asymmetricKeyDetails?.publicExponent, 65537n)
  t.equal(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }), publicPem, 'public.key is the public half of private.key')
  await importPKCS8(privatePem, 'RS256')
  await importSPKI(publicPem, 'RS256')
  t.match(first.stdout, join(out, 'private.key'))

  const again = await run(['keygen', '--out', out])
  t.equal(again.code, 1)
  t.match(again.stderr, /already exist.*--force/)
  t.equal(readFileSync(join(out, 'private.key'), 'utf8'), privatePem, 'private.key untouched')
  t.equal(readFileSync(join(out, 'public.key'), 'utf8'), publicPem, 'public.key untouched')

  writeFileSync(join(out, 'private.key'), privatePem, { mode: 0o644 })
  const forced = await run(['keygen', '--out', out, '--force'])
  t.equal(forced.code, 0, forced.stderr)
  t.not(readFileSync(join(out, 'private.key'), 'utf8'), privatePem, 'a new key with --force')
  t.equal(statSync(join(out, 'private.key')).mode & 0o777, 0o600, 'an overwritten private key is 0600 again')
})
