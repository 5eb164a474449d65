/**
 * results.svg from results.md: the median requests per second and the server CPU per request of
 * every server, for one token reused and for distinct tokens, as bar charts. Drawn by Vega-Lite
 * (compiled to Vega, rendered to SVG headless, no browser) from the tables run.js wrote, so the
 * picture is always the numbers of the last run.
 *
 *   node chart.js [results.md] [results.svg]     (npm run chart; run.js calls it after a run)
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as vega from 'vega'
import * as vl from 'vega-lite'

const here = dirname(fileURLToPath(import.meta.url))

/** The scenarios charted: the two every reader asks about first. */
const SCENARIOS = ['One token reused', 'Distinct tokens']

/** A number as the tables write it: `50,299`, `23.4`. */
const number = (cell) => Number(cell.replace(/,/g, ''))

/**
 * The rows of the table under `### <scenario>`: server, median req/s, server CPU us/req. Throws
 * when the table or one of its columns is missing, so a changed report cannot draw an empty chart.
 */
export function scenarioRows (markdown, scenario) {
  const start = markdown.indexOf(`\n### ${scenario}\n`)
  if (start === -1) throw new Error(`results.md has no "### ${scenario}" section`)
  const lines = markdown.slice(start + 1).split('\n').slice(1)
  const table = []
  for (const line of lines) {
    if (line.startsWith('### ') || line.startsWith('## ')) break
    if (line.startsWith('|')) table.push(line.split('|').slice(1, -1).map(cell => cell.trim()))
  }
  const [header, , ...body] = table
  const column = (name) => {
    const i = header?.indexOf(name) ?? -1
    if (i === -1) throw new Error(`results.md, "${scenario}": no "${name}" column`)
    return i
  }
  const server = column('server')
  const rate = column('req/s (median)')
  const cpu = column('server CPU us/req')
  return body.map(cells => ({
    scenario,
    server: cells[server],
    ours: cells[server].startsWith('vonage-jwt-guard'),
    rate: number(cells[rate]),
    cpu: number(cells[cpu])
  }))
}

/** The Vega-Lite specification: per scenario, req/s and CPU per request side by side. */
export function chartSpec (rows, title) {
  const bars = (field, axis) => ({
    width: 260,
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y: { field: 'server', type: 'nominal', sort: null, title: null, axis: field === 'rate' ? { labelLimit: 420 } : null },
      x: { field, type: 'quantitative', title: axis },
      color: {
        field: 'ours',
        type: 'nominal',
        scale: { domain: [true, false], range: ['#d6336c', '#adb5bd'] },
        legend: null
      }
    }
  })
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    config: { font: 'Helvetica, Arial, sans-serif', view: { stroke: null } },
    vconcat: SCENARIOS.map(scenario => ({
      title: { text: scenario, anchor: 'start', fontSize: 13 },
      data: { values: rows.filter(row => row.scenario === scenario) },
      hconcat: [bars('rate', 'requests per second (median, higher is better)'), bars('cpu', 'server CPU per request, µs (lower is better)')]
    }))
  }
}

/** The SVG of a results.md. */
export async function renderChart (markdown) {
  const rows = SCENARIOS.flatMap(scenario => scenarioRows(markdown, scenario))
  const when = /Written by `npm run bench` on (\S+)/.exec(markdown)?.[1]?.slice(0, 10) ?? ''
  const node = /Node (v[\d.]+)/.exec(markdown)?.[1] ?? ''
  const title = `vonage-jwt-guard benchmark${when === '' ? '' : `, ${when}`}${node === '' ? '' : `, Node ${node}`} (ours in pink)`
  const view = new vega.View(vega.parse(vl.compile(chartSpec(rows, title)).spec), { renderer: 'none' })
  return view.toSVG()
}

/** Read results.md, write results.svg (or the paths given). */
export async function writeChart (from = join(here, 'results.md'), to = join(here, 'results.svg')) {
  writeFileSync(to, `${await renderChart(readFileSync(from, 'utf8'))}\n`)
  return to
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const written = await writeChart(process.argv[2], process.argv[3])
  console.log(`wrote ${written}`)
}
