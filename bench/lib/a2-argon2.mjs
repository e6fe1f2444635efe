/**
 * The raw argon2 baseline of the sign-in benchmark, as a process of its own
 * (plain node, like the server it is compared with): it does nothing but
 * `argon2.verify` at a given concurrency, on the libuv pool size it was
 * started with, and measures its own event-loop delay (the same 10 ms
 * resolution as ./probe.mjs) and CPU time. Driven over loopback HTTP on PORT:
 *
 *   GET  /ready → 200
 *   POST /hash {password, memoryCost, timeCost, parallelism} → {hash}
 *   POST /run {hash, password, concurrency, seconds}
 *     → {count, elapsed, latencies, cpuMs, eventLoop: {p50, p99, max, mean, samples}}
 *
 * A run counts every verification it started, the ones in flight when its
 * time was up included, over the time until the last one finished (the
 * sign-in side counts the same way). The control connection is idle while
 * a run lasts.
 */
import { createServer } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import argon2 from 'argon2'

const RESOLUTION_MS = 10
const toMs = (ns) => ns / 1e6

async function run ({ hash, password, concurrency, seconds }) {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  const latencies = []
  const cpu = process.cpuUsage()
  histogram.enable()
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      if (!await argon2.verify(hash, password)) throw new Error('argon2.verify rejected the right password')
      latencies.push(performance.now() - t0)
    }
  }))
  const elapsed = performance.now() - start
  histogram.disable()
  const used = process.cpuUsage(cpu)
  return {
    count: latencies.length,
    elapsed,
    latencies,
    cpuMs: (used.user + used.system) / 1000,
    eventLoop: { p50: toMs(histogram.percentile(50)), p99: toMs(histogram.percentile(99)), max: toMs(histogram.max), mean: toMs(histogram.mean), samples: histogram.count },
  }
}

const routes = {
  'GET /ready': async () => ({ ok: true }),
  'POST /hash': async ({ password, memoryCost, timeCost, parallelism }) =>
    ({ hash: await argon2.hash(password, { type: argon2.argon2id, memoryCost, timeCost, parallelism }) }),
  'POST /run': run,
}

const server = createServer(async (req, res) => {
  let body = ''
  for await (const chunk of req) body += chunk
  const route = routes[`${req.method} ${req.url}`]
  try {
    if (route === undefined) throw new Error(`no route ${req.method} ${req.url}`)
    const answer = JSON.stringify(await route(body === '' ? {} : JSON.parse(body)))
    res.writeHead(200, { 'content-type': 'application/json' }).end(answer)
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(err instanceof Error ? err.stack : String(err))
  }
})
// The control connection idles while the other side's slice runs (seconds): never close it under the next request.
server.keepAliveTimeout = 600_000
server.listen(Number(process.env.PORT), '127.0.0.1')
