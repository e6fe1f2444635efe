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
  /** The same figure for the build before issue 11 (e478914), measured in the same run, when there is one. */
  today?: string
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
  /**
   * Waits (bounded: 60 s, 15 s in quick mode and 30 s over a whole quick
   * run) until the machine's 1-minute
   * load average is below 1; returns the sentence to print: that it waited,
   * or that it did not get a quiet machine, with the load average.
   */
  quiet (what: string): Promise<string>
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
    const today = section.targets.some((t) => t.today !== undefined)
    parts.push(table(['target', 'measured', ...today ? ['today (e478914, same run)'] : [], 'verdict'],
      section.targets.map((t) => [t.goal, t.measured, ...today ? [t.today ?? ''] : [], verdict(t.met)])), '')
  }
  for (const note of section.notes) parts.push(`- ${note}`)
  if (section.notes.length > 0) parts.push('')
  return parts.join('\n')
}
