/**
 * A vouch instance for benchmarks, run as its own process: the whole app
 * (src/app.ts, configured from the environment like src/server.ts) plus one
 * route that does nothing but vouch's bearer check, so that a benchmark
 * measures the check and not a handler's own database work.
 *   GET /bench/protected  → 200 {ok: true} after the full access-token check
 *   GET /bench/open       → the same route with no auth at all
 * Opt-in probes, measured inside this process:
 *   BENCH_EVENT_LOOP=1 → GET /bench/event-loop[?reset]: event-loop delay
 *     (perf_hooks.monitorEventLoopDelay, always recording) p50/p99/max/mean
 *     in ms since the last reset; `reset` empties the histogram after
 *     answering. (Not disable/enable: the first delay recorded after a
 *     re-enable spans the whole pause.)
 *   BENCH_MEMORY=1 → GET /bench/memory[?gc]: process.memoryUsage() in bytes,
 *     after a full collection when `gc` is given and node runs with --expose-gc.
 *   BENCH_QUERIES=1 → GET /bench/queries: {statements}, the SQL statements
 *     the app's database client has sent since start (Prisma's query events,
 *     the count test/helpers/app.ts's `onQuery` gives the tests).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { createBus } from '../../src/bus/index.js'
import { createDb } from '../../src/db/client.js'
import { prepare } from '../../src/start.js'

/** Sampling interval of the event-loop histogram; the recorded delays include it. */
const EVENT_LOOP_RESOLUTION_MS = 10

const config = loadConfig(process.env)
const { keys, refreshKey } = await prepare(config)
let statements = 0
const countQueries = process.env.BENCH_QUERIES === '1'
const db = createDb(config.databaseUrl, { pool: config.database, ...(countQueries && { onQuery: () => { statements += 1 } }) })
const bus = createBus(config, () => {})
const app = await buildApp({ config, db, keys, refreshKey, bus })
app.get('/bench/protected', { config: { auth: 'bearer' } }, async () => ({ ok: true }))
app.get('/bench/open', async () => ({ ok: true }))

if (process.env.BENCH_EVENT_LOOP === '1') {
  const histogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS })
  histogram.enable()
  const toMs = (ns: number) => ns / 1e6
  app.get('/bench/event-loop', async (request) => {
    const answer = {
      p50: toMs(histogram.percentile(50)),
      p99: toMs(histogram.percentile(99)),
      max: toMs(histogram.max),
      mean: toMs(histogram.mean),
      samples: histogram.count,
      resolution: EVENT_LOOP_RESOLUTION_MS,
    }
    if ((request.query as Record<string, unknown>).reset !== undefined) histogram.reset()
    return answer
  })
}

if (process.env.BENCH_MEMORY === '1') {
  app.get('/bench/memory', async (request) => {
    const gc = (globalThis as { gc?: () => void }).gc
    const collected = (request.query as Record<string, unknown>).gc !== undefined && gc !== undefined
    if (collected) gc()
    return { ...process.memoryUsage(), collected }
  })
}

if (countQueries) app.get('/bench/queries', async () => ({ statements }))

await app.listen({ host: '127.0.0.1', port: config.port })
process.on('SIGTERM', () => { void app.close().then(() => bus.close()).then(() => db.$disconnect()).then(() => process.exit(0)) })
console.log('bench server ready')
