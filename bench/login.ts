/**
 * Benchmark 3: sign-in against the raw argon2 rate, on the server as it
 * ships (`node dist/server.js`, with bench/lib/probe.mjs preloaded to read
 * its event loop and memory over IPC).
 *
 * - Rate: 32 concurrent `POST /auth/login` against 32 concurrent
 *   `argon2.verify` in a bare process of its own (./lib/a2-argon2.mjs, plain
 *   node), with vouch's configured parameters (loadConfig on the server's
 *   environment) and the same libuv pool size, in alternating slices (ABBA),
 *   so that the machine's changing load falls on both alike.
 * - Event loop: perf_hooks.monitorEventLoopDelay inside the server during
 *   the login slices, and inside the bare process during the raw slices.
 * - Memory: a fresh server process, a sign-in storm (32 in flight; 60 s, in
 *   quick mode 10 s), then idle (60 s; quick 10 s): its RSS at the end.
 * - Context: CPU per sign-in against CPU per bare verification, and the
 *   latency of other requests (/auth/me with a token used before, with a
 *   token never presented, /health/live) at rest and amid the logins.
 *
 * vouch caps the hashes it runs at once and answers 503 with Retry-After
 * when its queue is too long; such a refusal is counted (never a sign-in),
 * and the worker retries after 50-150 ms, as bench/lib/instances.ts does.
 */
import path from 'node:path'
import { loadConfig } from '../src/config.js'
import { Client, int, mb, median, ms, percentile, procStats, ratio, root, sampleProcess, sleep, startNode, startVouch, vouchEnv } from './lib/harness.js'
import { BENCH_PASSWORD, createInstance, registerUsers, type Instance } from './lib/instances.js'
import { profileProcess, profileTables } from './lib/profile.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const CONCURRENCY = 32
const ACCOUNTS = 8
const TARGET_RATE = 0.92
const TARGET_EVENT_LOOP_P99_MS = 20
const TARGET_RSS_MIB = 200
const PROBES_AT_REST = 40
const PROBES_AMID_LOGINS = 80

interface EventLoop { p50: number, p99: number, max: number, mean: number, samples: number }

/** A slice: operations completed, over the time until the last one finished. */
interface Slice { count: number, refused: number, elapsed: number, latencies: number[], cpuMs: number, eventLoop: EventLoop }

/** Latencies (ms) of the calls made beside the logins. */
interface Probe { reused: number[], fresh: number[], open: number[] }

/** Per-slice histograms cannot be added up: the median of the slices' percentiles, the worst maximum. */
function merge (slices: EventLoop[]): EventLoop {
  return {
    p50: median(slices.map((s) => s.p50)),
    p99: median(slices.map((s) => s.p99)),
    max: Math.max(...slices.map((s) => s.max)),
    mean: median(slices.map((s) => s.mean)),
    samples: slices.reduce((sum, s) => sum + s.samples, 0),
  }
}

function combine (slices: Slice[]) {
  const count = slices.reduce((sum, s) => sum + s.count, 0)
  const elapsed = slices.reduce((sum, s) => sum + s.elapsed, 0)
  const latencies = slices.flatMap((s) => s.latencies)
  return {
    count,
    refused: slices.reduce((sum, s) => sum + s.refused, 0),
    rates: slices.map((s) => s.count / (s.elapsed / 1000)),
    rate: count / (elapsed / 1000),
    p50: median(latencies),
    p99: percentile(latencies, 99),
    cpuMsPerOp: slices.reduce((sum, s) => sum + s.cpuMs, 0) / count,
    eventLoop: merge(slices.map((s) => s.eventLoop)),
  }
}

const email = (i: number) => `login-${i}@bench.example`

/**
 * The bench's kept-alive connections idle while the other side's slice runs
 * (4 s and more on a loaded machine): with vouch's default 5 s keep-alive the
 * server's close can race the next request (ECONNRESET in a full run).
 */
