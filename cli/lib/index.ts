/**
 * The `vonage-jwt-guard` command: keygen, create, verify, serve, proxy, forward-auth.
 * Exit codes: 0 done (verify: every check passed), 1 the command failed, 2 usage error.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { registerCreate } from './create.js'
import { registerForwardAuth } from './forward-auth.js'
import { registerKeygen } from './keygen.js'
import { registerMock } from './mock.js'
import { registerProxy } from './proxy.js'
import { registerServe } from './serve.js'
import { CommandFailed, describeFsError, EXIT, isFsError, isInvalidOption, UsageError } from './shared.js'
import { registerVerify } from './verify.js'

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

function buildProgram (): Command {
  const program = new Command('vonage-jwt-guard')
    .description('Make, explain and enforce Vonage-style JWTs (RS256, Vonage lifetime rules, acl.paths)')
    .version(version())
    .showHelpAfterError('(add --help for usage)')
    // Set before the commands are added, so each inherits it: errors come back to main() as exceptions.
    .exitOverride()
    .addHelpText('after', `
Exit codes: 0 done (verify: every check passed), 1 the command failed (verify: a check failed), 2 usage error.`)
  registerKeygen(program)
  registerCreate(program)
  registerVerify(program)
  registerServe(program)
  registerMock(program)
  registerProxy(program)
  registerForwardAuth(program)
  return program
}

async function main (argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the message (or the help) already.
      process.exitCode = error.exitCode === 0 ? EXIT.OK : EXIT.USAGE
      return
    }
    const message = error instanceof Error ? error.message : String(error)
    if (error instanceof UsageError || isInvalidOption(error)) {
      process.stderr.write(`error: ${message}\n`)
      process.exitCode = EXIT.USAGE
    } else if (error instanceof CommandFailed) {
      process.stderr.write(`error: ${message}\n`)
      process.exitCode = EXIT.FAILED
    } else if (isFsError(error)) {
      // A filesystem error a command did not name itself: one line all the same, no stack.
      process.stderr.write(`error: ${describeFsError(error)}\n`)
      process.exitCode = EXIT.FAILED
    } else {
      process.stderr.write(`error: ${error instanceof Error && error.stack !== undefined ? error.stack : message}\n`)
      process.exitCode = EXIT.FAILED
    }
  }
}

await main(process.argv)
