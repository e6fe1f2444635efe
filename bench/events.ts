/**
 * Benchmark: what storing security events costs the request path. Two
 * builds of the same server, `node dist/server.js` on scratch databases of
 * their own, one with events stored (EVENT_RETENTION_DAYS=90, the default)
 * and one with them only logged (EVENT_RETENTION_DAYS=0), driven by the same
 * worker loop in ABBA order:
 *
 * - sign-in (POST /auth/login): each writes `sign_in_succeeded` in the
 *   session's transaction;
 * - refresh (POST /auth/refresh): a rotation writes no event (only a replay
 *   does), so this row shows the table's presence costs nothing;
 * - a failed sign-in (wrong password): `sign_in_failed`, written on its own.
 *
 * Target: with events ≥ 0.95× without, for sign-in and refresh.
 */
import type { Provider } from '../src/db/schema.js'
import { Client, int, mean, ms, median, percentile, ratio, runLoop, startVouch, type LoopResult, type NodeServer } from './lib/harness.js'
import { BENCH_PASSWORD, createInstance, hashingRequest, type Instance } from './lib/instances.js'
import type { Context, Section, Target } from './lib/report.js'

const WORKERS = 16
const ACCOUNTS = 4
const TARGET = 0.95
const KEEP_ALIVE = { HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000', HTTP_IDLE_TIMEOUT_MS: '600000' }
/** The login throttle must not refuse the failed sign-ins the bench makes on purpose. */
const NO_THROTTLE = { LOGIN_MAX_FAILURES: '1000000000', LOGIN_MAX_ACCOUNT_FAILURES: '1000000000' }

const email = (i: number) => `events-${i}@bench.example`

interface Mode { key: 'on' | 'off', label: string, retention: string }
const MODES: Mode[] = [
  { key: 'on', label: 'events stored', retention: '90' },
  { key: 'off', label: 'events logged only', retention: '0' },
]

interface Operation { key: string, label: string, step: (client: Client, state: string[][]) => (worker: number) => Promise<unknown> }

const OPERATIONS: Operation[] = [
  {
    key: 'login',
    label: 'POST /auth/login',
    step: (client) => (worker) => hashingRequest(client, '/auth/login', { email: email(worker % ACCOUNTS), password: BENCH_PASSWORD }, 200),
  },
  {
    key: 'refresh',
    label: 'POST /auth/refresh',
    step: (client, tokens) => async (worker) => {
      const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken: tokens[worker]![0] }, expected: 200 })
      tokens[worker]![0] = pair.refreshToken as string
    },
  },
  {
    key: 'failed',
    label: 'POST /auth/login, wrong password',
    step: (client) => async (worker) => {
      for (let attempt = 0; ; attempt++) {
        const res = await client.request('POST', '/auth/login', { body: { email: email(worker % ACCOUNTS), password: 'not the password' } })
        if (res.status === 401) return
        if (res.status !== 503 || attempt >= 50) throw new Error(`failed sign-in: ${res.status} ${res.body.slice(0, 200)}`)
        await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100))
      }
    },
  },
]

export async function eventsBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 3 : 10
  const passes = ctx.quick ? 2 : 4
  const providers: Provider[] = ctx.quick ? ['sqlite'] : ['sqlite', 'postgresql']
  const rows: Array<Array<string | number>> = []
  const targets: Target[] = []
  const notes: string[] = []
  const data: Record<string, unknown> = {}

  for (const provider of providers) {
    const instances: Instance[] = []
    const servers: NodeServer[] = []
    const clients: Client[] = []
    try {
      const lanes: Array<{ mode: Mode, op: Operation, server: NodeServer, step: (worker: number) => Promise<unknown> }> = []
      for (const mode of MODES) {
        const instance = await createInstance(provider)
        instances.push(instance)
        const server = await startVouch({ label: `vouch, ${mode.label}`, env: { ...instance.env, ...KEEP_ALIVE, ...NO_THROTTLE, EVENT_RETENTION_DAYS: mode.retention } })
        servers.push(server)
        const client = new Client(server.base, WORKERS)
        clients.push(client)
        await Promise.all(Array.from({ length: ACCOUNTS }, (_, i) => hashingRequest(client, '/auth/register', { email: email(i), password: BENCH_PASSWORD }, 201)))
        const tokens = await Promise.all(Array.from({ length: WORKERS }, async (_, w) =>
          [(await hashingRequest(client, '/auth/login', { email: email(w % ACCOUNTS), password: BENCH_PASSWORD }, 200)).refreshToken as string]))
        for (const op of OPERATIONS) lanes.push({ mode, op, server, step: op.step(client, tokens) })
      }
      for (const lane of lanes) await runLoop(WORKERS, 1, lane.step) // warm-up
      notes.push(await ctx.quiet(`events, ${provider}`))
      const runs = new Map<string, LoopResult[]>(lanes.map((l) => [`${l.op.key}:${l.mode.key}`, []]))
      // ABBA per operation, so the two modes of one operation always run side by side.
      for (const op of OPERATIONS) {
        const pair = lanes.filter((l) => l.op === op)
        for (let pass = 0; pass < passes; pass++) {
          for (const lane of pass % 2 === 0 ? pair : [...pair].reverse()) {
            runs.get(`${op.key}:${lane.mode.key}`)!.push(await runLoop(WORKERS, seconds, lane.step))
          }
        }
      }
      const figures: Record<string, unknown> = {}
      for (const op of OPERATIONS) {
        const sum = (mode: Mode) => {
          const list = runs.get(`${op.key}:${mode.key}`)!
          const latencies = list.flatMap((r) => r.latencies)
          return { rate: mean(list.map((r) => r.rate)), p50: median(latencies), p99: percentile(latencies, 99), requests: list.reduce((s, r) => s + r.count, 0) }
        }
        const on = sum(MODES[0]!)
        const off = sum(MODES[1]!)
        figures[op.key] = { on, off }
        rows.push([provider, op.label, int(on.rate), int(off.rate), `**${ratio(on.rate / off.rate)}**`, ms(on.p50), ms(off.p50), ms(on.p99), ms(off.p99)])
        if (op.key !== 'failed') {
          targets.push({
            goal: `${provider}: ${op.label} per second with events stored ≥ ${TARGET}× with events off, same run`,
            measured: `${ratio(on.rate / off.rate)} (${int(on.rate)}/s vs ${int(off.rate)}/s)`,
            met: on.rate / off.rate >= TARGET,
          })
        }
      }
      data[provider] = figures
    } finally {
      for (const c of clients) c.close()
      await Promise.all(servers.map((server) => server.stop()))
      for (const instance of instances) await instance.drop()
    }
  }

  return {
    id: 'events',
    title: '7. Security events: stored against logged only',
    about: `${WORKERS} concurrent workers over loopback (keep-alive); ${seconds} s per run, ${passes} runs per mode in ABBA order, per operation. ` +
      'Two `node dist/server.js` processes started the same way (LOG_LEVEL info, per-IP limit and sign-in throttle lifted), each on its own scratch database: ' +
      'EVENT_RETENTION_DAYS=90 (the default: every event written in its change\'s transaction) and EVENT_RETENTION_DAYS=0 (events logged, not stored). ' +
      'A sign-in writes one event (sign_in_succeeded) with its session; a refresh writes none; a failed sign-in writes one on its own.',
    tables: [{
      caption: 'Requests per second, events stored and not',
      header: ['database', 'operation', 'stored req/s', 'off req/s', 'stored ÷ off', 'p50 ms stored', 'p50 ms off', 'p99 ms stored', 'p99 ms off'],
      rows,
    }],
    targets,
    notes,
    data,
  }
}
