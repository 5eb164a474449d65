/**
 * The one rule for "an object" wherever the guard reads a structure it was handed (options, a
 * route's config, an `acl` claim, a JWKS): an object literal, `JSON.parse` output or
 * `Object.create(null)`. An array, a class instance, a Map or a boxed primitive is refused: its
 * keys are not its data, or its data is not in its own keys.
 */
export function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}
