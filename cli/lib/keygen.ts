/**
 * `keygen`: an RSA 2048 key pair as Vonage hands it out: `private.key` (PKCS#8 PEM, mode 0600)
 * and `public.key` (SPKI PEM). Existing files are never overwritten without `--force`.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { generateKeys } from 'vonage-jwt-guard/mint'
import { CommandFailed, fsFailure } from './shared.js'

export const PRIVATE_KEY_FILE = 'private.key'
export const PUBLIC_KEY_FILE = 'public.key'

interface WrittenKeys {
  privatePath: string
  publicPath: string
  privateKey: string
  publicKey: string
}

/** Write a fresh pair into `dir` (created if missing). Refuses to overwrite unless `force`. */
export async function writeKeyPair (dir: string, force: boolean): Promise<WrittenKeys> {
  const privatePath = resolve(dir, PRIVATE_KEY_FILE)
  const publicPath = resolve(dir, PUBLIC_KEY_FILE)
  if (!force) {
    // Check both before writing either, so a refusal leaves nothing half done.
    const existing = [privatePath, publicPath].filter(path => existsSync(path))
    if (existing.length > 0) {
      throw new CommandFailed(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: use --force to overwrite`)
    }
  }
  try {
    mkdirSync(dir, { recursive: true })
  } catch (error) {
    throw fsFailure(error, 'create the directory', dir)
  }
  const { privateKey, publicKey } = await generateKeys()
  const write = (path: string, text: string, mode: number): void => {
    try {
      writeFileSync(path, text, { mode, flag: force ? 'w' : 'wx' })
      // `mode` applies only when the file is created; an overwritten key gets it too.
      chmodSync(path, mode)
    } catch (error) {
      throw fsFailure(error, 'write', path)
    }
  }
  write(privatePath, privateKey, 0o600)
  write(publicPath, publicKey, 0o644)
  return { privatePath, publicPath, privateKey, publicKey }
}

export function registerKeygen (program: Command): void {
  program
    .command('keygen')
    .description('write an RSA 2048 key pair: private.key (PKCS#8, mode 0600) and public.key (SPKI)')
    .option('-o, --out <dir>', 'directory to write the two files into (created if missing)', '.')
    .option('-f, --force', 'overwrite existing key files', false)
    .action(async (options: { out: string, force: boolean }) => {
      const written = await writeKeyPair(options.out, options.force)
      process.stdout.write(`private key: ${written.privatePath}\npublic key:  ${written.publicPath}\n`)
    })
}
