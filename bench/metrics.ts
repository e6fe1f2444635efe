/**
 * What Prometheus metrics (METRICS_PORT) cost an authenticated request:
 * GET /auth/me requests per second with metrics on and off, measured in the
 * same run, runs alternating (off, on, off, on) and each setting's mean kept,
 * since the machine is noisy. The server is the real build (`node
 * dist/server.js`, `npm run build` first) on SQLite, 20 users' tokens, 32
 * connections; the metrics port is scraped once after each "on" run, as
 * Prometheus would, to check that it counted the requests. Target: on/off
 * at least 0.95.
 * `npx tsx bench/metrics.ts` (add `--quick` for a short smoke run).
 */
import { freePort, load, quick, startVouch, table } from './lib/harness.js'
import { bearerRequests, createInstance, registerUsers } from './lib/instances.js'

const seconds = quick ? 3 : 10
const instance = await createInstance('sqlite')
const rates: Record<'off' | 'on', number[]> = { off: [], on: [] }
const p99: Record<'off' | 'on', number[]> = { off: [], on: [] }
let counted = 0
let sent = 0
try {
  for (const [round, setting] of (['off', 'on', 'off', 'on'] as const).entries()) {
    const metricsPort = setting === 'on' ? await freePort() : undefined
    const server = await startVouch({
      label: `vouch (metrics ${setting})`,
      env: { ...instance.env, ...(metricsPort !== undefined && { METRICS_PORT: String(metricsPort) }) },
    })
    try {
      const requests = bearerRequests(await registerUsers(server.base, 20, `metrics-${round}`))
      await load(`${server.base}/auth/me`, 1, { connections: 32, requests }) // warm-up
      const result = await load(`${server.base}/auth/me`, seconds, { connections: 32, requests })
      rates[setting].push(result.rps)
      p99[setting].push(result.p99)
      if (metricsPort !== undefined) {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
        const line = /^vouch_http_request_duration_seconds_count\{method="GET",route="\/auth\/me",status_code="200"\} (\d+)$/m.exec(text)
        counted += Number(line?.[1] ?? 0)
        sent += result.requests
      }
    } finally {
      await server.stop()
    }
  }
} finally {
  await instance.drop()
}

const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length
const off = mean(rates.off)
const on = mean(rates.on)
console.log(`\nGET /auth/me requests per second, metrics off and on (node dist/server.js, SQLite, 32 connections, ${seconds} s per run, 2 runs each)\n`)
console.log(table(['metrics', 'req/s (runs)', 'mean', 'p99 ms (max)'], [
  ['off', rates.off.map((rate) => rate.toFixed(0)).join(' / '), off.toFixed(0), Math.max(...p99.off)],
  ['on', rates.on.map((rate) => rate.toFixed(0)).join(' / '), on.toFixed(0), Math.max(...p99.on)],
]))
console.log(`\nratio on/off: ${(on / off).toFixed(3)} (target >= 0.95)`)
console.log(`the scrapes counted ${counted} GET /auth/me 200 answers (the timed runs sent ${sent}, plus the warm-ups)`)
