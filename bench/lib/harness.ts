/**
 * Shared pieces of the benchmarks: child server processes (tracked, so none
 * outlives the run), load runs (autocannon, or a keep-alive worker loop for
 * requests that differ each time), /proc sampling of a server's CPU and
 * memory, statistics and markdown tables.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { freePort } from '../../test/helpers/process.js'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import autocannon from 'autocannon'

export const root = fileURLToPath(new URL('../../', import.meta.url))
export const quick = process.argv.includes('--quick')

// One way to find a free loopback port, shared with the tests.
export { freePort }

/** Every child started here: killed if the run ends (or breaks) before they are stopped. */
const children = new Set<ChildProcess>()

export function killChildren (): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
}

process.once('exit', killChildren)

/** SIGTERM, then SIGKILL after `graceMs`; resolves once `exited` (the child's exit) has. */
async function terminate (child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

export interface BenchServer {
  base: string
  child: ChildProcess
  pid: number
  /** The last lines the server wrote (for error messages). */
  output (): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop (graceMs?: number): Promise<void>
}

export interface ServerOptions {
  /** Extra node flags for the server process (--cpu-prof, --expose-gc, ...). */
  nodeArgs?: string[]
}

/** Starts bench/lib/protected-server.ts with `env` (rate limits lifted, cheap logs). */
export async function startBenchServer (env: Record<string, string>, options: ServerOptions = {}): Promise<BenchServer> {
  const port = await freePort()
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-bench-'))
  const child = spawn(process.execPath, [...options.nodeArgs ?? [], '--import', 'tsx', path.join(root, 'bench/lib/protected-server.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      // The same libuv thread pool as this process (argon2 runs on it).
      ...(process.env.UV_THREADPOOL_SIZE !== undefined && { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE }),
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'error',
      RATE_LIMIT_MAX: '1000000000',
      LOGIN_MAX_FAILURES: '1000000000',
      LOGIN_MAX_ACCOUNT_FAILURES: '1000000000',
      REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', (chunk: Buffer) => { keep(chunk); process.stderr.write(chunk) })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bench server exited with ${child.exitCode}: ${output}`)
    if (await fetch(`${base}/health/live`).then((res) => res.ok, () => false)) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`bench server did not start within 90 s: ${output}`)
    }
    await sleep(50)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => { children.delete(child); resolve() }))
  return {
    base,
    child,
    pid: child.pid!,
    output: () => output,
    async stop (graceMs = 15_000) {
      await terminate(child, exited, graceMs)
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

// --- plain node servers: the real vouch build, bare baselines --------------------------------

export interface NodeServer extends BenchServer {
  label: string
  /** Asks the preloaded probe (bench/lib/probe.mjs) inside the server; only with `probe: true`. */
  probe<T = Record<string, number>> (cmd: string, args?: Record<string, unknown>): Promise<T>
}

export interface NodeServerOptions {
  label: string
  /** The script node runs (absolute, or relative to `cwd`). */
  script: string
  cwd?: string
  env?: Record<string, string>
  nodeArgs?: string[]
  /** GET path polled until it answers 2xx. */
  readyPath: string
  /** Preload bench/lib/probe.mjs and open an IPC channel to it. */
  probe?: boolean
  /** Listen here instead of a free port. */
  port?: number
}

/**
 * Starts `node [nodeArgs] script` (no tsx: what production runs) on a free
 * loopback port given in PORT. Its stdout is read and dropped as it comes
 * (vouch logs at info there: the writes are part of what is measured, and a
 * pipe nobody reads would stall it); stderr is passed on.
 */
export async function startNode (options: NodeServerOptions): Promise<NodeServer> {
  const port = options.port ?? await freePort()
  const nodeArgs = [...options.nodeArgs ?? [], ...options.probe ? ['--import', pathToFileURL(path.join(root, 'bench/lib/probe.mjs')).href] : []]
  const child = spawn(process.execPath, [...nodeArgs, options.script], {
    cwd: options.cwd ?? root,
    env: {
      PATH: process.env.PATH ?? '',
      ...(process.env.UV_THREADPOOL_SIZE !== undefined && { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE }),
      PORT: String(port),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe', ...options.probe ? ['ipc' as const] : []],
  })
  children.add(child)
  let lastOut: Buffer = Buffer.alloc(0)
  let errors = ''
  child.stdout!.on('data', (chunk: Buffer) => { lastOut = chunk })
  child.stderr!.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-4000)
    process.stderr.write(`[${options.label}] ${chunk.toString()}`)
  })
  const output = () => `${errors}${lastOut.toString().slice(-2000)}`
  const pending = new Map<number, { resolve (value: unknown): void, reject (err: Error): void }>()
  let nextId = 1
  child.on('message', (message: { vouchProbe?: number, result?: unknown, error?: string }) => {
    const waiter = message?.vouchProbe === undefined ? undefined : pending.get(message.vouchProbe)
    if (waiter === undefined) return
    pending.delete(message.vouchProbe!)
    if (message.error !== undefined) waiter.reject(new Error(`${options.label} probe: ${message.error}`))
    else waiter.resolve(message.result)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    children.delete(child)
    for (const waiter of pending.values()) waiter.reject(new Error(`${options.label} exited`))
    pending.clear()
    resolve()
  }))
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 90_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.label} exited with ${child.exitCode}: ${output()}`)
    if (await fetch(`${base}${options.readyPath}`).then((res) => res.ok, () => false)) break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${options.label} did not start within 90 s: ${output()}`)
    }
    await sleep(50)
  }
  return {
    label: options.label,
    base,
    child,
    pid: child.pid!,
    output,
    probe<T> (cmd: string, args?: Record<string, unknown>): Promise<T> {
      if (!options.probe || child.send === undefined) return Promise.reject(new Error(`${options.label} runs without the probe`))
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => { pending.delete(id); reject(new Error(`${options.label} probe: no answer to ${cmd} within 30 s`)) }, 30_000)
        pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v as T) }, reject: (e) => { clearTimeout(timer); reject(e) } })
        child.send!({ vouchProbe: id, cmd, args })
      })
    },
    async stop (graceMs = 15_000) {
      await terminate(child, exited, graceMs)
    },
  }
}

