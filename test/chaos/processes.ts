/**
 * The processes a chaos run starts and breaks: its own redis-server and its
 * vouch instances. Every child is tracked and only ever signalled through the
 * handle this module returns for it (never by name), and every one still
 * running is killed when the run ends, however it ends (the machine's shared
 * Redis on 6379 is never touched).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, root } from '../helpers/process.js'

const children = new Set<ChildProcess>()

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

/** Kills every child still running (a frozen one too: SIGKILL needs no SIGCONT). */
export function killChildren (): void {
  for (const child of children) if (running(child)) child.kill('SIGKILL')
  children.clear()
}

process.once('exit', killChildren)

/** Tracks `child`; its output is passed to `keep`. */
function track (child: ChildProcess, keep: (chunk: string) => void): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
  child.stdout?.on('data', (chunk: Buffer) => keep(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => keep(chunk.toString()))
}

/** Roughly the last `maxChars` characters written by a process, across its restarts. */
function outputKeeper (maxChars: number) {
  const chunks: string[] = []
  let size = 0
  const keep = (chunk: string) => {
    chunks.push(chunk)
    size += chunk.length
    while (size > maxChars && chunks.length > 1) size -= chunks.shift()!.length
  }
  return { keep, mark: (line: string) => keep(`--- ${line}\n`), read: () => chunks.join('') }
}

function exited (child: ChildProcess): Promise<void> {
  if (!running(child)) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Sends `signal`, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function terminate (child: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (!running(child)) return
  const gone = exited(child)
  child.kill(signal)
  const timer = setTimeout(() => { if (running(child)) child.kill('SIGKILL') }, graceMs)
  await gone
  clearTimeout(timer)
}

/** Answers true when a Redis server on `port` replies to PING within `timeoutMs`. */
export function redisAnswers (port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const done = (ok: boolean) => { clearTimeout(timer); socket.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), timeoutMs)
    let reply = ''
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => { reply += chunk.toString(); if (reply.includes('\r\n')) done(reply.startsWith('+PONG')) })
    socket.on('error', () => done(false))
  })
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly pid: number | undefined
  /** SIGTERM (SIGKILL if it lingers); resolves once it has exited. */
  stop (): Promise<void>
  /** Starts it again on the same port; resolves once it answers PING. */
  start (): Promise<void>
  /** SIGSTOP: connections stay open, nothing is answered. */
  freeze (): void
  /** SIGCONT. */
  thaw (): void
  output (): string
}

/** A redis-server of this run's own on a free loopback port, without persistence. */
export async function startRedis (): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const log = outputKeeper(64 * 1024)
  const output = log.read
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    track(child, log.keep)
    const spawned = child
    const failed = new Promise<never>((_resolve, reject) => {
      spawned.once('error', (err) => reject(new Error(`cannot start redis-server: ${err.message}`)))
    })
    const deadline = Date.now() + 10_000
    while (!(await Promise.race([redisAnswers(port), failed]))) {
      if (!running(spawned)) throw new Error(`redis-server exited:\n${output()}`)
      if (Date.now() > deadline) throw new Error(`redis-server did not answer within 10 s:\n${output()}`)
      await sleep(50)
    }
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    async stop () {
      if (child) await terminate(child, 'SIGTERM')
    },
    start,
    freeze () { if (child && running(child)) child.kill('SIGSTOP') },
    thaw () { if (child && running(child)) child.kill('SIGCONT') },
    output,
  }
}

export interface VouchInstance {
  readonly name: string
  readonly base: string
  /** False from the moment it is killed until it answers again after a restart. */
  readonly up: boolean
  /** Starts the process (again, on the same port); resolves once /health/live answers. */
  start (): Promise<void>
  /** SIGKILL: no graceful shutdown, in-flight requests are lost. */
  kill (): Promise<void>
  /** SIGTERM, as an operator would stop it. */
  stop (): Promise<void>
  output (): string
}

/** A vouch process (src/server.ts through tsx, so it always runs the current sources) on a fixed port. */
export async function createInstance (name: string, env: Record<string, string>): Promise<VouchInstance> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  const log = outputKeeper(4 * 1024 * 1024)
  const output = log.read
  let up = false
  return {
    name,
    base,
    get up () { return up },
    async start () {
      child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/server.ts')], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', ...env, HOST: '127.0.0.1', PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      log.mark(`started (pid ${child.pid})`)
      track(child, log.keep)
      const deadline = Date.now() + 60_000
      for (;;) {
        if (!running(child)) throw new Error(`vouch ${name} exited with ${child.exitCode ?? child.signalCode}:\n${output()}`)
        if (Date.now() > deadline) throw new Error(`vouch ${name} did not answer within 60 s:\n${output()}`)
        const live = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(1000) }).then((res) => res.ok, () => false)
        if (live) break
        await sleep(50)
      }
      up = true
    },
    async kill () {
      if (!child) return
      const gone = exited(child)
      child.kill('SIGKILL')
      up = false
      log.mark('killed (SIGKILL)')
      await gone
    },
    async stop () {
      up = false
      if (child) await terminate(child, 'SIGTERM', 10_000)
    },
    output,
  }
}
