/**
 * `--claim-header CLAIM=Header-Name` (repeatable) and `--granted-by-header Header-Name`, for
 * `proxy` and `forward-auth`: the library's `claimHeaders` and `grantedByHeader`, which check the
 * names (a header the guard sets or strips, a hop-by-hop one: refused at start, exit 2).
 */
import { InvalidArgumentError, type Command } from 'commander'

/** `claim.path=Header-Name`; a claim given twice is refused (which one would win?). */
function claimHeaderFlag (value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=')
  if (eq <= 0 || eq === value.length - 1) throw new InvalidArgumentError('Expected CLAIM=Header-Name, e.g. sub=X-User-Id or video.role=X-Role.')
  const claim = value.slice(0, eq)
  const table: Record<string, string> = { ...previous }
  if (Object.hasOwn(table, claim)) throw new InvalidArgumentError(`The claim ${claim} is given twice: one header per claim.`)
  table[claim] = value.slice(eq + 1)
  return table
}

export function addClaimHeaderFlags (command: Command): Command {
  return command
    .option('--claim-header <claim=header>', 'copy a verified claim (a path: sub, video.role; a string or a number) into this header for the upstream; repeatable; a client\'s copy is refused', claimHeaderFlag)
    .option('--granted-by-header <header>', 'send the ACL pattern that granted the request in this header (percent-encoded where not printable ASCII; empty for a root token)')
}
