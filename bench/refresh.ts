/**
 * Benchmark 4: refresh throughput and latency against "today". Refresh
 * tokens rotate, so every request needs the token the previous one
 * returned: each worker owns a few sessions (signed in beforehand) and
 * refreshes them in turn, keeping the newest token of each. Measured on the
 * real build (`node dist/server.js`) and on today's (e478914, the tree before
 * issue 11) started the same way, in the same run, in ABBA order with the
 * same worker loop on the bare Fastify and node:http routes, so that the
 * client's own cost and the machine's drift fall on every side alike.
 * Target: refreshes per second ≥ 2× today's. If today's build fails, the
 * last recorded figure stands in, and the report says so.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Provider } from '../src/db/schema.js'
import { buildToday, TODAY_COMMIT } from './lib/builds.js'
import { Client, int, mb, mean, median, ms, percentile, ratio, runLoop, sampleProcess, startBare, startVouch, type LoopResult, type NodeServer, type Usage } from './lib/harness.js'
import { BENCH_PASSWORD, createInstance, hashingRequest, type Instance } from './lib/instances.js'
import { profileDir, profileRun, profileTables, topSelfTable } from './lib/profile.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const WORKERS = 16
const SESSIONS_PER_WORKER = 2
const ACCOUNTS = 4
const TARGET = 2

interface Run { loop: LoopResult, usage: Usage }

/** Signs in SESSIONS_PER_WORKER sessions per worker (registering the accounts first, unless they exist); their refresh tokens. */
async function signIn (client: Client, register = true): Promise<string[][]> {
  if (register) {
    await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) =>
      hashingRequest(client, '/auth/register', { email: `refresh-${i}@bench.example`, password: BENCH_PASSWORD }, 201)))
  }
  return Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const tokens: string[] = []
    for (let k = 0; k < SESSIONS_PER_WORKER; k++) {
      const pair = await hashingRequest(client, '/auth/login', { email: `refresh-${(w + k) % ACCOUNTS}@bench.example`, password: BENCH_PASSWORD }, 200)
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

/** Today's refresh rate as last recorded in bench/results (a run of this benchmark, or the one before issue 11). */
function recordedTodayRate (resultsDir: string, provider: Provider): { rate: number, source: string } | undefined {
  for (const file of ['results-full.json', 'results-quick.json']) {
    try {
      const json = JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as { startedAt: string, sections: Array<{ id: string, data?: Record<string, { today?: { rate: number }, refresh?: { rate: number } }> }> }
      const figures = json.sections.find((s) => s.id === 'refresh')?.data?.[provider]
      const rate = figures?.today?.rate ?? figures?.refresh?.rate
      if (rate !== undefined) return { rate, source: `bench/results/${file}, ${json.startedAt}` }
    } catch {
      // no such file
    }
  }
  return undefined
}

/**
 * Each lane's kept-alive connections idle while the other lanes run: the
 * servers keep them for 10 minutes (the default 5 s let a server close one
 * just as the next request went out on it: read ECONNRESET).
 */
const KEEP_ALIVE = { HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000', HTTP_IDLE_TIMEOUT_MS: '600000' }

interface Lane { key: string, label: string, server: NodeServer, client: Client, step: (worker: number) => Promise<unknown> }

export async function refreshBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 2 : 10
  const passes = ctx.quick ? 2 : 4
  const providers: Provider[] = ctx.quick ? ['sqlite'] : ['sqlite', 'postgresql']
  const rows: Array<Array<string | number>> = []
  const tables: Table[] = []
  const targets: Target[] = []
  const notes: string[] = []
  const data: Record<string, unknown> = {}

  let today: Awaited<ReturnType<typeof buildToday>> | undefined
  try {
    today = await buildToday(ctx.log, { allowInstall: !ctx.quick })
  } catch (err) {
    notes.push(`The build of ${TODAY_COMMIT} ("today") FAILED: ${(err as Error).message.slice(0, 300)}. Today's rate is the last recorded figure instead (below), not a same-run measurement.`)
  }

  const fastify = await startBare('fastify')
  const bareHttp = await startBare('http')
  try {
    for (const provider of providers) {
      const instances: Instance[] = []
      const servers: NodeServer[] = []
      const clients: Client[] = []
      const lanes: Lane[] = []
      try {
        const current = await createInstance(provider)
        instances.push(current)
        const vouch = await startVouch({ label: 'vouch', env: { ...current.env, ...KEEP_ALIVE } })
        servers.push(vouch)
        const old = today ? await createInstance(provider) : undefined
        if (old) instances.push(old)
        const vouchToday = today && old ? await startVouch({ label: `vouch ${TODAY_COMMIT}`, dir: today.dir, env: { ...old.env, ...KEEP_ALIVE } }) : undefined
        if (vouchToday) servers.push(vouchToday)
        // A copy of the current server on the same database, started before any traffic, profiled
        // with --profile, or in full mode when the target is missed.
        const toProfile = ctx.profile !== 'never' ? await profileDir(ctx, `refresh-${provider}`) : undefined
        const profiled = toProfile ? await startVouch({ label: 'vouch, profiled', env: { ...current.env, ...KEEP_ALIVE }, nodeArgs: toProfile.nodeArgs }) : undefined
        if (profiled) servers.push(profiled)

        const client = (server: NodeServer) => { const c = new Client(server.base, WORKERS); clients.push(c); return c }
        for (const [key, label, server] of [['fastify', 'bare Fastify GET /hello', fastify], ['http', 'bare node:http GET /hello', bareHttp]] as const) {
          const c = client(server)
          lanes.push({ key, label, server, client: c, step: () => c.json('GET', '/hello', { expected: 200 }) })
        }
        const c = client(vouch)
        lanes.push({ key: 'refresh', label: 'vouch POST /auth/refresh', server: vouch, client: c, step: refresher(c, await signIn(c)) })
        if (vouchToday) {
          const t = client(vouchToday)
          lanes.push({ key: 'today', label: `today (${TODAY_COMMIT}) POST /auth/refresh`, server: vouchToday, client: t, step: refresher(t, await signIn(t)) })
        }

        for (const lane of lanes) await runLoop(WORKERS, 1, lane.step) // warm-up
        notes.push(await ctx.quiet(`refresh, ${provider}`))
        const runs = new Map<string, Run[]>(lanes.map((l) => [l.key, []]))
        const order = Array.from({ length: passes }, (_, i) => i % 2 === 0 ? lanes : [...lanes].reverse()).flat()
        for (const lane of order) {
          const sampler = sampleProcess(lane.server.pid)
          const loop = await runLoop(WORKERS, seconds, lane.step)
          runs.get(lane.key)!.push({ loop, usage: sampler.stop() })
        }
        const sum = (label: string, list: Run[]) => {
          const latencies = list.flatMap((r) => r.loop.latencies)
          const requests = list.reduce((s, r) => s + r.loop.count, 0)
          return {
            label,
            rate: mean(list.map((r) => r.loop.rate)),
            p50: median(latencies),
            p99: percentile(latencies, 99),
            cpuPercent: mean(list.map((r) => r.usage.cpuPercent)),
            cpuUsPerRequest: list.reduce((s, r) => s + r.usage.cpuMs, 0) * 1000 / requests,
            rssPeakKb: Math.max(...list.map((r) => r.usage.rssPeakKb)),
            requests,
          }
        }
        const s = Object.fromEntries(lanes.map((l) => [l.key, sum(l.label, runs.get(l.key)!)]))
        data[provider] = s
        const base = s.fastify!.rate
        for (const lane of lanes) {
          const x = s[lane.key]!
          rows.push([provider, x.label, int(x.rate), ratio(x.rate / base), ms(x.p50), ms(x.p99), `${x.cpuPercent.toFixed(0)} %`, x.cpuUsPerRequest.toFixed(0), mb(x.rssPeakKb)])
        }
        const f = s.refresh!
        notes.push(`${provider}: ${int(f.requests)} refreshes on the current build${s.today ? ` and ${int(s.today.requests)} on today's` : ''}, every one answered 200 with a new token (rotation chains never broke).`)
        const todayRate = s.today?.rate
        const recorded = todayRate === undefined ? recordedTodayRate(ctx.resultsDir, provider) : undefined
        const reference = todayRate ?? recorded?.rate
        if (todayRate !== undefined) {
          rows.push([provider, '**current ÷ today**', `**${ratio(f.rate / todayRate)}**`, '', ratio(f.p50 / s.today!.p50), ratio(f.p99 / s.today!.p99), '', ratio(f.cpuUsPerRequest / s.today!.cpuUsPerRequest), ''])
        }
        targets.push({
          goal: `${provider}: POST /auth/refresh per second ≥ ${TARGET}× today's (${TODAY_COMMIT}), same run`,
          measured: reference === undefined
            ? `${int(f.rate)}/s; no figure for today (build failed, none recorded)`
            : `${ratio(f.rate / reference)} (${int(f.rate)}/s vs ${int(reference)}/s${recorded ? `, today's figure RECORDED in ${recorded.source}, not measured in this run` : ''}; ${ratio(f.rate / base)} of bare Fastify in the same loop)`,
          ...(reference !== undefined && { today: `${int(reference)}/s${recorded ? ' (recorded)' : ''}` }),
          met: reference === undefined ? undefined : f.rate / reference >= TARGET,
        })

        const missed = reference !== undefined && f.rate / reference < TARGET
        if (profiled && toProfile && (ctx.profile === 'always' || missed)) {
          ctx.log(`refresh ${provider}: profiling POST /auth/refresh`)
          const result = await profileRun(profiled, toProfile.dir,
            async (server) => {
              const pc = new Client(server.base, WORKERS)
              return { pc, tokens: await signIn(pc, false) } // same database: the accounts exist
            },
            async (_server, { pc, tokens }) => {
              try {
                await runLoop(WORKERS, seconds, refresher(pc, tokens))
              } finally {
                pc.close()
              }
            })
          tables.push(topSelfTable(`CPU profile of POST /auth/refresh (${provider})`, result.summary), profileTables(`refresh ${provider}`, result.summary)[0]!)
          notes.push(`CPU profile of the refresh run (${provider}): ${result.dir}`)
        }
      } finally {
        for (const c of clients) c.close()
        await Promise.all(servers.map((server) => server.stop()))
        for (const instance of instances) await instance.drop()
      }
    }
  } finally {
    await fastify.stop()
    await bareHttp.stop()
  }

  return {
    id: 'refresh',
    title: '4. Refresh throughput against today',
    about: `${WORKERS} concurrent workers over loopback (keep-alive), each rotating ${SESSIONS_PER_WORKER} sessions of its own; ${seconds} s per run, ` +
      `${passes} runs per server in ABBA order. The current build and today's (${TODAY_COMMIT}, before issue 11), both \`node dist/server.js\` started the same way ` +
      '(LOG_LEVEL info, per-IP limit lifted), each on its own scratch database; baselines: the same worker loop on the bare Fastify and node:http GET /hello. ' +
      'Every refresh reads the session, rotates it with a conditional UPDATE and signs a new access token.',
    tables: [{
      caption: 'Refreshes per second and latency',
      header: ['database', 'server', 'req/s', '÷ bare Fastify (same loop)', 'p50 ms', 'p99 ms', 'server CPU', 'server CPU µs/req', 'RSS peak MiB'],
      rows,
    }, ...tables],
    targets,
    notes,
    data,
  }
}
