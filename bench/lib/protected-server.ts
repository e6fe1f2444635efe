/**
 * A vouch instance for benchmarks, run as its own process: the whole app
 * (src/app.ts, configured from the environment like src/server.ts) plus one
 * route that does nothing but vouch's bearer check, so that a benchmark
 * measures the check and not a handler's own database work.
 *   GET /bench/protected  → 200 {ok: true} after the full access-token check
 *   GET /bench/open       → the same route with no auth at all
 */
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createBus } from '../../src/bus/index.js'
import { createDb } from '../../src/db/client.js'
import { prepare } from '../../src/start.js'

const config = loadConfig(process.env)
const { keys, refreshKey } = await prepare(config)
const db = createDb(config.databaseUrl, { pool: config.database })
const bus = createBus(config, () => {})
const app = await buildApp({ config, db, keys, refreshKey, bus })
app.get('/bench/protected', { config: { auth: 'bearer' } }, async () => ({ ok: true }))
app.get('/bench/open', async () => ({ ok: true }))
await app.listen({ host: '127.0.0.1', port: config.port })
process.on('SIGTERM', () => { void app.close().then(() => bus.close()).then(() => db.$disconnect()).then(() => process.exit(0)) })
console.log('bench server ready')
