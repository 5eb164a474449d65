/**
 * docs/troubleshooting.md names every error code a user can meet: each code of the library's
 * table (lib/errors.ts), the proxy's upstream codes and the option error, in a row of its own.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { errors } from '../lib/errors.js'
import { ROOT } from './helpers/examples.js'

const page = readFileSync(new URL('docs/troubleshooting.md', ROOT), 'utf8')
const rows = new Map(page.split('\n').filter(line => line.startsWith('| `VJG_')).map(line => [/^\| `(VJG_[A-Z_]+)`/.exec(line)![1]!, line]))

t.test('every code has a row with its status, a likely cause and a fix', async t => {
  const codes = [...Object.keys(errors), 'VJG_UPSTREAM_FAILED', 'VJG_UPSTREAM_TIMEOUT', 'VJG_INVALID_OPTION']
  for (const code of codes) {
    const row = rows.get(code)
    t.ok(row, `${code} has a row`)
    const cells = row?.split(' | ') ?? []
    t.equal(cells.length, 4, `${code}: code, status, cause, fix`)
    const status = (errors as Record<string, { statusCode: number } | undefined>)[code]?.statusCode
    if (status !== undefined) t.equal(cells[1], String(status), `${code}: status ${status}`)
  }
  t.same([...rows.keys()].filter(code => !codes.includes(code)), [], 'no row for a code that does not exist')
})
