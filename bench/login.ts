/**
 * Benchmark 3: login throughput against the raw argon2 rate. Both at the
 * same concurrency (32) and with the same parameters (OWASP: m = 19,456 KiB,
 * t = 2, p = 1, the server's defaults) on the same machine and thread-pool
 * size: the raw rate is argon2.verify called in this process while the
 * server idles; the login rate is POST /auth/login over loopback, spread
 * over several accounts. The two alternate in short slices (ABBA order), so
 * the machine's changing load falls on both alike.
 *
 * Event-loop delay (perf_hooks.monitorEventLoopDelay) is recorded inside the
 * server (opt-in BENCH_EVENT_LOOP=1) during the login slices only, and in
 * this process during the raw slices: the baseline is what a process that
 * does nothing but wait for the same hashing load sees.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import argon2 from 'argon2'
import { OWASP_ARGON2_MINIMUM } from '../src/config.js'
import { createScratchDatabase } from '../src/db/scratch.js'
import { Client, getJson, int, mb, median, ms, percentile, ratio, runLoop, sampleProcess, sleep, startBenchServer, type LoopResult } from './lib/harness.js'
import { profileServer } from './lib/profile.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const CONCURRENCY = 32
const ACCOUNTS = 8
const PASSWORD = 'benchmark password'
const TARGET = 0.85
const RESOLUTION_MS = 10

interface EventLoop { p50: number, p99: number, max: number, mean: number, samples: number }

const PROBES_AT_REST = 40
const PROBES_AMID_LOGINS = 80

const email = (i: number) => `login-${i}@bench.example`

/** Latencies (ms) of the calls made beside the logins. */
interface Probe { reused: number[], fresh: number[], open: number[] }

const toMs = (ns: number) => ns / 1e6

function snapshot (h: IntervalHistogram): EventLoop {
  return { p50: toMs(h.percentile(50)), p99: toMs(h.percentile(99)), max: toMs(h.max), mean: toMs(h.mean), samples: h.count }
}

/** Per-slice histograms cannot be added up: take the median of the slices' percentiles, the worst maximum. */
function merge (slices: EventLoop[]): EventLoop {
  return {
    p50: median(slices.map((s) => s.p50)),
    p99: median(slices.map((s) => s.p99)),
    max: Math.max(...slices.map((s) => s.max)),
    mean: median(slices.map((s) => s.mean)),
    samples: slices.reduce((sum, s) => sum + s.samples, 0),
  }
}

/**
 * A slice's rate counts every operation it started, the ones still in flight
 * when its time was up included, over the time until the last one finished:
 * login completions come in bursts, so a fixed window would cut bursts in two.
 */
function combine (runs: LoopResult[]) {
  const count = runs.reduce((sum, r) => sum + r.count, 0)
  const elapsed = runs.reduce((sum, r) => sum + r.elapsed, 0)
  const latencies = runs.flatMap((r) => r.latencies)
  return { count, rates: runs.map((r) => r.rate), rate: count / (elapsed / 1000), p50: median(latencies), p99: percentile(latencies, 99) }
}

