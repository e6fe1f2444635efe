/**
 * An oversized body gets its 413, every time. vouch answers before the body
 * has arrived; closing the connection at once would reset it under a client
 * that is still writing (EPIPE or ECONNRESET instead of the answer), so the
 * connection lingers, within a bound, until the client has sent its body.
 * Real sockets on loopback: `inject` has no connection to reset.
 */
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createTestApp } from '../helpers/app.js'
import { LINGER_MAX_BYTES, LINGER_MAX_MS } from '../../src/http/lingering-close.js'

const MB = 1024 * 1024
const CHUNK = 64 * 1024

interface Outcome {
  /** Everything the server sent before the connection ended. */
  response: string
  /** The first socket error the client saw, if any (EPIPE, ECONNRESET). */
  error: string | undefined
  /** Body bytes the client handed to its socket. */
  written: number
  /** Milliseconds from the first byte of the response to the end of the connection. */
  closedAfter: number | undefined
}

interface ClientOptions {
  mode: 'content-length' | 'chunked'
  /** Milliseconds between two 64 KiB writes. */
  pauseMs?: number
  /**
   * Read the answer only once the whole body is written, as many HTTP
   * clients do (the default); otherwise read while writing.
   */
  readAfterWriting?: boolean
  timeoutMs?: number
}

/**
 * Sends `bodyBytes` of body in 64 KiB writes `pauseMs` apart (1 ms: a
 * network slower than loopback, so that the server answers while the body
 * is on its way), declared by Content-Length or chunked, and reads until
 * the server ends the connection. Never throws: the outcome says what the
 * client saw. Bounded by `timeoutMs`.
 */
function sendOversized (port: number, path: string, bodyBytes: number, options: ClientOptions): Promise<Outcome> {
  const { mode, pauseMs = 1, readAfterWriting = true, timeoutMs = 15_000 } = options
  return new Promise((resolve) => {
    // Half-open: like a client busy sending its body, it keeps writing after the server's FIN.
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    let response = ''
    let error: string | undefined
    let written = 0
    let firstByteAt: number | undefined
    let settled = false
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ response, error, written, closedAfter: firstByteAt === undefined ? undefined : Date.now() - firstByteAt })
    }
    const timer = setTimeout(() => { error ??= 'client timeout'; finish() }, timeoutMs)
    socket.setEncoding('latin1')
    if (readAfterWriting) socket.pause()
    socket.on('data', (chunk: string) => { firstByteAt ??= Date.now(); response += chunk })
    socket.on('error', (err: NodeJS.ErrnoException) => { error ??= err.code ?? err.message; finish() })
    socket.on('close', finish)
    // The server's FIN ends the answer; a client still writing its body goes on until it is done or cut off.
    let answered = false
    let doneWriting = false
    socket.on('end', () => { answered = true; if (doneWriting) finish() })
    socket.on('connect', async () => {
      const length = mode === 'content-length' ? `content-length: ${bodyBytes}` : 'transfer-encoding: chunked'
      socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${length}\r\n\r\n`)
      const piece = Buffer.alloc(CHUNK, 'a')
      piece[0] = '['.charCodeAt(0)
      while (written < bodyBytes && socket.writable) {
        const size = Math.min(CHUNK, bodyBytes - written)
        const data = mode === 'chunked'
          ? Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), piece.subarray(0, size), Buffer.from('\r\n')])
          : piece.subarray(0, size)
        written += size
        if (!socket.write(data)) await new Promise((resolve) => { socket.once('drain', resolve); socket.once('close', resolve) })
        await sleep(pauseMs)
      }
      if (mode === 'chunked' && socket.writable) socket.write('0\r\n\r\n')
      doneWriting = true
      socket.resume()
      if (answered) finish()
    })
  })
}

function got413 (t: Test, outcome: Outcome, name: string): boolean {
  const [head = '', body = ''] = outcome.response.split('\r\n\r\n')
  const ok = /^HTTP\/1\.1 413 /.test(head) && /"code":"payload_too_large"/.test(body)
  t.ok(ok, `${name}: the 413 arrives`, ok ? {} : { error: outcome.error, written: outcome.written, response: outcome.response.slice(0, 200) })
  return ok
}

async function listen (t: Test): Promise<number> {
  const { app } = await createTestApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

t.test('a client that writes a 2 MB body before reading gets its 413 on every attempt, declared or chunked', async (t) => {
  const port = await listen(t)
  const attempts = 20
  for (const mode of ['content-length', 'chunked'] as const) {
    let received = 0
    for (let i = 0; i < attempts; i++) {
      const outcome = await sendOversized(port, '/auth/login', 2 * MB, { mode })
      if (got413(t, outcome, `${mode} #${i + 1}`)) received += 1
    }
    t.equal(received, attempts, `${mode}: ${received} of ${attempts} clients read their 413`)
  }

  const outcome = await sendOversized(port, '/auth/register', 2 * MB, { mode: 'chunked' })
  t.equal(outcome.error, undefined, 'the client could write its whole body')
  t.match(outcome.response, /\r\nconnection: close\r\n/i, 'the answer says the connection closes')
})

t.test('lingering is bounded in bytes: a body far over the bound is cut off', async (t) => {
  const port = await listen(t)
  const bodyBytes = 4 * LINGER_MAX_BYTES
  for (const mode of ['content-length', 'chunked'] as const) {
    const outcome = await sendOversized(port, '/auth/login', bodyBytes, { mode, pauseMs: 0 })
    t.not(outcome.error, undefined, `${mode}: the client was cut off (${outcome.error})`)
    t.ok(outcome.written < bodyBytes, `${mode}: it could not send the whole body (${outcome.written} of ${bodyBytes} bytes)`)
  }
  t.equal((await fetch(`http://127.0.0.1:${port}/health/live`)).status, 200, 'the server still answers')
})

t.test('lingering is bounded in time: a body that never ends is cut off after LINGER_MAX_MS', async (t) => {
  const port = await listen(t)
  // 64 KiB every 100 ms: the byte bound is not reached before the time bound.
  const outcome = await sendOversized(port, '/auth/login', 1024 * MB, { mode: 'chunked', pauseMs: 100, readAfterWriting: false, timeoutMs: LINGER_MAX_MS + 10_000 })
  got413(t, outcome, 'a client reading while it writes')
  t.not(outcome.error, 'client timeout', 'the server closed the connection')
  t.ok(outcome.closedAfter! < LINGER_MAX_MS + 4000, `closed ${outcome.closedAfter} ms after the answer (bound ${LINGER_MAX_MS} ms)`)
  t.ok(outcome.written < LINGER_MAX_BYTES, 'well before the byte bound')
})
