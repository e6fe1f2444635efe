/**
 * Benchmark 5: memory under a soak of mixed traffic (full: 5 minutes,
 * quick: 20 s). Workers cycle through a user's life: sign in, authenticated
 * calls (/bench/protected, /auth/me, /auth/sessions), refreshes (each
 * followed by calls with the new access token), sign out. The server's RSS
 * is sampled from /proc throughout; its heap is read after a full GC
 * (--expose-gc, opt-in BENCH_MEMORY=1) once warm and again at the end.
 * Growth is flagged when the heap after GC or the RSS keeps climbing.
 */
import { createScratchDatabase } from '../src/db/scratch.js'
import { Client, getJson, int, mb, median, runLoop, sampleProcess, sleep, startBenchServer } from './lib/harness.js'
import type { Context, Section } from './lib/report.js'

const WORKERS = 8
const PASSWORD = 'benchmark password'

interface Memory { rss: number, heapUsed: number, heapTotal: number, external: number, arrayBuffers: number, collected: boolean }

export async function soakBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 20 : 300
  const warmSeconds = ctx.quick ? 3 : 15
  const database = await createScratchDatabase('sqlite')
  const counts: Record<string, number> = { login: 0, protected: 0, me: 0, sessions: 0, refresh: 0, logout: 0 }
  try {
    const server = await startBenchServer({ DATABASE_URL: database.url, BENCH_MEMORY: '1' }, { nodeArgs: ['--expose-gc'] })
    const client = new Client(server.base, WORKERS)
    try {
      await Promise.all(Array.from({ length: WORKERS }, (_, i) =>
        client.json('POST', '/auth/register', { body: { email: `soak-${i}@bench.example`, password: PASSWORD }, expected: 201 })))
      const calls = async (token: string, n: number) => {
        for (let i = 0; i < n; i++) {
          await client.json('GET', '/bench/protected', { token, expected: 200 })
          counts.protected! += 1
        }
      }
      const cycle = async (worker: number) => {
        let pair = await client.json('POST', '/auth/login', { body: { email: `soak-${worker}@bench.example`, password: PASSWORD }, expected: 200 })
        counts.login! += 1
        await calls(pair.accessToken as string, 20)
        await client.json('GET', '/auth/me', { token: pair.accessToken as string, expected: 200 })
        counts.me! += 1
        await client.json('GET', '/auth/sessions', { token: pair.accessToken as string, expected: 200 })
        counts.sessions! += 1
        for (let i = 0; i < 3; i++) {
          pair = await client.json('POST', '/auth/refresh', { body: { refreshToken: pair.refreshToken }, expected: 200 })
          counts.refresh! += 1
          await calls(pair.accessToken as string, 5)
        }
        await client.json('POST', '/auth/logout', { token: pair.accessToken as string, expected: 204 })
        counts.logout! += 1
      }

      await runLoop(WORKERS, warmSeconds, cycle)
      for (const key of Object.keys(counts)) counts[key] = 0
      const start = await getJson(server.base, '/bench/memory?gc') as unknown as Memory
      const sampler = sampleProcess(server.pid, ctx.quick ? 250 : 1000)
      const loop = await runLoop(WORKERS, seconds, cycle)
      const usage = sampler.stop()
      await sleep(200)
      const end = await getJson(server.base, '/bench/memory?gc') as unknown as Memory
      if (!start.collected || !end.collected) throw new Error('the soak server did not run with --expose-gc')

      // RSS in the second quarter (warm) vs the last quarter of the run.
      const quarter = (q: number) => usage.samples.filter((s) => s.t >= usage.wallMs * q / 4 && s.t < usage.wallMs * (q + 1) / 4).map((s) => s.rssKb)
      const rssWarm = median(quarter(1))
      const rssLate = median(quarter(3))
      const heapGrowth = end.heapUsed / start.heapUsed
      const rssGrowth = rssLate / rssWarm
      const heapGrew = heapGrowth > 1.5 && end.heapUsed - start.heapUsed > 16 * 2 ** 20
      const rssGrew = rssGrowth > 1.25 && (rssLate - rssWarm) > 32 * 1024
      const total = Object.values(counts).reduce((a, b) => a + b, 0)
      return {
        id: 'soak',
        title: '5. Memory under a soak of mixed traffic',
        about: `${WORKERS} workers for ${seconds} s (after ${warmSeconds} s of warm-up), SQLite, each cycling: sign in → 20 authenticated calls → /auth/me → /auth/sessions → ` +
          '3 × (refresh → 5 calls with the new access token) → sign out. RSS sampled from /proc; heap read inside the server after a full GC (--expose-gc). ' +
          'Growth is flagged when the heap after GC ends over 1.5× (and 16 MB above) where it started, or the median RSS of the last quarter is over 1.25× (and 32 MB above) that of the second quarter.',
        tables: [
          {
            caption: 'Traffic',
            header: ['sign-ins', 'authenticated calls', '/auth/me', '/auth/sessions', 'refreshes', 'sign-outs', 'requests/s', 'cycles'],
            rows: [[int(counts.login!), int(counts.protected!), int(counts.me!), int(counts.sessions!), int(counts.refresh!), int(counts.logout!), int(total / (loop.elapsed / 1000)), int(loop.count)]],
          },
          {
            caption: 'Server memory (MB)',
            header: ['', 'start', 'end', 'peak', 'end ÷ start'],
            rows: [
              ['RSS', mb(usage.rssStartKb), mb(usage.rssEndKb), `${mb(usage.rssPeakKb)} (VmHWM ${mb(usage.hwmKb)})`, (usage.rssEndKb / usage.rssStartKb).toFixed(2)],
              ['RSS, median of 2nd vs last quarter', mb(rssWarm), mb(rssLate), '', rssGrowth.toFixed(2)],
              ['heap used after full GC', (start.heapUsed / 2 ** 20).toFixed(1), (end.heapUsed / 2 ** 20).toFixed(1), '', heapGrowth.toFixed(2)],
              ['external + array buffers after GC', ((start.external + start.arrayBuffers) / 2 ** 20).toFixed(1), ((end.external + end.arrayBuffers) / 2 ** 20).toFixed(1), '', ((end.external + end.arrayBuffers) / (start.external + start.arrayBuffers)).toFixed(2)],
            ],
          },
        ],
        targets: [{
          goal: `no unbounded memory growth over ${seconds} s of mixed traffic`,
          measured: `heap after GC ${heapGrowth.toFixed(2)}× start, RSS last quarter ${rssGrowth.toFixed(2)}× second quarter, server CPU ${usage.cpuPercent.toFixed(0)} %`,
          met: !heapGrew && !rssGrew,
        }],
        notes: [
          heapGrew || rssGrew
            ? `GROWTH FLAGGED: ${heapGrew ? 'the heap after GC grew' : ''}${heapGrew && rssGrew ? ' and ' : ''}${rssGrew ? 'RSS kept rising' : ''}; rerun the full mode (5 minutes) before concluding it leaks.`
            : 'No unbounded growth seen.',
          ...(ctx.quick ? ['Quick mode soaks for 20 s only: a slow leak shows in the full mode\'s 5 minutes.'] : []),
        ],
        data: { counts, start, end, usage: { ...usage, samples: usage.samples.filter((_, i) => i % 4 === 0) } },
      }
    } finally {
      client.close()
      await server.stop()
    }
  } finally {
    await database.drop()
  }
}
