/**
 * Authenticated requests per second with vouch's revocation cache against a
 * database lookup on every request (REVOCATION_CACHE_TTL=0), on SQLite and
 * PostgreSQL, measured in the same run; the ratio is the figure that counts.
 * `npm run bench:cache` (add `-- --quick` for a short smoke run).
 */
import { applyMigrations } from '../src/db/migrate.js'
import { createScratchDatabase } from '../src/db/scratch.js'
import type { Provider } from '../src/db/schema.js'
import { load, post, quick, startBenchServer, table } from './lib/harness.js'

const seconds = quick ? 3 : 10
const rows: Array<Array<string | number>> = []

for (const provider of ['sqlite', 'postgresql'] as Provider[]) {
  const database = await createScratchDatabase(provider)
  try {
    await applyMigrations(database.url)
    const rates: Record<string, number> = {}
    const p99: Record<string, number> = {}
    for (const [label, ttl] of [['cache', '5'], ['database', '0'], ['cache ', '5']] as const) {
      const server = await startBenchServer({ DATABASE_URL: database.url, REVOCATION_CACHE_TTL: ttl })
      try {
        const email = `bench-${label.trim()}-${Date.now()}@example.com`
        const { accessToken } = await post(server.base, '/auth/register', { email, password: 'benchmark password' })
        const headers = { authorization: `Bearer ${accessToken as string}` }
        await load(`${server.base}/bench/protected`, 1, { headers }) // warm-up
        const result = await load(`${server.base}/bench/protected`, seconds, { headers })
        // Two cache runs bracket the database run; keep the mean (the machine is noisy).
        const key = label.trim()
        rates[key] = rates[key] === undefined ? result.rps : (rates[key]! + result.rps) / 2
        p99[key] = Math.max(p99[key] ?? 0, result.p99)
      } finally {
        await server.stop()
      }
    }
    rows.push([provider, rates.cache!.toFixed(0), rates.database!.toFixed(0), (rates.cache! / rates.database!).toFixed(2), `${p99.cache} / ${p99.database}`])
  } finally {
    await database.drop()
  }
}

console.log(`\nAuthenticated requests per second (GET /bench/protected, 20 connections, ${seconds} s per run)\n`)
console.log(table(['database', 'with cache', 'lookup per request', 'ratio', 'p99 ms (cache / lookup)'], rows))