export async function loginBench (ctx: Context): Promise<Section> {
  const slices = ctx.quick ? 2 : 10
  const sliceSeconds = 4
  const database = await createScratchDatabase('sqlite')
  const env = { DATABASE_URL: database.url, BENCH_EVENT_LOOP: '1' }
  const raw: LoopResult[] = []
  const logins: LoopResult[] = []
  const tables: Table[] = []
  const notes: string[] = []
  const bare = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  let idle: EventLoop | undefined
  const busySlices: EventLoop[] = []
  const bareSlices: EventLoop[] = []
  let single = NaN
  let rawCpuMs = 0
  let loginCpuMs = 0
  let rssPeakKb = 0
  let hwmKb = NaN
  const probes: Record<'idle' | 'storm', Probe> = { idle: { reused: [], fresh: [], open: [] }, storm: { reused: [], fresh: [], open: [] } }
  const login = (client: Client) => (worker: number) =>
    client.json('POST', '/auth/login', { body: { email: email(worker % ACCOUNTS), password: PASSWORD }, expected: 200 })
  try {
    const server = await startBenchServer(env)
    const client = new Client(server.base, CONCURRENCY)
    try {
      await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) =>
        client.json('POST', '/auth/register', { body: { email: email(i), password: PASSWORD }, expected: 201 })))
      const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, ...OWASP_ARGON2_MINIMUM })
      const verify = async () => {
        if (!await argon2.verify(hash, PASSWORD)) throw new Error('argon2.verify rejected the right password')
      }
      // Warm-up (JIT, connections), then one verification alone, for scale.
      await runLoop(CONCURRENCY, 1, login(client))
      await runLoop(CONCURRENCY, 1, verify)
      const alone: number[] = []
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now()
        await verify()
        alone.push(performance.now() - t0)
      }
      single = median(alone)

      await getJson(server.base, '/bench/event-loop?reset')
      await sleep(ctx.quick ? 1000 : 3000)
      idle = await getJson(server.base, '/bench/event-loop?reset') as unknown as EventLoop

      bare.enable()
      for (let i = 0; i < slices; i++) {
        const loginFirst = i % 4 === 1 || i % 4 === 2 // raw, login | login, raw | raw, login | ...
        for (const kind of loginFirst ? ['login', 'raw'] : ['raw', 'login']) {
          if (kind === 'raw') {
            bare.reset()
            const cpu = process.cpuUsage()
            raw.push(await runLoop(CONCURRENCY, sliceSeconds, verify))
            const used = process.cpuUsage(cpu)
            rawCpuMs += (used.user + used.system) / 1000
            bareSlices.push(snapshot(bare))
          } else {
            await getJson(server.base, '/bench/event-loop?reset')
            const sampler = sampleProcess(server.pid)
            logins.push(await runLoop(CONCURRENCY, sliceSeconds, login(client)))
            const used = sampler.stop()
            loginCpuMs += used.cpuMs
            rssPeakKb = Math.max(rssPeakKb, used.rssPeakKb)
            hwmKb = used.hwmKb
            busySlices.push(await getJson(server.base, '/bench/event-loop') as unknown as EventLoop)
          }
        }
      }
      bare.disable()

      // Other requests while the logins run, from one client of their own:
      // an authenticated call with a token already used (the usual case), one
      // with a token never presented before (the first call after a sign-in
      // or refresh), and an open call; first at rest, then amid 32 logins.
      const registered = await client.json('POST', '/auth/register', { body: { email: 'prober@bench.example', password: PASSWORD }, expected: 201 })
      const token = registered.accessToken as string
      const fresh: string[] = []
      let refreshToken = registered.refreshToken as string
      for (let i = 0; i < PROBES_AT_REST + PROBES_AMID_LOGINS; i++) {
        const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken }, expected: 200 })
        refreshToken = pair.refreshToken as string
        fresh.push(pair.accessToken as string)
      }
      const prober = new Client(server.base, 1) // its own connection: never queued behind the logins' sockets
      const probe = async (iterations: number, seconds: number) => {
        const results: Probe = { reused: [], fresh: [], open: [] }
        const timed = async (into: number[], work: () => Promise<unknown>) => {
          const t0 = performance.now()
          await work()
          into.push(performance.now() - t0)
        }
        const until = performance.now() + seconds * 1000
        for (let i = 0; i < iterations && performance.now() < until; i++) {
          await timed(results.reused, () => prober.json('GET', '/bench/protected', { token, expected: 200 }))
          await timed(results.fresh, () => prober.json('GET', '/bench/protected', { token: fresh.pop()!, expected: 200 }))
          await timed(results.open, () => prober.json('GET', '/bench/open', { expected: 200 }))
        }
        return results
      }
      const probeSeconds = ctx.quick ? 2 : 5
      probes.idle = await probe(PROBES_AT_REST, 5)
      const storm = runLoop(CONCURRENCY, probeSeconds + 2, login(client))
      await sleep(1000)
      probes.storm = await probe(PROBES_AMID_LOGINS, probeSeconds)
      await storm
      prober.close()
    } finally {
      client.close()
      await server.stop()
    }
    if (idle === undefined) throw new Error('no event-loop figures')
    const busy = merge(busySlices)
    const baseline = merge(bareSlices)

    const r = combine(raw)
    const l = combine(logins)
    const rateRatio = l.rate / r.rate
    if (ctx.profile === 'always' || (ctx.profile === 'on-miss' && rateRatio < TARGET)) {
      ctx.log('login: profiling POST /auth/login')
      const profiled = await profileServer(ctx, 'login', env,
        async (server) => new Client(server.base, CONCURRENCY),
        async (_server, c) => {
          try {
            await runLoop(CONCURRENCY, sliceSeconds * 2, login(c))
          } finally {
            c.close()
          }
        })
      tables.push(...profiled.tables)
      notes.push(`CPU profile of the login run: ${profiled.dir}`)
    }

    const targets: Target[] = [
      {
        goal: `login throughput ÷ raw argon2.verify rate (same parameters, concurrency ${CONCURRENCY}) ≥ ${TARGET}`,
        measured: `${rateRatio.toFixed(2)} (${l.rate.toFixed(1)} vs ${r.rate.toFixed(1)} per s)`,
        met: rateRatio >= TARGET,
      },
      {
        goal: `spec "hashing never blocks the event loop" (criterion used here: server event-loop delay p99 during ${CONCURRENCY} concurrent logins ≤ 2× a bare process's under the same hashing load)`,
        measured: `${ms(busy.p99)} ms vs ${ms(baseline.p99)} ms (${ratio(busy.p99 / baseline.p99)}); idle server ${ms(idle.p99)} ms`,
        met: busy.p99 <= 2 * baseline.p99,
      },
    ]
    return {
      id: 'login',
      title: '3. Login throughput vs the raw argon2 rate',
      about: `${CONCURRENCY} concurrent workers, ${slices} slices of ${sliceSeconds} s each for raw and for login, alternating (ABBA); a slice counts everything it started, over the time until the last one finished; SQLite; ${ACCOUNTS} accounts (the bench server lifts the per-account and per-IP sign-in limits). ` +
        `Raw: argon2.verify in the benchmark process with the server's parameters (m = ${OWASP_ARGON2_MINIMUM.memoryCost} KiB, t = ${OWASP_ARGON2_MINIMUM.timeCost}, p = ${OWASP_ARGON2_MINIMUM.parallelism}) and the same libuv thread pool size (${process.env.UV_THREADPOOL_SIZE ?? 4}). ` +
        `Event-loop delay: perf_hooks.monitorEventLoopDelay (resolution ${RESOLUTION_MS} ms, so a loop that is never late reads about ${RESOLUTION_MS} ms), in the server during the login slices and in the benchmark process during the raw slices.`,
      tables: [
        {
          caption: 'Sign-ins per second',
          header: ['run', 'per second', 'per slice', 'p50 ms', 'p99 ms', 'CPU ms per sign-in', 'completed'],
          rows: [
            [`raw argon2.verify ×${CONCURRENCY}, in-process`, r.rate.toFixed(1), r.rates.map((x) => x.toFixed(1)).join(', '), ms(r.p50), ms(r.p99), (rawCpuMs / r.count).toFixed(1), int(r.count)],
            [`POST /auth/login ×${CONCURRENCY}`, l.rate.toFixed(1), l.rates.map((x) => x.toFixed(1)).join(', '), ms(l.p50), ms(l.p99), (loginCpuMs / l.count).toFixed(1), int(l.count)],
            ['**login ÷ raw**', `**${ratio(rateRatio)}**`, '', ratio(l.p50 / r.p50), ratio(l.p99 / r.p99), ratio((loginCpuMs / l.count) / (rawCpuMs / r.count)), ''],
          ],
        },
        {
          caption: 'Event-loop delay',
          header: ['process and state', 'p50 ms', 'p99 ms', 'max ms', 'samples'],
          rows: [
            ['server, idle', ms(idle.p50), ms(idle.p99), ms(idle.max), idle.samples],
            [`server, ${CONCURRENCY} concurrent logins`, ms(busy.p50), ms(busy.p99), ms(busy.max), busy.samples],
            [`bare process, ${CONCURRENCY} concurrent argon2.verify (baseline)`, ms(baseline.p50), ms(baseline.p99), ms(baseline.max), baseline.samples],
            ['**server under logins ÷ baseline**', ratio(busy.p50 / baseline.p50), `**${ratio(busy.p99 / baseline.p99)}**`, ratio(busy.max / baseline.max), ''],
          ],
        },
        {
          caption: `Other requests beside ${CONCURRENCY} concurrent logins (one client, sequential; latency ms, p50 / max)`,
          header: ['state', 'calls', 'protected, token used before', 'protected, first use of a token', 'open', 'first use ÷ open (p50)'],
          rows: (['idle', 'storm'] as const).map((state) => {
            const p = probes[state]
            const cell = (values: number[]) => `${ms(median(values))} / ${ms(Math.max(...values))}`
            return [state === 'idle' ? 'server at rest' : `amid ${CONCURRENCY} concurrent logins`, p.open.length, cell(p.reused), cell(p.fresh), cell(p.open),
              ratio(median(p.fresh) / median(p.open))]
          }),
        },
        ...tables,
      ],
      targets,
      notes: [
        `One argon2.verify alone takes ${ms(single)} ms here (median of 5): a loop blocked by hashing would be late by about that much at every sample, i.e. p50 ≥ ${ms(single)} ms.`,
        'CPU per sign-in: the server process\'s user+system time (argon2\'s threads included) over the login slices, and this process\'s over the raw slices, divided by the sign-ins completed.',
        `Event-loop figures are per slice (the histogram is reset as each slice starts); the table shows the median of the slices' p50 and p99 and the worst maximum. Server RSS peak during the logins ${mb(rssPeakKb)} MB, VmHWM ${mb(hwmKb)} MB.`,
        'A token\'s first check verifies its signature with jose, which uses WebCrypto: in Node that runs on the libuv thread pool, the same pool argon2 runs on ' +
          '(and so does signing the access token each login returns). If first-use calls slow down far more than open ones amid logins, they are queueing behind the password hashes.',
        ...notes,
      ],
      data: {
        raw: r, login: l, ratio: rateRatio, idle, busy, baseline, single,
        probes: Object.fromEntries(Object.entries(probes).map(([k, v]) => [k, { reusedP50: median(v.reused), freshP50: median(v.fresh), openP50: median(v.open), calls: v.open.length }])),
      },
    }
  } finally {
    await database.drop()
  }
}
