/** What each benchmark hands back to bench/run.ts: tables, targets, notes. */
import { table } from './harness.js'

export interface Table {
  caption: string
  header: string[]
  rows: Array<Array<string | number>>
}

export interface Target {
  /** What is promised, e.g. "authenticated / open requests per second ≥ 0.7". */
  goal: string
  /** The figure measured, formatted. */
  measured: string
  /** Undefined when the figure could not be measured. */
  met: boolean | undefined
}

export interface Section {
  id: string
  title: string
  /** One paragraph: what is measured and how. */
  about: string
  tables: Table[]
  targets: Target[]
  notes: string[]
  /** Anything the run wants kept for the JSON file and the chart. */
  data?: unknown
}

export interface Context {
  quick: boolean
  /** Profile the server when a target is missed (or always, with --profile). */
  profile: 'never' | 'on-miss' | 'always'
  /** Where profiles and charts go. */
  resultsDir: string
  log (message: string): void
}

export function verdict (met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? 'met' : 'MISSED'
}

export function renderSection (section: Section): string {
  const parts = [`## ${section.title}`, '', section.about, '']
  for (const t of section.tables) {
    parts.push(`**${t.caption}**`, '', table(t.header, t.rows), '')
  }
  if (section.targets.length > 0) {
    parts.push(table(['target', 'measured', 'verdict'], section.targets.map((t) => [t.goal, t.measured, verdict(t.met)])), '')
  }
  for (const note of section.notes) parts.push(`- ${note}`)
  if (section.notes.length > 0) parts.push('')
  return parts.join('\n')
}
