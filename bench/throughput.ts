/**
 * Benchmark 2: request throughput against the right baselines. Every figure
 * is a ratio to a bare Fastify 5 route (bench/lib/bare-fastify.mjs; bare
 * node:http beside it as context), each its own plain-node process, driven
 * by the same client (autocannon, 32 connections) in the same run, in ABBA
 * order so that drift in the machine's load falls on every side alike.
 *
 * vouch is the real build, `node dist/server.js` (LOG_LEVEL at its default,
 * info, stdout read by the bench), with the in-process probe preloaded
 * (bench/lib/probe.mjs, inert until asked). "Today" is the same build of
 * e478914, the tree before issue 11, started the same way. Measured:
 *   - GET /auth/me with 100 users' tokens, cycled through by every connection;
 *   - GET /health/live (no auth, no database: the cost of the plugin stack)
 *     and GET /health/ready (one trivial query);
 *   - VmRSS of the process at the end of the /auth/me load, with
 *     process.memoryUsage() from inside;
 *   - a 2-worker cluster (node dist/cluster.js, WORKERS=2) ÷ one process;
 *   - a CPU profile of /auth/me before (today) and after (current);
 *   - after POST /auth/logout-all of every user, every /auth/me answers 401.
 */
import { buildToday, TODAY_COMMIT, type TodayBuild } from './lib/builds.js'
import { int, load, mb, mean, ms, procStats, processTree, ratio, sampleProcess, sleep, startBare, startVouch, type LoadResult, type NodeServer, type Usage } from './lib/harness.js'
import { bearerRequests, createInstance, registerUsers, type BenchUser } from './lib/instances.js'
import { addRoot, profileDir, profileRun, profileTables, topSelfTable, type ProfileSummary } from './lib/profile.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const CONNECTIONS = 32
const USERS = 100
const TARGETS = { me: 0.35, live: 0.8, rssMiB: 150, cluster: 1.85 }
/** Seconds a revocation may take to reach another instance with no bus between them (REVOCATION_CACHE_TTL's default). */
const CACHE_TTL_S = 5

interface Route {
  key: string
  label: string
  server: NodeServer
  path: string
  requests?: Array<{ headers: Record<string, string> }>
  /** Sum CPU and RSS over the process and its children (a cluster). */
  tree?: boolean
}

interface Run { load: LoadResult, usage: Usage, rssEndKb: number }

interface Summary {
  label: string
  rps: number
  p50: number
  p99: number
  cpuPercent: number
  cpuUsPerRequest: number
  rssEndKb: number
  rssPeakKb: number
  runs: number
}

/** RSS of a process and all its descendants, kB. */
function treeRssKb (pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + (procStats(p)?.rssKb ?? 0), 0)
}

/**
 * Runs every route `passes` times in ABBA order (forward, then backward, and
 * again), after one warm-up run each; the runs of each route, by key.
 */
async function abba (routes: Route[], seconds: number, warmSeconds: number, passes: number, log: (m: string) => void): Promise<Map<string, Run[]>> {
  for (const r of routes) {
    // A cluster warms two processes (JIT, caches): twice the warm-up.
    await load(`${r.server.base}${r.path}`, r.tree ? 2 * warmSeconds : warmSeconds, { connections: CONNECTIONS, ...(r.requests && { requests: r.requests }) })
  }
  const runs = new Map<string, Run[]>(routes.map((r) => [r.key, []]))
  const order = Array.from({ length: passes }, (_, i) => i % 2 === 0 ? routes : [...routes].reverse()).flat()
  for (const r of order) {
    const sampler = sampleProcess(r.server.pid)
    const cpuBefore = r.tree ? processTree(r.server.pid).map((p) => procStats(p)?.cpuMs ?? 0).reduce((a, b) => a + b, 0) : 0
    const t0 = performance.now()
    const result = await load(`${r.server.base}${r.path}`, seconds, { connections: CONNECTIONS, ...(r.requests && { requests: r.requests }) })
    const usage = sampler.stop()
    if (r.tree) {
      const cpuMs = processTree(r.server.pid).map((p) => procStats(p)?.cpuMs ?? 0).reduce((a, b) => a + b, 0) - cpuBefore
      usage.cpuMs = cpuMs
      usage.cpuPercent = cpuMs / (performance.now() - t0) * 100
    }
    const rssEndKb = r.tree ? treeRssKb(r.server.pid) : procStats(r.server.pid)?.rssKb ?? NaN
    runs.get(r.key)!.push({ load: result, usage, rssEndKb })
    log(`  ${r.label}: ${int(result.rps)} req/s`)
  }
  return runs
}

