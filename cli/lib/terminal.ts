/**
 * Text from a token on a terminal: every control character (C0, DEL, C1: ESC starts the
 * sequences that move the cursor, hide or recolour text), bidirectional override and isolate,
 * and line or paragraph separator is shown as a `\uXXXX` escape, so a forged `kid` or claim
 * cannot draw lines of its own or reorder the ones `verify` prints.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** In JSON text, `JSON.stringify` has escaped C0 already (and its indentation holds raw newlines). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

function escape (character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/** One line of plain text, safe to print. */
export function escapeTerminal (text: string): string {
  return text.replace(UNSAFE, escape)
}

/** JSON text, safe to print, still the same JSON. */
export function escapeJson (json: string): string {
  return json.replace(UNSAFE_IN_JSON, escape)
}
