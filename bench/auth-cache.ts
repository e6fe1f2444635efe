/**
 * Authenticated requests per second with vouch's revocation cache against a
 * database lookup on every request (REVOCATION_CACHE_TTL=0), on SQLite and
 * PostgreSQL, measured in the same run; the ratio is the figure that counts.
 * The server is the real build (`node dist/server.js`, `npm run build`
 * first), the route GET /auth/me with 20 users' tokens.
 * `npm run bench:cache` (add `-- --quick` for a short smoke run).
 */
import type { Provider } from '../src/db/schema.js'
import { load, quick, startVouch, table } from './lib/harness.js'
import { bearerRequests, createInstance, registerUsers } from './lib/instances.js'

const seconds = quick ? 3 : 10
const rows: Array<Array<string | number>> = []

for (const provider of ['sqlite', 'postgresql'] as Provider[]) {
  const instance = await createInstance(provider)
  try {
    const rates: Record<string, number> = {}
    const p99: Record<string, number> = {}
    for (const [label, ttl] of [['cache', '5'], ['database', '0'], ['cache ', '5']] as const) {
      const server = await startVouch({ label: `vouch (REVOCATION_CACHE_TTL=${ttl})`, env: { ...instance.env, REVOCATION_CACHE_TTL: ttl } })
      try {
        const requests = bearerRequests(await registerUsers(server.base, 20, `cache-${Object.keys(rates).length}-${label.trim()}`))
        await load(`${server.base}/auth/me`, 1, { connections: 32, requests }) // warm-up
        const result = await load(`${server.base}/auth/me`, seconds, { connections: 32, requests })
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
    await instance.drop()
  }
}

console.log(`\nAuthenticated requests per second (GET /auth/me, node dist/server.js, 32 connections, ${seconds} s per run)\n`)
console.log(table(['database', 'with cache', 'lookup per request', 'ratio', 'p99 ms (cache / lookup)'], rows))