function summarise (label: string, runs: Run[]): Summary {
  const requests = runs.reduce((sum, r) => sum + r.load.requests, 0)
  return {
    label,
    rps: mean(runs.map((r) => r.load.rps)),
    p50: Math.max(...runs.map((r) => r.load.p50)),
    p99: Math.max(...runs.map((r) => r.load.p99)),
    cpuPercent: mean(runs.map((r) => r.usage.cpuPercent)),
    cpuUsPerRequest: runs.reduce((sum, r) => sum + r.usage.cpuMs, 0) * 1000 / requests,
    rssEndKb: runs.at(-1)!.rssEndKb,
    rssPeakKb: Math.max(...runs.map((r) => Math.max(r.usage.rssPeakKb, r.rssEndKb))),
    runs: runs.length,
  }
}

const mib = (kb: number) => kb / 1024
const cpuCell = (s: Summary) => Number.isFinite(s.cpuPercent) ? `${s.cpuPercent.toFixed(0)} %` : 'n/a'

export async function throughputBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 2 : 10
  const warm = ctx.quick ? 1 : 3
  const passes = ctx.quick ? 2 : 4
  const profileSeconds = ctx.quick ? 3 : 10
  const tables: Table[] = []
  const targets: Target[] = []
  const notes: string[] = []
  const data: Record<string, unknown> = {}

  let today: TodayBuild | undefined
  try {
    today = await buildToday(ctx.log, { allowInstall: !ctx.quick })
    addRoot(today.dir)
    notes.push(`${today.note}.`)
  } catch (err) {
    const message = `the build of ${TODAY_COMMIT} ("today") FAILED, so today's figures are not measured in this run: ${(err as Error).message.slice(0, 400)}`
    ctx.log(message)
    notes.push(`${message}. The "now" column of issue 11 (recorded before the work): /auth/me 0.08× bare Fastify, /health/live 0.49×, RSS 319–441 MiB, cluster 1.66×.`)
  }

  const current = await createInstance('sqlite')
  const old = today && await createInstance('sqlite')
  const started: NodeServer[] = []
  const start = async (p: Promise<NodeServer>) => { const s = await p; started.push(s); return s }
  try {
    // The cluster and the profiled copies join their instance's database and keys (the same tokens
    // work on them), all started before any load: a process joining a SQLite database after another
    // has served traffic on it can fail its start-up migration check (SocketTimeout), seen here.
    // Processes of one instance start one after the other (each checks the migrations), the
    // instances and the baselines side by side.
    const profileBefore = today && old ? await profileDir(ctx, `me-before-${TODAY_COMMIT}`) : undefined
    const profileAfter = await profileDir(ctx, 'me-after')
    const [fastify, bareHttp, [vouch, cluster, profiled, users], [vouchToday, profiledToday, usersToday]] = await Promise.all([
      start(startBare('fastify')),
      start(startBare('http')),
      (async () => {
        const one = await start(startVouch({ label: 'vouch', env: current.env, probe: true }))
        const many = await start(startVouch({ label: 'vouch cluster', env: { ...current.env, WORKERS: '2' }, cluster: true }))
        const copy = await start(startVouch({ label: 'vouch, profiled', env: current.env, nodeArgs: profileAfter.nodeArgs }))
        ctx.log(`throughput: registering ${USERS} users on vouch`)
        return [one, many, copy, await registerUsers(one.base, USERS, 'me')] as const
      })(),
      (async () => {
        if (!today || !old || !profileBefore) return [undefined, undefined, [] as BenchUser[]] as const
        const one = await start(startVouch({ label: `vouch ${TODAY_COMMIT}`, dir: today.dir, env: old.env, probe: true }))
        const copy = await start(startVouch({ label: 'vouch today, profiled', dir: today.dir, env: old.env, nodeArgs: profileBefore.nodeArgs }))
        ctx.log(`throughput: registering ${USERS} users on today's vouch`)
        return [one, copy, await registerUsers(one.base, USERS, 'me')] as const
      })(),
    ])

    // --- 1. one process against the bare routes -----------------------------------------
    const routes: Route[] = [
      { key: 'fastify', label: 'bare Fastify GET /hello', server: fastify, path: '/hello' },
      { key: 'http', label: 'bare node:http GET /hello', server: bareHttp, path: '/hello' },
      { key: 'me', label: `vouch GET /auth/me (${USERS} users)`, server: vouch, path: '/auth/me', requests: bearerRequests(users) },
      { key: 'live', label: 'vouch GET /health/live', server: vouch, path: '/health/live' },
      { key: 'ready', label: 'vouch GET /health/ready', server: vouch, path: '/health/ready' },
      ...vouchToday
        ? [
            { key: 'meToday', label: `today (${TODAY_COMMIT}) GET /auth/me (${USERS} users)`, server: vouchToday, path: '/auth/me', requests: bearerRequests(usersToday) },
            { key: 'liveToday', label: `today (${TODAY_COMMIT}) GET /health/live`, server: vouchToday, path: '/health/live' },
          ]
        : [],
    ]
    notes.push(await ctx.quiet('throughput, one process'))
    const runs = await abba(routes, seconds, warm, passes, ctx.log)
    const s = new Map(routes.map((r) => [r.key, summarise(r.label, runs.get(r.key)!)]))
    const base = s.get('fastify')!.rps
    const rows = routes.map((r) => {
      const x = s.get(r.key)!
      return [x.label, int(x.rps), `**${ratio(x.rps / base)}**`, ratio(x.rps / s.get('http')!.rps), ms(x.p50), ms(x.p99), cpuCell(x), x.cpuUsPerRequest.toFixed(0), mb(x.rssEndKb)]
    })
    const me = s.get('me')!
    const live = s.get('live')!
    const meToday = s.get('meToday')
    const liveToday = s.get('liveToday')
    rows.push(['**protected ÷ open** (/auth/me ÷ /health/live, same process; the old "authenticated ÷ open" row)', '', `**${ratio(me.rps / live.rps)}**`, '', '', '', '', ratio(me.cpuUsPerRequest / live.cpuUsPerRequest), ''])
    if (meToday && liveToday) rows.push([`protected ÷ open, today (${TODAY_COMMIT})`, '', ratio(meToday.rps / liveToday.rps), '', '', '', '', ratio(meToday.cpuUsPerRequest / liveToday.cpuUsPerRequest), ''])
    tables.push({
      caption: `Requests per second, one process each (mean of ${passes} runs of ${seconds} s in ABBA order)`,
      header: ['route', 'req/s', '÷ bare Fastify', '÷ bare node:http', 'p50 ms', 'p99 ms', 'server CPU', 'server CPU µs/req', 'RSS at end MiB'],
      rows,
    })

    // Memory at the end of the /auth/me load, from outside (VmRSS) and inside (process.memoryUsage()).
    await load(`${vouch.base}/auth/me`, seconds, { connections: CONNECTIONS, requests: bearerRequests(users) })
    const rssKb = procStats(vouch.pid)?.rssKb ?? NaN
    const inside = await vouch.probe('memory')
    const afterGc = await vouch.probe('memory', { gc: true })
    let rssTodayKb = NaN
    const memoryRows: Array<Array<string | number>> = []
    const memoryRow = (label: string, rss: number, m: Record<string, number>, g: Record<string, number>) =>
      [label, mb(rss), mb(m.heapTotal! / 1024), mb(m.heapUsed! / 1024), mb(g.heapUsed! / 1024), mb(m.external! / 1024), mb(m.arrayBuffers! / 1024), mb(rss - (m.heapTotal! + m.external!) / 1024)]
    memoryRows.push(memoryRow('vouch', rssKb, inside, afterGc))
    if (vouchToday) {
      await load(`${vouchToday.base}/auth/me`, seconds, { connections: CONNECTIONS, requests: bearerRequests(usersToday) })
      rssTodayKb = procStats(vouchToday.pid)?.rssKb ?? NaN
      memoryRows.push(memoryRow(`today (${TODAY_COMMIT})`, rssTodayKb, await vouchToday.probe('memory'), await vouchToday.probe('memory', { gc: true })))
    }
    tables.push({
      caption: `Memory of one process at the end of a ${seconds} s /auth/me load (MiB)`,
      header: ['server', 'VmRSS', 'heap total', 'heap used', 'heap used after full GC', 'external', 'of which array buffers', 'RSS outside the JS heap and external (code, stacks, native allocations, allocator)'],
      rows: memoryRows,
    })

    targets.push({
      goal: `vouch GET /auth/me, ${USERS} users' tokens ÷ bare Fastify route ≥ ${TARGETS.me}×`,
      measured: `${ratio(me.rps / base)} (${int(me.rps)} vs ${int(base)} req/s)`,
      ...(meToday && { today: `${ratio(meToday.rps / base)} (${int(meToday.rps)} req/s)` }),
      met: me.rps / base >= TARGETS.me,
    }, {
      goal: `vouch GET /health/live ÷ bare Fastify route ≥ ${TARGETS.live}× (cost of the plugin stack)`,
      measured: `${ratio(live.rps / base)} (${int(live.rps)} req/s)`,
      ...(liveToday && { today: `${ratio(liveToday.rps / base)} (${int(liveToday.rps)} req/s)` }),
      met: live.rps / base >= TARGETS.live,
    }, {
      goal: `RSS of one process at the end of the /auth/me load ≤ ${TARGETS.rssMiB} MiB`,
      measured: `${mib(rssKb).toFixed(0)} MiB (heap used ${mb(inside.heapUsed! / 1024)} MiB)`,
      ...(Number.isFinite(rssTodayKb) && { today: `${mib(rssTodayKb).toFixed(0)} MiB` }),
      met: Number.isFinite(rssKb) ? mib(rssKb) <= TARGETS.rssMiB : undefined,
    })
    data.oneProcess = Object.fromEntries(s)
    data.memory = { rssKb, inside, afterGc, rssTodayKb }

    // --- 2. a 2-worker cluster against one process ----------------------------------------
    const clusterRoutes: Route[] = [
      { key: 'fastify', label: 'bare Fastify GET /hello', server: fastify, path: '/hello' },
      { key: 'one', label: 'vouch, one process: GET /auth/me', server: vouch, path: '/auth/me', requests: bearerRequests(users) },
      { key: 'cluster', label: 'vouch, 2-worker cluster: GET /auth/me', server: cluster, path: '/auth/me', requests: bearerRequests(users), tree: true },
    ]
    notes.push(await ctx.quiet('throughput, cluster'))
    const clusterRuns = await abba(clusterRoutes, seconds, warm, passes, ctx.log)
    const c = new Map(clusterRoutes.map((r) => [r.key, summarise(r.label, clusterRuns.get(r.key)!)]))
    const cBase = c.get('fastify')!.rps
    tables.push({
      caption: `One process against a 2-worker cluster (node dist/cluster.js, WORKERS=2) on the same database and keys; mean of ${passes} runs of ${seconds} s in ABBA order. The client (one autocannon process) shares the 2 cores with the workers.`,
      header: ['server', 'req/s', '÷ bare Fastify', '÷ one process', 'p99 ms', 'CPU (all processes)', 'CPU µs/req', 'RSS at end MiB (all processes)'],
      rows: clusterRoutes.map((r) => {
        const x = c.get(r.key)!
        return [x.label, int(x.rps), ratio(x.rps / cBase), ratio(x.rps / c.get('one')!.rps), ms(x.p99), cpuCell(x), x.cpuUsPerRequest.toFixed(0), mb(x.rssEndKb)]
      }),
    })
    const clusterRatio = c.get('cluster')!.rps / c.get('one')!.rps
    targets.push({
      goal: `2-worker cluster ÷ one process, GET /auth/me ≥ ${TARGETS.cluster}×`,
      measured: `${ratio(clusterRatio)} (${int(c.get('cluster')!.rps)} vs ${int(c.get('one')!.rps)} req/s; cluster RSS ${mb(c.get('cluster')!.rssEndKb)} MiB)`,
      met: clusterRatio >= TARGETS.cluster,
    })
    data.cluster = Object.fromEntries(c)

    // --- 3. CPU profile of /auth/me, before and after ---------------------------------------
    const profiles: Array<{ label: string, summary?: ProfileSummary, dir?: string }> = []
    const profileOne = async (label: string, server: NodeServer, dir: string, who: BenchUser[]) => {
      const result = await profileRun(server, dir,
        async (server) => { await load(`${server.base}/auth/me`, 1, { connections: CONNECTIONS, requests: bearerRequests(who) }) },
        async (server) => { await load(`${server.base}/auth/me`, profileSeconds, { connections: CONNECTIONS, requests: bearerRequests(who) }) })
      profiles.push({ label, ...result })
    }
    ctx.log('throughput: CPU profiles of GET /auth/me')
    if (profiledToday && profileBefore) {
      await profileOne(`before (${TODAY_COMMIT})`, profiledToday, profileBefore.dir, usersToday)
    } else {
      notes.push(`No CPU profile BEFORE: the build of ${TODAY_COMMIT} failed (see above).`)
    }
    await profileOne('after (current)', profiled, profileAfter.dir, users)
    for (const p of profiles) {
      tables.push(topSelfTable(`CPU profile of GET /auth/me, ${p.label}: top 10 functions by self time, ${profileSeconds} s under load`, p.summary!))
      tables.push(profileTables(`/auth/me ${p.label}`, p.summary!)[0]!)
      notes.push(`CPU profile ${p.label}: ${p.dir}`)
    }
    data.profiles = profiles.map((p) => ({ label: p.label, busyMs: p.summary!.busyMs, top: p.summary!.selfByFunction.slice(0, 10), areas: p.summary!.selfByArea }))

    // --- 4. revocation still checked on every request --------------------------------------
    const signOut = await Promise.all(users.map((u) => fetch(`${vouch.base}/auth/logout-all`, { method: 'POST', headers: { authorization: `Bearer ${u.accessToken}` } }).then((res) => res.status)))
    if (signOut.some((status) => status !== 204)) throw new Error(`POST /auth/logout-all: statuses ${[...new Set(signOut)].join(', ')}`)
    // Same process: exact at once. Any 200 here is a security failure, and fails the run.
    const after = await load(`${vouch.base}/auth/me`, 1, { connections: CONNECTIONS, requests: bearerRequests(users), expect: 401 })
    // Another instance with no bus between them (the cluster): within the cache's TTL.
    await sleep((CACHE_TTL_S + 0.5) * 1000)
    let clusterAfter: LoadResult | undefined
    let clusterError: string | undefined
    try {
      clusterAfter = await load(`${cluster.base}/auth/me`, 1, { connections: CONNECTIONS, requests: bearerRequests(users), expect: 401 })
    } catch (err) {
      clusterError = (err as Error).message
    }
    targets.push({
      goal: `after POST /auth/logout-all of all ${USERS} users, every GET /auth/me with their tokens answers 401 (same process at once; another instance, the cluster, within the ${CACHE_TTL_S} s cache TTL)`,
      measured: `${int(after.requests)} of ${int(after.requests)} answered 401 on the process at once; ` +
        (clusterAfter ? `${int(clusterAfter.requests)} of ${int(clusterAfter.requests)} on the cluster after ${CACHE_TTL_S + 0.5} s` : `cluster: ${clusterError}`),
      met: clusterAfter !== undefined,
    })
  } finally {
    await Promise.all(started.map((server) => server.stop()))
    await current.drop()
    await old?.drop()
  }

  return {
    id: 'throughput',
    title: '2. Throughput against bare Fastify',
    about: `autocannon, ${CONNECTIONS} connections over loopback, one client for every server, ${seconds} s per run after a ${warm} s warm-up, ` +
      `runs in ABBA order (forward, backward${passes > 2 ? ', twice' : ''}). Baselines: bare Fastify 5 (logger off) and bare node:http, GET /hello → {"ok":true}, ` +
      'each its own plain-node process. vouch is the real build, `node dist/server.js` on a scratch SQLite database, per-IP limit lifted (RATE_LIMIT_MAX), ' +
      'LOG_LEVEL at its default (info: its log writes are part of what is measured; the bench reads and drops its stdout); ' +
      `today is the same build of ${TODAY_COMMIT} (before issue 11), started the same way. GET /auth/me cycles through ${USERS} users' tokens on every connection. ` +
      'Server CPU is user+system time from /proc over the run (100 % = one core). The client shares the 2 cores with the server.',
    tables,
    targets,
    notes,
    data,
  }
}
