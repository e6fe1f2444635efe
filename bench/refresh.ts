/**
 * Benchmark 4: refresh throughput and latency, SQLite and PostgreSQL.
 * Refresh tokens rotate, so every request needs the token the previous one
 * returned: each of the workers owns a few sessions (signed in beforehand)
 * and refreshes them in turn, keeping the newest token of each. The
 * baseline is the same worker loop against GET /bench/open on the same
 * server, so the client's own cost is the same on both sides.
 */
import { createScratchDatabase } from '../src/db/scratch.js'
import type { Provider } from '../src/db/schema.js'
import { Client, int, mb, mean, median, ms, percentile, ratio, runLoop, sampleProcess, startBenchServer, type LoopResult, type Usage } from './lib/harness.js'
import { profileServer } from './lib/profile.js'
import type { Context, Section, Table } from './lib/report.js'

const WORKERS = 16
const SESSIONS_PER_WORKER = 2
const ACCOUNTS = 4
const PASSWORD = 'benchmark password'

interface Run { loop: LoopResult, usage: Usage }

/** Signs in SESSIONS_PER_WORKER sessions per worker (registering the accounts first, unless they exist); their refresh tokens. */
async function signIn (client: Client, register = true): Promise<string[][]> {
  if (register) {
    await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) =>
      client.json('POST', '/auth/register', { body: { email: `refresh-${i}@bench.example`, password: PASSWORD }, expected: 201 })))
  }
  return Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const tokens: string[] = []
    for (let k = 0; k < SESSIONS_PER_WORKER; k++) {
      const pair = await client.json('POST', '/auth/login', { body: { email: `refresh-${(w + k) % ACCOUNTS}@bench.example`, password: PASSWORD }, expected: 200 })
      tokens.push(pair.refreshToken as string)
    }
    return tokens
  }))
}

function refresher (client: Client, tokens: string[][]) {
  const turn = tokens.map(() => 0)
  return async (worker: number) => {
    const mine = tokens[worker]!
    const k = turn[worker]! % mine.length
    turn[worker]! += 1
    const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken: mine[k] }, expected: 200 })
    mine[k] = pair.refreshToken as string
  }
}

export async function refreshBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 3 : 10
  const rows: Array<Array<string | number>> = []
  const tables: Table[] = []
  const notes: string[] = []
  const data: Record<string, unknown> = {}

  for (const provider of ['sqlite', 'postgresql'] as Provider[]) {
    const database = await createScratchDatabase(provider)
    try {
      const server = await startBenchServer({ DATABASE_URL: database.url })
      const client = new Client(server.base, WORKERS)
      const open: Run[] = []
      const refresh: Run[] = []
      try {
        const tokens = await signIn(client)
        const step = refresher(client, tokens)
        const openStep = () => client.json('GET', '/bench/open', { expected: 200 })
        const timed = async (into: Run[], work: (worker: number) => Promise<unknown>) => {
          const sampler = sampleProcess(server.pid)
          const loop = await runLoop(WORKERS, seconds, async (w) => { await work(w) })
          into.push({ loop, usage: sampler.stop() })
        }
        await runLoop(WORKERS, 1, async () => { await openStep() }) // warm-up
        await runLoop(WORKERS, 1, step)
        await timed(open, openStep)
        await timed(refresh, step)
        if (!ctx.quick) {
          await timed(refresh, step)
          await timed(open, openStep)
        }
      } finally {
        client.close()
        await server.stop()
      }
      const sum = (runs: Run[]) => {
        const latencies = runs.flatMap((r) => r.loop.latencies)
        const requests = runs.reduce((s, r) => s + r.loop.count, 0)
        return {
          rate: mean(runs.map((r) => r.loop.rate)),
          p50: median(latencies),
          p99: percentile(latencies, 99),
          cpuPercent: mean(runs.map((r) => r.usage.cpuPercent)),
          cpuUsPerRequest: runs.reduce((s, r) => s + r.usage.cpuMs, 0) * 1000 / requests,
          rssPeakKb: Math.max(...runs.map((r) => r.usage.rssPeakKb)),
          requests,
        }
      }
      const o = sum(open)
      const f = sum(refresh)
      data[provider] = { open: o, refresh: f }
      rows.push(
        [provider, 'GET /bench/open (baseline)', int(o.rate), ms(o.p50), ms(o.p99), `${o.cpuPercent.toFixed(0)} %`, o.cpuUsPerRequest.toFixed(0), mb(o.rssPeakKb)],
        [provider, 'POST /auth/refresh', int(f.rate), ms(f.p50), ms(f.p99), `${f.cpuPercent.toFixed(0)} %`, f.cpuUsPerRequest.toFixed(0), mb(f.rssPeakKb)],
        [provider, '**refresh ÷ open**', `**${ratio(f.rate / o.rate)}**`, ratio(f.p50 / o.p50), ratio(f.p99 / o.p99), '', ratio(f.cpuUsPerRequest / o.cpuUsPerRequest), ''],
      )
      notes.push(`${provider}: ${int(f.requests)} refreshes, every one answered 200 with a new token (rotation chains never broke).`)
      if (ctx.profile === 'always') {
        ctx.log(`refresh ${provider}: profiling POST /auth/refresh`)
        const profiled = await profileServer(ctx, `refresh-${provider}`, { DATABASE_URL: database.url },
          async (server) => {
            const c = new Client(server.base, WORKERS)
            return { c, tokens: await signIn(c, false) } // same database: the accounts exist
          },
          async (_server, { c, tokens }) => {
            try {
              await runLoop(WORKERS, seconds, refresher(c, tokens))
            } finally {
              c.close()
            }
          })
        tables.push(...profiled.tables)
        notes.push(`CPU profile of the refresh run (${provider}): ${profiled.dir}`)
      }
    } finally {
      await database.drop()
    }
  }

  return {
    id: 'refresh',
    title: '4. Refresh throughput and latency',
    about: `${WORKERS} concurrent workers over loopback (keep-alive), ${seconds} s per run, each worker rotating ${SESSIONS_PER_WORKER} sessions of its own; ` +
      `${ctx.quick ? 'runs: open, refresh' : 'runs in ABBA order (open, refresh, refresh, open)'}. Every refresh is a read by primary key, a conditional UPDATE (rotation) and a new EdDSA-signed access token. ` +
      'The baseline is the same loop on GET /bench/open (no database, no crypto) against the same server.',
    tables: [{
      caption: 'Refreshes per second and latency',
      header: ['database', 'route', 'req/s', 'p50 ms', 'p99 ms', 'server CPU', 'server CPU µs/req', 'RSS peak MB'],
      rows,
    }, ...tables],
    targets: [],
    notes,
    data,
  }
}
