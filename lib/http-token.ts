/**
 * RFC 9110 `token` (section 5.6.2): what a method, a header name, an auth scheme and a cookie
 * name are made of. One table, read without a regex on the per-request path (token-source.ts)
 * and at registration (options.ts, forward-auth.ts).
 */

const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") TCHAR[c.charCodeAt(0)] = 1

/** Whether the character code is a `tchar`. */
export function isTokenChar (code: number): boolean {
  return code < 128 && TCHAR[code] === 1
}

/** Whether `value` is a non-empty RFC 9110 token. */
export function isToken (value: string): boolean {
  if (value.length === 0) return false
  for (let i = 0; i < value.length; i++) if (!isTokenChar(value.charCodeAt(i))) return false
  return true
}
