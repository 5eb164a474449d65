/** What every bench script summarizes its rounds with. */

/** The median of the finite values (the mean of the two middle ones for an even count); NaN for none. */
export function median (values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