/** The bare baselines, each its own plain-node process: GET /hello → {"ok":true}. */
export function startBare (kind: 'fastify' | 'http'): Promise<NodeServer> {
  return startNode({ label: `bare ${kind === 'fastify' ? 'Fastify' : 'node:http'}`, script: path.join(root, `bench/lib/bare-${kind}.mjs`), readyPath: '/hello' })
}

/** Environment of a benchmarked vouch: per-IP and sign-in limits lifted, LOG_LEVEL left at its default (info). */
export function vouchEnv (env: Record<string, string>): Record<string, string> {
  return {
    RATE_LIMIT_MAX: '1000000000',
    LOGIN_MAX_FAILURES: '1000000000',
    LOGIN_MAX_ACCOUNT_FAILURES: '1000000000',
    ...env,
  }
}

export interface VouchOptions {
  label: string
  /** A checkout holding dist/ (the repository itself, or an older commit's build). */
  dir?: string
  /** DATABASE_URL, DATA_DIR, REFRESH_TOKEN_SECRET, JWT_ISSUER, ... (see vouchEnv). */
  env: Record<string, string>
  nodeArgs?: string[]
  probe?: boolean
  /** node dist/cluster.js instead of dist/server.js (WORKERS in env). */
  cluster?: boolean
}

/**
 * The real built server: `node [flags of its npm start script] [--import
 * probe.mjs] dist/server.js` (or dist/cluster.js) in `dir`. A start that fails is tried once more: on a
 * loaded machine a process joining a SQLite database another one is using
 * can time out in its start-up migration check.
 */
export async function startVouch (options: VouchOptions): Promise<NodeServer> {
  try {
    return await startVouchOnce(options)
  } catch (err) {
    process.stderr.write(`[${options.label}] did not start (${(err as Error).message.split('\n')[0]!.slice(0, 200)}); trying once more\n`)
    await sleep(1000)
    return startVouchOnce(options)
  }
}

/**
 * The node flags `npm start` (or `npm run start:cluster`) of the checkout in
 * `dir` gives (e.g. heap limits), so that each build runs as its own start
 * script runs it.
 */
export function startScriptFlags (dir: string, cluster = false): string[] {
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
    const script = pkg.scripts?.[cluster ? 'start:cluster' : 'start'] ?? ''
    const match = /^node\s+(.*?)\s*dist\/(?:server|cluster)\.js\s*$/.exec(script.trim())
    return match?.[1] ? match[1].split(/\s+/).filter((flag) => flag.startsWith('--')) : []
  } catch {
    return []
  }
}

function startVouchOnce (options: VouchOptions): Promise<NodeServer> {
  const dir = options.dir ?? root
  return startNode({
    label: options.label,
    script: path.join(dir, 'dist', options.cluster ? 'cluster.js' : 'server.js'),
    cwd: dir,
    env: vouchEnv(options.env),
    nodeArgs: [...startScriptFlags(dir, options.cluster), ...options.nodeArgs ?? []],
    ...(options.probe !== undefined && { probe: options.probe }),
    readyPath: '/health/live',
  })
}

