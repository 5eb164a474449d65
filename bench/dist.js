/**
 * Where the built package is: `../dist/` (what `npm run build` writes), or BENCH_DIST, a
 * directory of the same shape, to measure another build (say, a snapshot of a branch).
 * BENCH_BASELINE names a second build measured in the same run, beside this one: its servers
 * (`base-*`) and micro cases (`base*`) interleave with ours, so "before" and "after" share the
 * machine's load.
 */
import { pathToFileURL } from 'node:url'

function directory (path) {
  return pathToFileURL(path.endsWith('/') ? path : `${path}/`)
}

const base = process.env.BENCH_DIST !== undefined ? directory(process.env.BENCH_DIST) : new URL('../dist/', import.meta.url)

/** The baseline build's directory, or undefined when none is measured. */
export const BASELINE = process.env.BENCH_BASELINE || undefined

/** Import a module of the built package, e.g. `await load('index.js')`; of another build with `dist`. */
export function load (name, dist) {
  return import(new URL(name, dist === undefined ? base : directory(dist)).href)
}