const KEEP_ALIVE = { HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000', HTTP_IDLE_TIMEOUT_MS: '3600000' }

/**
 * `CONCURRENCY` workers signing in back to back for `seconds`: every login
 * started counts, over the time until the last one finished (completions
 * come in bursts; a fixed window would cut one in two). A 503 is counted as
 * refused and retried after 50-150 ms.
 */
async function storm (client: Client, seconds: number): Promise<Omit<Slice, 'cpuMs' | 'eventLoop'>> {
  const latencies: number[] = []
  let refused = 0
  const start = performance.now()
  const end = start + seconds * 1000
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, worker) => {
    while (performance.now() < end) {
      const t0 = performance.now()
      const res = await client.request('POST', '/auth/login', { body: { email: email(worker % ACCOUNTS), password: BENCH_PASSWORD } })
      if (res.status === 200) {
        latencies.push(performance.now() - t0)
      } else if (res.status === 503) {
        refused += 1
        await sleep(50 + Math.random() * 100)
      } else {
        throw new Error(`POST /auth/login: ${res.status} ${res.body.slice(0, 300)}`)
      }
    }
  }))
  return { count: latencies.length, refused, elapsed: performance.now() - start, latencies }
}

/** The RSS target: a fresh server, a sign-in storm, then idle; VmRSS at the end. */
async function rssAfterStorm (instance: Instance, stormSeconds: number, idleSeconds: number) {
  const server = await startVouch({ label: 'vouch (RSS)', env: { ...instance.env, ...KEEP_ALIVE }, probe: true })
  const client = new Client(server.base, CONCURRENCY)
  try {
    const startKb = procStats(server.pid)?.rssKb ?? NaN
    const during = sampleProcess(server.pid, 500)
    const result = await storm(client, stormSeconds)
    const stormUsage = during.stop()
    client.close() // the storm's connections closed, as its clients would
    const idle = sampleProcess(server.pid, 1000)
    await sleep(idleSeconds * 1000)
    const idleUsage = idle.stop()
    const memory = await server.probe<Record<string, number>>('memory')
    return { startKb, storm: stormUsage, idle: idleUsage, endKb: idleUsage.rssEndKb, memory, logins: result.count, refused: result.refused }
  } finally {
    client.close()
    await server.stop()
  }
}

