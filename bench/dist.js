/**
 * Where the built package is: `../dist/` (what `npm run build` writes), or BENCH_DIST, a
 * directory of the same shape, to measure another build (say, a snapshot of a branch).
 */
import { pathToFileURL } from 'node:url'

const base = process.env.BENCH_DIST !== undefined
  ? pathToFileURL(process.env.BENCH_DIST.endsWith('/') ? process.env.BENCH_DIST : `${process.env.BENCH_DIST}/`)
  : new URL('../dist/', import.meta.url)

/** Import a module of the built package, e.g. `await load('index.js')`. */
export function load (name) {
  return import(new URL(name, base).href)
}
