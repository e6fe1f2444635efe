/** Reading a Prometheus text exposition in tests (test/http/metrics.test.ts, test/http/cluster-metrics.test.ts). */

/** One scrape, as `name{label="value",...}` (labels sorted) → value. */
export type Scrape = Map<string, number>

export function parseExposition (text: string): Scrape {
  const values: Scrape = new Map()
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) continue
    const labels = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, name, value]) => `${name}="${value}"`).sort()
    values.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]))
  }
  return values
}

/** The value of `name` with exactly these labels (0 when absent). */
export function sample (scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}{${Object.entries(labels).map(([label, value]) => `${label}="${value}"`).sort().join(',')}}`
  return scrape.get(key) ?? 0
}