export async function loginBench (ctx: Context): Promise<Section> {
  const notes: string[] = []
  const slices = ctx.quick ? 2 : 10
  const sliceSeconds = 4
  const stormSeconds = ctx.quick ? 10 : 60
  const idleSeconds = ctx.quick ? 10 : 60
  notes.push(await ctx.quiet('login'))
  const instance = await createInstance('sqlite')
  const argon2 = loadConfig(vouchEnv(instance.env)).passwords.argon2
  const raw: Slice[] = []
  const logins: Slice[] = []
  const tables: Table[] = []
  let idle: EventLoop | undefined
  let single: number
  let rssPeakKb = 0
  const probes: Record<'idle' | 'storm', Probe> = { idle: { reused: [], fresh: [], open: [] }, storm: { reused: [], fresh: [], open: [] } }
  let rss: Awaited<ReturnType<typeof rssAfterStorm>> | undefined
  try {
    const server = await startVouch({ label: 'vouch', env: { ...instance.env, ...KEEP_ALIVE }, probe: true })
    const bare = await startNode({ label: 'raw argon2', script: path.join(root, 'bench/lib/a2-argon2.mjs'), readyPath: '/ready' })
    const client = new Client(server.base, CONCURRENCY)
    const control = new Client(bare.base, 1)
    try {
      await registerUsers(server.base, ACCOUNTS, 'login')
      const { hash } = await control.json('POST', '/hash', { body: { password: BENCH_PASSWORD, ...argon2 } }) as { hash: string }
      const rawSlice = async (seconds: number, concurrency = CONCURRENCY): Promise<Slice> => {
        const sampler = sampleProcess(bare.pid, 1000)
        const r = await control.json('POST', '/run', { body: { hash, password: BENCH_PASSWORD, concurrency, seconds } }) as unknown as Omit<Slice, 'cpuMs' | 'refused'> & { cpuMs: number }
        const usage = sampler.stop()
        return { ...r, refused: 0, cpuMs: usage.cpuMs }
      }
      const loginSlice = async (seconds: number): Promise<Slice> => {
        await server.probe('event-loop', { reset: true })
        const sampler = sampleProcess(server.pid)
        const r = await storm(client, seconds)
        const usage = sampler.stop()
        rssPeakKb = Math.max(rssPeakKb, usage.rssPeakKb)
        return { ...r, cpuMs: usage.cpuMs, eventLoop: await server.probe<EventLoop>('event-loop') }
      }
      // Warm-up (JIT, connections), then one verification alone, for scale.
      await server.probe('event-loop-start')
      await storm(client, 1)
      await rawSlice(1)
      single = median((await rawSlice(0.5, 1)).latencies)

      await server.probe('event-loop', { reset: true })
      await sleep(ctx.quick ? 1000 : 3000)
      idle = await server.probe<EventLoop>('event-loop', { reset: true })
      for (let i = 0; i < slices; i++) {
        const loginFirst = i % 4 === 1 || i % 4 === 2 // raw, login | login, raw | raw, login | ...
        for (const kind of loginFirst ? ['login', 'raw'] : ['raw', 'login']) {
          if (kind === 'raw') raw.push(await rawSlice(sliceSeconds))
          else logins.push(await loginSlice(sliceSeconds))
        }
      }

      // Other requests while the logins run, from one client of their own:
      // /auth/me with a token already used (the usual case), with a token
      // never presented before (the first call after a sign-in or refresh),
      // and /health/live; first at rest, then amid 32 logins.
      const [prober] = await registerUsers(server.base, 1, 'prober')
      const token = prober!.accessToken
      const fresh: string[] = []
      let refreshToken = prober!.refreshToken
      for (let i = 0; i < PROBES_AT_REST + PROBES_AMID_LOGINS; i++) {
        const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken }, expected: 200 })
        refreshToken = pair.refreshToken as string
        fresh.push(pair.accessToken as string)
      }
      const own = new Client(server.base, 1) // its own connection: never queued behind the logins' sockets
      const probe = async (iterations: number, seconds: number) => {
        const results: Probe = { reused: [], fresh: [], open: [] }
        const timed = async (into: number[], work: () => Promise<unknown>) => {
          const t0 = performance.now()
          await work()
          into.push(performance.now() - t0)
        }
        const until = performance.now() + seconds * 1000
        for (let i = 0; i < iterations && performance.now() < until; i++) {
          await timed(results.reused, () => own.json('GET', '/auth/me', { token, expected: 200 }))
          await timed(results.fresh, () => own.json('GET', '/auth/me', { token: fresh.pop()!, expected: 200 }))
          await timed(results.open, () => own.json('GET', '/health/live', { expected: 200 }))
        }
        return results
      }
      const probeSeconds = ctx.quick ? 2 : 5
      probes.idle = await probe(PROBES_AT_REST, 5)
      const stormed = storm(client, probeSeconds + 2)
      await sleep(1000)
      probes.storm = await probe(PROBES_AMID_LOGINS, probeSeconds)
      await stormed
      own.close()
    } finally {
      client.close()
      control.close()
      await bare.stop()
      await server.stop()
    }
    if (idle === undefined) throw new Error('no event-loop figures')

    const r = combine(raw)
    const l = combine(logins)
    const rateRatio = l.rate / r.rate
    if (ctx.profile === 'always' || (ctx.profile === 'on-miss' && rateRatio < TARGET_RATE)) {
      ctx.log('login: profiling POST /auth/login')
      const profiled = await profileProcess(ctx, 'login',
        (nodeArgs) => startVouch({ label: 'vouch (profiled)', env: { ...instance.env, ...KEEP_ALIVE }, nodeArgs }),
        async (s) => new Client(s.base, CONCURRENCY),
        async (_s, c) => {
          try {
            await storm(c, sliceSeconds * 2)
          } finally {
            c.close()
          }
        })
      tables.push(...profileTables('POST /auth/login', profiled.summary))
      notes.push(`CPU profile of the login run: ${profiled.dir}`)
    }

    ctx.log(`login: RSS after a ${stormSeconds} s sign-in storm and ${idleSeconds} s idle`)
    rss = await rssAfterStorm(instance, stormSeconds, idleSeconds)
    const rssMiB = rss.endKb / 1024

    const targets: Target[] = [
      {
        goal: `sign-in ÷ raw argon2 verify, ${CONCURRENCY} in flight (same parameters and libuv pool, separate process, same run) ≥ ${TARGET_RATE}×`,
        measured: `${ratio(rateRatio)} (${l.rate.toFixed(1)} vs ${r.rate.toFixed(1)} per s${l.refused > 0 ? `; ${int(l.refused)} sign-ins refused with 503 and retried` : ''})`,
        met: rateRatio >= TARGET_RATE,
      },
      {
        goal: `event-loop p99 during the sign-in storm (${CONCURRENCY} in flight) < ${TARGET_EVENT_LOOP_P99_MS} ms`,
        measured: `${ms(l.eventLoop.p99)} ms (bare argon2 process under the same load ${ms(r.eventLoop.p99)} ms; idle server ${ms(idle.p99)} ms; 10 ms resolution, included)`,
        met: l.eventLoop.p99 < TARGET_EVENT_LOOP_P99_MS,
      },
      {
        goal: `RSS after a 60 s sign-in storm, then 60 s idle ≤ ${TARGET_RSS_MIB} MiB${ctx.quick ? ` (quick mode: ${stormSeconds} s storm, ${idleSeconds} s idle)` : ''}`,
        measured: `${rssMiB.toFixed(0)} MiB (peak during the storm ${(rss.storm.rssPeakKb / 1024).toFixed(0)} MiB, at start ${(rss.startKb / 1024).toFixed(0)} MiB)`,
        met: rssMiB <= TARGET_RSS_MIB,
      },
    ]
    const mib = (bytes: number | undefined) => bytes === undefined ? 'n/a' : (bytes / 2 ** 20).toFixed(1)
    return {
      id: 'login',
      title: '3. Sign-in vs the raw argon2 rate',
      about: `The real server, \`node dist/server.js\` (SQLite), with bench/lib/probe.mjs preloaded. ${CONCURRENCY} concurrent workers, ${slices} slices of ${sliceSeconds} s each for raw and for login, alternating (ABBA); a slice counts everything it started, over the time until the last one finished; ${ACCOUNTS} accounts (sign-in and per-IP limits lifted). ` +
        `Raw: argon2.verify in a bare plain-node process (bench/lib/a2-argon2.mjs) with vouch's configured parameters (m = ${argon2.memoryCost} KiB, t = ${argon2.timeCost}, p = ${argon2.parallelism}) and the same libuv thread pool size (${process.env.UV_THREADPOOL_SIZE ?? 4}). ` +
        'Event-loop delay: perf_hooks.monitorEventLoopDelay (resolution 10 ms, so a loop that is never late reads about 10 ms), in the server during the login slices and in the bare process during the raw slices. ' +
        `RSS: a fresh server process, ${stormSeconds} s of ${CONCURRENCY} concurrent sign-ins, its clients' connections closed, then ${idleSeconds} s idle; VmRSS from /proc.`,
      tables: [
        {
          caption: 'Sign-ins per second',
          header: ['run', 'per second', 'per slice', 'p50 ms', 'p99 ms', 'CPU ms per sign-in', 'completed', 'refused (503)'],
          rows: [
            [`raw argon2.verify ×${CONCURRENCY}, bare process`, r.rate.toFixed(1), r.rates.map((x) => x.toFixed(1)).join(', '), ms(r.p50), ms(r.p99), r.cpuMsPerOp.toFixed(1), int(r.count), ''],
            [`POST /auth/login ×${CONCURRENCY}`, l.rate.toFixed(1), l.rates.map((x) => x.toFixed(1)).join(', '), ms(l.p50), ms(l.p99), l.cpuMsPerOp.toFixed(1), int(l.count), int(l.refused)],
            ['**login ÷ raw**', `**${ratio(rateRatio)}**`, '', ratio(l.p50 / r.p50), ratio(l.p99 / r.p99), ratio(l.cpuMsPerOp / r.cpuMsPerOp), '', ''],
          ],
        },
        {
          caption: 'Event-loop delay',
          header: ['process and state', 'p50 ms', 'p99 ms', 'max ms', 'samples'],
          rows: [
            ['server, idle', ms(idle.p50), ms(idle.p99), ms(idle.max), idle.samples],
            [`server, ${CONCURRENCY} concurrent logins`, ms(l.eventLoop.p50), `**${ms(l.eventLoop.p99)}**`, ms(l.eventLoop.max), l.eventLoop.samples],
            [`bare process, ${CONCURRENCY} concurrent argon2.verify`, ms(r.eventLoop.p50), ms(r.eventLoop.p99), ms(r.eventLoop.max), r.eventLoop.samples],
            ['server under logins ÷ bare process', ratio(l.eventLoop.p50 / r.eventLoop.p50), ratio(l.eventLoop.p99 / r.eventLoop.p99), ratio(l.eventLoop.max / r.eventLoop.max), ''],
          ],
        },
        {
          caption: `Memory of a fresh server: ${stormSeconds} s sign-in storm, then ${idleSeconds} s idle (MiB)`,
          header: ['RSS at start', 'RSS peak (storm)', 'RSS end of storm', 'RSS peak (idle)', '**RSS end of idle**', 'VmHWM', 'heap used', 'heap total', 'external', 'array buffers', 'outside the JS heap (RSS − heap total − external)', 'sign-ins', 'refused (503)'],
          rows: [[(rss.startKb / 1024).toFixed(0), (rss.storm.rssPeakKb / 1024).toFixed(0), (rss.storm.rssEndKb / 1024).toFixed(0), (rss.idle.rssPeakKb / 1024).toFixed(0), `**${rssMiB.toFixed(0)}**`,
            (rss.idle.hwmKb / 1024).toFixed(0), mib(rss.memory.heapUsed), mib(rss.memory.heapTotal), mib(rss.memory.external), mib(rss.memory.arrayBuffers),
            mib(rss.endKb * 1024 - (rss.memory.heapTotal ?? NaN) - (rss.memory.external ?? NaN)), int(rss.logins), int(rss.refused)]],
        },
        {
          caption: `Other requests beside ${CONCURRENCY} concurrent logins (one client, sequential; latency ms, p50 / max)`,
          header: ['state', 'calls', 'GET /auth/me, token used before', 'GET /auth/me, first use of a token', 'GET /health/live', 'first use ÷ live (p50)'],
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
        ...notes,
        `One argon2.verify alone takes ${ms(single)} ms here (median, bare process): a loop blocked by hashing would be late by about that much at every sample.`,
        'CPU per sign-in: the server process\'s user+system time from /proc (argon2\'s threads included) over the login slices, and the bare process\'s over the raw slices, divided by the operations completed.',
        `Event-loop figures are per slice (the histogram is reset as each slice starts); the tables show the median of the slices' p50 and p99 and the worst maximum. Server RSS peak during the login slices ${mb(rssPeakKb)} MB.`,
        'The memory breakdown (process.memoryUsage(), no forced GC) is read through the probe right after the last RSS sample.',
      ],
      data: {
        raw: { ...r, eventLoop: r.eventLoop }, login: l, ratio: rateRatio, idle, single, rss,
        probes: Object.fromEntries(Object.entries(probes).map(([k, v]) => [k, { reusedP50: median(v.reused), freshP50: median(v.fresh), openP50: median(v.open), calls: v.open.length }])),
      },
    }
  } finally {
    await instance.drop()
  }
}