/** The pids of `pid` and all its descendants (a cluster's primary and workers), from /proc. */
export function processTree (pid: number): number[] {
  const found = [pid]
  for (let i = 0; i < found.length; i++) {
    try {
      const children = readFileSync(`/proc/${found[i]}/task/${found[i]}/children`, 'utf8').trim()
      if (children !== '') found.push(...children.split(/\s+/).map(Number))
    } catch {
      // gone, or not Linux
    }
  }
  return found
}

// --- a quiet machine -----------------------------------------------------------------------

/**
 * Waits until the 1-minute load average is below `threshold` (for at most
 * `maxSeconds`); says whether it got there. Other work on a shared machine
 * cannot be stopped, only waited out and reported.
 */
export async function waitForQuiet (maxSeconds: number, threshold = 1.0): Promise<{ quiet: boolean, waitedS: number, load: number, message: string }> {
  const t0 = performance.now()
  let load = loadavg()[0]!
  while (load >= threshold && performance.now() - t0 < maxSeconds * 1000) {
    await sleep(1000)
    load = loadavg()[0]!
  }
  const waitedS = (performance.now() - t0) / 1000
  const quiet = load < threshold
  const message = quiet
    ? waitedS >= 1 ? `waited ${waitedS.toFixed(0)} s for a quiet machine (load average ${load.toFixed(2)} < ${threshold})` : `quiet machine (load average ${load.toFixed(2)} < ${threshold})`
    : `did not get a quiet machine: load average ${load.toFixed(2)} (≥ ${threshold}) after waiting ${waitedS.toFixed(0)} s`
  return { quiet, waitedS, load, message }
}

export async function post (base: string, url: string, body: unknown, token?: string) {
  const res = await fetch(`${base}${url}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  })
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}

export async function getJson (base: string, url: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${url}`, { signal: AbortSignal.timeout(30_000) })
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}

export interface LoadResult {
  /** Mean requests per second. */
  rps: number
  p50: number
  p99: number
  requests: number
  errors: number
  /** Responses by status code. */
  statuses: Record<string, number>
}

export interface LoadOptions {
  headers?: Record<string, string>
  connections?: number
  /**
   * Requests cycled through by every connection, each built once (e.g. one
   * per user's token), so that the client's cost per request is the same as
   * with a single request.
   */
  requests?: Array<{ headers: Record<string, string> }>
  /** The status every answer must have; default: any 2xx. */
  expect?: number
}

/** Drives `url` with autocannon for `seconds`; every response must be 2xx (or `expect`). */
export async function load (url: string, seconds: number, options: LoadOptions = {}): Promise<LoadResult> {
  const result = await autocannon({
    url,
    duration: seconds,
    connections: options.connections ?? 20,
    timeout: 30,
    ...(options.headers && { headers: options.headers }),
    ...(options.requests && { requests: options.requests.map((r) => ({ method: 'GET' as const, headers: r.headers })) }),
  })
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, Number((s as { count: number }).count)]))
  const wrong = options.expect === undefined
    ? result.non2xx
    : Object.entries(statuses).reduce((sum, [code, count]) => sum + (Number(code) === options.expect ? 0 : count), 0)
  const errors = wrong + result.errors + result.timeouts
  if (errors > 0) throw new Error(`${url}: ${errors} failed requests of ${result.requests.total} (status counts ${JSON.stringify(statuses)})`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, requests: result.requests.total, errors, statuses }
}

// --- a keep-alive HTTP client and a worker loop --------------------------------------------

export interface Response {
  status: number
  body: string
}

/** A minimal keep-alive client (node:http), cheaper per request than fetch. */
export class Client {
  readonly #agent: http.Agent
  readonly #url: URL

