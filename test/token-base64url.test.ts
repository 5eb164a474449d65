/**
 * Canonical base64url without encoding again (lib/token.ts `canonicalBase64url`) rests on what
 * Node's decoder does with characters outside the alphabet. This compares it with the definition,
 * "encoding the decoded bytes gives the text back", for every Latin-1 character and a few beyond
 * at every position of short parts, through both decoders the parser uses (a Buffer for the
 * signature, the shared scratch buffer for the header and payload), on the Node version running
 * the tests (CI runs 20, 22 and 24).
 */
import t from 'tap'
import { decodeBase64url, decodeJsonObject } from '../lib/token.js'

const CHARACTERS = [
  ...Array.from({ length: 256 }, (_, code) => String.fromCharCode(code)),
  // Beyond U+00FF: Node's decoder reads the low byte (U+0155 as "U", U+0141 as "A").
  '\u0100', '\u0141', '\u0155', '\u01d5', '\u2028', '\uff21', '\uff41', '\ud800', '\udc00', '\u{1f600}'
]

/** The definition: one byte string, one spelling. */
function canonical (part: string): boolean {
  return Buffer.from(part, 'base64url').toString('base64url') === part
}

/** Every part made of `base` with one character replaced, at every position. */
function* variants (base: string): Generator<string> {
  for (let at = 0; at < base.length; at++) {
    for (const c of CHARACTERS) yield base.slice(0, at) + c + base.slice(at + 1)
  }
  // One character more or less (lengths 4n+1 included), and two more: a skipped character with
  // another, padding, a character beyond U+00FF.
  yield base.slice(0, -1)
  for (const c of CHARACTERS) {
    yield base + c
    for (const d of ['A', '=', '$', ' ', '\u0155']) yield base + c + d
  }
}

t.test('decodeBase64url refuses exactly what the encoding round trip refuses', async t => {
  const disagreements: string[] = []
  let cases = 0
  for (const bytes of ['', 'A', 'AB', 'ABC', 'ABCD', 'ABCDE', 'ABCDEF', 'ABCDEFG', '\xff\xfe\x00']) {
    const base = Buffer.from(bytes, 'latin1').toString('base64url')
    for (const part of variants(base)) {
      cases++
      let accepted: boolean
      try {
        accepted = decodeBase64url(part, 'signature').equals(Buffer.from(part, 'base64url'))
      } catch (error) {
        accepted = false
        if ((error as { code?: string }).code !== 'VJG_TOKEN_MALFORMED') throw error
      }
      if (accepted !== canonical(part)) disagreements.push(JSON.stringify(part))
    }
  }
  t.ok(cases > 10_000, `${cases} parts`)
  t.strictSame(disagreements.slice(0, 20), [], 'no disagreement')
})

t.test('the header and payload decoder refuses exactly what the round trip refuses', async t => {
  const disagreements: string[] = []
  let cases = 0
  for (const json of ['{}', '{"a":1}', '{"ab":12}', '{"abc":"x"}', '{"s":"\u00e9"}']) {
    const base = Buffer.from(json, 'utf8').toString('base64url')
    for (const part of variants(base)) {
      cases++
      let refusedAsBase64 = false
      try {
        decodeJsonObject(part, 'payload', false)
      } catch (error) {
        if ((error as { code?: string }).code !== 'VJG_TOKEN_MALFORMED') throw error
        refusedAsBase64 = /canonical base64url/.test((error as Error).message)
      }
      if (refusedAsBase64 === canonical(part)) disagreements.push(JSON.stringify(part))
    }
  }
  t.ok(cases > 10_000, `${cases} parts`)
  t.strictSame(disagreements.slice(0, 20), [], 'no disagreement')
})

t.test('a part longer than the shared buffer is decoded whole', async t => {
  const json = JSON.stringify({ sub: 'x'.repeat(20_000) })
  t.equal(decodeJsonObject(Buffer.from(json).toString('base64url'), 'payload').sub, 'x'.repeat(20_000))
})
