/**
 * bench/results.svg is the chart bench/chart.js draws (Vega-Lite) from bench/results.md, not a
 * picture kept by hand: rendering the committed results again gives the committed SVG. It needs
 * bench/'s own dependencies (`cd bench && npm ci`; .ci/run installs them): without them it fails
 * on CI and skips elsewhere, saying so.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ROOT } from './helpers/examples.js'

interface Chart {
  renderChart: (markdown: string) => Promise<string>
  scenarioRows: (markdown: string, scenario: string) => Array<{ server: string, ours: boolean, rate: number, cpu: number }>
}

let chart: Chart | undefined
let missing = ''
try {
  chart = await import(new URL('bench/chart.js', ROOT).href) as Chart
} catch (error) {
  missing = (error as Error).message
}

const results = readFileSync(new URL('bench/results.md', ROOT), 'utf8')

t.test('the committed chart is the one chart.js draws from the committed results', { skip: chart === undefined && process.env.CI !== 'true' ? `bench/ dependencies missing (cd bench && npm ci): ${missing}` : false }, async t => {
  if (chart === undefined) throw new Error(`bench/chart.js cannot load: ${missing}`)
  const rows = chart.scenarioRows(results, 'One token reused')
  t.ok(rows.length >= 5, `${rows.length} servers`)
  t.ok(rows.some(row => row.ours && row.rate > 0 && row.cpu > 0), 'our plugin, with its numbers')
  const svg = await chart.renderChart(results)
  t.match(svg, /^<svg /)
  t.equal(`${svg}\n`, readFileSync(new URL('bench/results.svg', ROOT), 'utf8'), 'bench/results.svg is up to date (npm run chart in bench/)')
})

t.test('a report without the charted scenarios is refused, not drawn empty', async t => {
  if (chart === undefined) return
  t.throws(() => chart!.scenarioRows('# Benchmark results\n', 'One token reused'), /no "### One token reused" section/)
})
