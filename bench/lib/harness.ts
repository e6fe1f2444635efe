/** Shared pieces of the benchmarks: child server processes, load runs, and tables. */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export const root = fileURLToPath(new URL('../../', import.meta.url))
export const quick = process.argv.includes('--quick')

export async function freePort (): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface BenchServer {
  base: string
  child: ChildProcess
  stop (): Promise<void>
}

/** Starts bench/lib/protected-server.ts with `env` (rate limits lifted, cheap logs). */
export async function startBenchServer (env: Record<string, string>): Promise<BenchServer> {
  const port = await freePort()
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-bench-'))
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/protected-server.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'error',
      RATE_LIMIT_MAX: '1000000000',
      LOGIN_MAX_FAILURES: '1000000000',
      REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`bench server exited with ${child.exitCode}`)
    if (await fetch(`${base}/health/live`).then((res) => res.ok, () => false)) break
    if (i > 1200) throw new Error('bench server did not start')
    await sleep(50)
  }
  return {
    base,
    child,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    }),
  }
}

export async function post (base: string, url: string, body: unknown, token?: string) {
  const res = await fetch(`${base}${url}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}

export interface LoadResult {
  /** Mean requests per second. */
  rps: number
  p99: number
  errors: number
}

/** Drives `url` with autocannon for `seconds`; every response must be 2xx. */
export async function load (url: string, seconds: number, options: { headers?: Record<string, string>, connections?: number } = {}): Promise<LoadResult> {
  const result = await autocannon({
    url,
    duration: seconds,
    connections: options.connections ?? 20,
    ...(options.headers && { headers: options.headers }),
  })
  const errors = result.non2xx + result.errors + result.timeouts
  if (errors > 0) throw new Error(`${url}: ${errors} failed requests of ${result.requests.total}`)
  return { rps: result.requests.average, p99: result.latency.p99, errors }
}

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
