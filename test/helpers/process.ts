/** Real vouch processes on loopback ports, for tests that need more than `inject`. */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export const root = fileURLToPath(new URL('../../', import.meta.url))

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface VouchProcess {
  child: ChildProcess
  base: string
  output (): string
  /** Sends SIGTERM and resolves with the exit code. */
  stop (): Promise<number | null>
}

/**
 * Starts `entry` (src/server.ts by default) with `env` on a free port; ready
 * when `healthPath` answers; killed at teardown.
 */
export async function startVouch (t: Test, env: Record<string, string>, entry = 'src/server.ts', healthPath = '/health/live'): Promise<VouchProcess> {
  const port = env.PORT ?? String(await freePort())
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, entry)], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  // Ready when it answers /health/live (whatever the log level).
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vouch exited with ${child.exitCode}:\n${output}`)
    if (Date.now() > deadline) throw new Error(`vouch did not start:\n${output}`)
    const live = await fetch(`${base}${healthPath}`).then((res) => res.ok, () => false)
    if (live) break
    await sleep(50)
  }
  return {
    child,
    base,
    output: () => output,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode)
      child.once('exit', (code) => resolve(code))
      child.kill('SIGTERM')
    }),
  }
}

export interface JsonResponse {
  status: number
  headers: Headers
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
}

/** fetch with JSON in and out. */
export async function call (base: string, url: string, init: { method?: string, body?: unknown, token?: string, headers?: Record<string, string> } = {}): Promise<JsonResponse> {
  const res = await fetch(`${base}${url}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(init.body !== undefined && { 'content-type': 'application/json' }),
      ...(init.token !== undefined && { authorization: `Bearer ${init.token}` }),
      ...init.headers,
    },
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
}

/**
 * Milliseconds until the resource server at `api` (GET /orders) refuses
 * `token` as revoked, polling every 5 ms; Infinity if it still has not after
 * `giveUpMs`.
 */
export async function revokedAtResourceServerWithin (api: VouchProcess, token: string, giveUpMs: number): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < giveUpMs) {
    const res = await call(api.base, '/orders', { token })
    if (res.status === 401 && res.body.code === 'token_revoked') return performance.now() - start
    await sleep(5)
  }
  return Infinity
}
