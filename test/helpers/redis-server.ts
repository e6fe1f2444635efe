/**
 * A redis-server of the test's own on a free loopback port, so that a test
 * may freeze it (SIGSTOP: connections stay open, nothing answers) without
 * touching the machine's shared Redis. Killed at teardown, thawed first.
 * The executable is VOUCH_REDIS_SERVER (redis-server on the PATH by
 * default); a test guards with requireRedisServer (./services.ts) first.
 */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from './process.js'
import { REDIS_SERVER } from './services.js'

export interface RedisServer {
  url: string
  port: number
  /** SIGSTOP: the kernel still accepts connections and data, Redis answers nothing. */
  freeze (): void
  /** SIGCONT. */
  thaw (): void
}

/** True when a PING on a fresh connection is answered within `timeoutMs`. */
function answersPing (port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const done = (ok: boolean) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

export async function startRedisServer (t: Test): Promise<RedisServer> {
  const port = await freePort()
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  const running = () => child.exitCode === null && child.signalCode === null
  t.teardown(() => {
    if (!running()) return
    child.kill('SIGCONT')
    child.kill('SIGKILL')
  })
  const deadline = Date.now() + 10_000
  while (!await answersPing(port)) {
    if (!running()) throw new Error(`redis-server exited:\n${output}`)
    if (Date.now() > deadline) throw new Error(`redis-server did not start:\n${output}`)
    await sleep(50)
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    freeze: () => { child.kill('SIGSTOP') },
    thaw: () => { child.kill('SIGCONT') },
  }
}
