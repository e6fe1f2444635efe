/** A hand-written SVG line chart with logarithmic axes (no dependencies). */

export interface Series {
  label: string
  color: string
  dashed?: boolean
  points: Array<[number, number]>
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function decades (min: number, max: number): number[] {
  const out: number[] = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e)
  return out
}

const tick = (v: number, unit: string) => {
  if (unit === 'ms') return v >= 1000 ? `${v / 1000} s` : `${v} ms`
  if (v >= 1_000_000) return `${v / 1_000_000}M`
  if (v >= 1_000) return `${v / 1_000}k`
  return String(v)
}

export function logLogChart (options: { title: string, subtitle: string, xLabel: string, yLabel: string, series: Series[] }): string {
  const width = 880
  const height = 520
  const m = { left: 80, right: 270, top: 70, bottom: 60 }
  const all = options.series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y))
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="80"><text x="10" y="40">no data</text></svg>\n`
  const xs = decades(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])))
  const ys = decades(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])))
  const [x0, x1] = [Math.log10(xs[0]!), Math.log10(xs.at(-1)!)]
  const [y0, y1] = [Math.log10(ys[0]!), Math.log10(ys.at(-1)!)]
  const px = (x: number) => m.left + (Math.log10(x) - x0) / Math.max(x1 - x0, 1e-9) * (width - m.left - m.right)
  const py = (y: number) => height - m.bottom - (Math.log10(y) - y0) / Math.max(y1 - y0, 1e-9) * (height - m.top - m.bottom)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="28" font-size="16" font-weight="bold">${escape(options.title)}</text>`,
    `<text x="${m.left}" y="48" fill="#555">${escape(options.subtitle)}</text>`,
  ]
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${m.top}" y2="${height - m.bottom}" stroke="#e5e5e5"/>`,
      `<text x="${px(x)}" y="${height - m.bottom + 18}" text-anchor="middle">${tick(x, '')}</text>`)
  }
  for (const y of ys) {
    out.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${py(y) + 4}" text-anchor="end">${tick(y, 'ms')}</text>`)
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#999"/>`,
    `<text x="${(m.left + width - m.right) / 2}" y="${height - 18}" text-anchor="middle">${escape(options.xLabel)}</text>`,
    `<text transform="translate(20 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(options.yLabel)}</text>`,
  )
  options.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y))
    if (pts.length > 0) {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 5"' : ''} points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`)
      for (const [x, y] of pts) {
        out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="4" fill="${s.color}"><title>${escape(`${s.label}: ${x.toLocaleString('en-US')} sessions, ${y.toPrecision(3)} ms`)}</title></circle>`)
      }
    }
    const ly = m.top + 10 + i * 22
    const lx = width - m.right + 16
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="7 5"' : ''}/>`,
      `<text x="${lx + 36}" y="${ly + 4}">${escape(s.label)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** What benchmark 1 keeps per database: a point per N. */
export type RevokeAllData = Record<string, Array<{ n: number, vouch: Record<string, { median: number }>, classic: { median: number } }>>

/** The chart of benchmark 1: classic scan vs vouch, per database. */
export function revokeAllChart (data: RevokeAllData, subtitle: string): string {
  const colors: Record<string, [string, string]> = { sqlite: ['#1f77b4', '#7fb3d8'], postgresql: ['#d62728', '#ea9393'] }
  const series: Series[] = Object.entries(data).flatMap(([provider, points]) => {
    const [dark, light] = colors[provider] ?? ['#333', '#999']
    return [
      { label: `classic scan, ${provider}`, color: dark, dashed: true, points: points.map((p) => [p.n, p.classic.median] as [number, number]) },
      { label: `vouch endAll, ${provider}`, color: dark, points: points.map((p) => [p.n, p.vouch.endAll?.median ?? NaN] as [number, number]) },
      { label: `vouch HTTP logout-all, ${provider}`, color: light, points: points.map((p) => [p.n, p.vouch.http?.median ?? NaN] as [number, number]) },
    ]
  })
  return logLogChart({
    title: 'Sign out everywhere: latency vs sessions on file',
    subtitle,
    xLabel: 'sessions on file (all users)',
    yLabel: 'latency (median, ms)',
    series,
  })
}