  constructor (base: string, sockets = 64) {
    this.#url = new URL(base)
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: sockets })
  }

  request (method: string, pathname: string, options: { body?: unknown, token?: string } = {}): Promise<Response> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body)
    return new Promise((resolve, reject) => {
      const req = http.request({
        agent: this.#agent,
        host: this.#url.hostname,
        port: this.#url.port,
        method,
        path: pathname,
        timeout: 30_000,
        headers: {
          ...(payload !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        },
      }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`${method} ${pathname}: no answer within 30 s`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** Like `request`, but the status must be `expected` (2xx by default); returns the parsed body. */
  async json (method: string, pathname: string, options: { body?: unknown, token?: string, expected?: number } = {}): Promise<Record<string, unknown>> {
    const res = await this.request(method, pathname, options)
    const ok = options.expected === undefined ? res.status >= 200 && res.status < 300 : res.status === options.expected
    if (!ok) throw new Error(`${method} ${pathname}: ${res.status} ${res.body.slice(0, 300)}`)
    return res.body === '' ? {} : JSON.parse(res.body) as Record<string, unknown>
  }

  close (): void {
    this.#agent.destroy()
  }
}

export interface LoopResult {
  /** Completed operations. */
  count: number
  /** Milliseconds per operation. */
  latencies: number[]
  /** Wall-clock milliseconds, until the last operation completed. */
  elapsed: number
  /** Operations per second over `elapsed`. */
  rate: number
}


/**
 * `workers` concurrent loops, each calling `step(worker)` back to back for
 * `seconds`; a step that throws ends the run with that error. Each step's
 * duration is recorded.
 */
export async function runLoop (workers: number, seconds: number, step: (worker: number) => Promise<unknown>): Promise<LoopResult> {
  const latencies: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  let failure: unknown
  await Promise.all(Array.from({ length: workers }, async (_, worker) => {
    while (failure === undefined && performance.now() < end) {
      const t0 = performance.now()
      try {
        await step(worker)
      } catch (err) {
        failure ??= err
        return
      }
      latencies.push(performance.now() - t0)
    }
  }))
  if (failure !== undefined) throw failure
  const elapsed = performance.now() - start
  return { count: latencies.length, latencies, elapsed, rate: latencies.length / (elapsed / 1000) }
}

// --- /proc sampling ------------------------------------------------------------------------

export interface ProcStats {
  /** User + system CPU time, milliseconds. */
  cpuMs: number
  rssKb: number
  /** Peak RSS so far (VmHWM). */
  hwmKb: number
}

const CLOCK_TICKS_PER_SECOND = 100 // Linux USER_HZ

/** The process's CPU time and memory from /proc (Linux); undefined elsewhere or once it has gone. */
export function procStats (pid: number): ProcStats | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of the whole line)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN)
    return { cpuMs: ticks * 1000 / CLOCK_TICKS_PER_SECOND, rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') }
  } catch {
    return undefined
  }
}

export interface Usage {
  /** Percent of one core over the window. */
  cpuPercent: number
  cpuMs: number
  wallMs: number
  rssStartKb: number
  rssEndKb: number
  /** Highest RSS sampled in the window. */
  rssPeakKb: number
  /** VmHWM at the end: the process's peak RSS since it started. */
  hwmKb: number
  samples: Array<{ t: number, rssKb: number }>
}

/** Samples `pid` every `intervalMs` until `stop()`; returns CPU use and RSS over the window. */
export function sampleProcess (pid: number, intervalMs = 250): { stop (): Usage } {
  const first = procStats(pid)
  const t0 = performance.now()
  const samples: Array<{ t: number, rssKb: number }> = []
  const take = () => {
    const stats = procStats(pid)
    if (stats !== undefined) samples.push({ t: performance.now() - t0, rssKb: stats.rssKb })
  }
  take()
  const timer = setInterval(take, intervalMs)
  return {
    stop () {
      clearInterval(timer)
      take()
      const last = procStats(pid)
      const wallMs = performance.now() - t0
      const cpuMs = first !== undefined && last !== undefined ? last.cpuMs - first.cpuMs : NaN
      return {
        cpuPercent: cpuMs / wallMs * 100,
        cpuMs,
        wallMs,
        rssStartKb: samples[0]?.rssKb ?? NaN,
        rssEndKb: samples.at(-1)?.rssKb ?? NaN,
        rssPeakKb: Math.max(...samples.map((s) => s.rssKb)),
        hwmKb: last?.hwmKb ?? NaN,
        samples,
      }
    },
  }
}

// --- statistics and formatting -------------------------------------------------------------

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))
  return sorted[rank]!
}

export const median = (values: readonly number[]): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const mean = (values: readonly number[]): number =>
  values.length === 0 ? NaN : values.reduce((sum, v) => sum + v, 0) / values.length

/** Milliseconds with sensible precision. */
export function ms (value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  if (value >= 1) return value.toFixed(2)
  return value.toFixed(3)
}

export function ratio (value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value >= 100) return `${value.toFixed(0)}×`
  if (value >= 10) return `${value.toFixed(1)}×`
  return `${value.toFixed(2)}×`
}

export const mb = (kb: number): string => Number.isFinite(kb) ? (kb / 1024).toFixed(0) : 'n/a'

export const int = (value: number): string => Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a'

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export { sleep }
