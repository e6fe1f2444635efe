/**
 * Slow clients cannot hold connections: headers or a body trickled byte by
 * byte, a connection that never sends anything, an idle kept-alive
 * connection are each closed within their timeout, and past the connection
 * cap new connections are refused at once, while ordinary requests and the
 * long-lived revocation feed are served. Real sockets on loopback, with
 * timeouts of about a second so that the suite stays short; the bounds
 * asserted leave seconds of margin for a loaded machine.
 */
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createTestApp } from '../helpers/app.js'

const HEADERS_TIMEOUT = 1000
const REQUEST_TIMEOUT = 1500
const KEEP_ALIVE_TIMEOUT = 1000
/** Long enough that an ordinary request on a busy machine is not cut while its handler runs. */
const IDLE_TIMEOUT = 5000
const HEARTBEAT = 300
/** Generous: the machine may be busy. Node enforces these bounds within a quarter of the timeout. */
const MARGIN = 4000
/** How long a client keeps trying before the test calls the connection "held". */
const GIVE_UP = 12_000

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const ENV = {
  HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT),
  HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT),
  HTTP_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT),
  REVOCATION_FEED_HEARTBEAT_MS: String(HEARTBEAT),
  RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`,
}

async function listen (t: Test, env: Record<string, string> = ENV): Promise<number> {
  const { app } = await createTestApp(t, { env })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

interface Held {
  socket: Socket
  /** What the server sent. */
  received: () => string
  /** Resolves with the milliseconds from `start` to the server closing the connection, or undefined if it was still open after GIVE_UP. */
  closed: Promise<number | undefined>
}

/**
 * Opens a connection, sends `first`, then one byte of `trickle` every
 * 200 ms (cycling) until the server closes the connection or GIVE_UP
 * passes. Timing starts when `first` is sent (or at connect if it is empty).
 */
function slowClient (t: Test, port: number, first: string, trickle = ''): Held {
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {})
  const closed = new Promise<number | undefined>((resolve) => {
    socket.once('connect', async () => {
      const start = Date.now()
      socket.once('close', () => resolve(Date.now() - start))
      if (first) socket.write(first)
      let i = 0
      while (!socket.destroyed && Date.now() - start < GIVE_UP) {
        await sleep(200)
        if (trickle && socket.writable) socket.write(trickle[i++ % trickle.length]!)
      }
      if (!socket.destroyed) {
        resolve(undefined)
        socket.destroy()
      }
    })
  })
  return { socket, received: () => received, closed }
}

function assertClosedWithin (t: Test, ms: number | undefined, bound: number, what: string) {
  t.ok(ms !== undefined && ms <= bound + MARGIN, `${what}: closed after ${ms ?? `more than ${GIVE_UP}`} ms (bound ${bound} ms)`)
}

function assert408 (t: Test, received: string, what: string) {
  t.match(received, /^HTTP\/1\.1 408 /, `${what}: answered 408`)
  t.match(received, /"code":"request_timeout"/, `${what}: with the catalogue's code`)
}

t.test('headers trickled a byte every 200 ms are cut off at the headers timeout with a 408, while others are served', async (t) => {
  const port = await listen(t)
  const clients = Array.from({ length: 10 }, () =>
    slowClient(t, port, 'GET /health/live HTTP/1.1\r\n', 'x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'))
  await sleep(300)
  const res = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(res.status, 200, 'an ordinary request is answered meanwhile')
  for (const [i, client] of clients.entries()) {
    assertClosedWithin(t, await client.closed, HEADERS_TIMEOUT, `slow headers #${i + 1}`)
    assert408(t, client.received(), `slow headers #${i + 1}`)
  }
})

t.test('a body trickled a byte every 200 ms is cut off at the request timeout with a 408', async (t) => {
  const port = await listen(t)
  const head = 'POST /auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n'
  const clients = Array.from({ length: 10 }, () => slowClient(t, port, head, '{"email": "a@example.com", "password": "aaaaaaaa"'))
  await sleep(300)
  const res = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'nobody@example.com', password: 'not the password' }),
  })
  t.equal(res.status, 401, 'an ordinary sign-in is answered meanwhile')
  for (const [i, client] of clients.entries()) {
    assertClosedWithin(t, await client.closed, REQUEST_TIMEOUT, `slow body #${i + 1}`)
    assert408(t, client.received(), `slow body #${i + 1}`)
  }
})

t.test('a connection that never sends a byte is closed at the headers timeout, the idle timeout at the latest', async (t) => {
  const port = await listen(t)
  const clients = Array.from({ length: 5 }, () => slowClient(t, port, ''))
  for (const [i, client] of clients.entries()) {
    assertClosedWithin(t, await client.closed, Math.max(HEADERS_TIMEOUT, IDLE_TIMEOUT), `silent connection #${i + 1}`)
  }
})

t.test('a kept-alive connection left idle after its response is closed at the keep-alive timeout', async (t) => {
  const port = await listen(t)
  const client = slowClient(t, port, 'GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')
  // Node keeps the socket one second beyond the advertised keep-alive timeout.
  assertClosedWithin(t, await client.closed, KEEP_ALIVE_TIMEOUT + 1000, 'idle keep-alive connection')
  t.match(client.received(), /^HTTP\/1\.1 200 /, 'the request itself was answered')
  t.match(client.received(), /keep-alive: timeout=1\b/i, 'the timeout is advertised')
})

t.test('bytes that are not HTTP get a 400 in the error shape, and the connection is closed', async (t) => {
  const port = await listen(t)
  const client = slowClient(t, port, 'HELLO THERE\r\n\r\n')
  assertClosedWithin(t, await client.closed, 0, 'garbage')
  const [head = '', body = ''] = client.received().split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 400 /)
  t.match(head, /\r\nconnection: close/i)
  t.same(JSON.parse(body), { statusCode: 400, error: 'Bad Request', code: 'validation_failed', message: 'The request is not valid.' })
})

t.test('the revocation feed outlives every timeout: its heartbeats keep it open', async (t) => {
  const port = await listen(t)
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const res = await fetch(`http://127.0.0.1:${port}/auth/revocations`, {
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}` },
    signal: controller.signal,
  })
  t.equal(res.status, 200)
  const reader = res.body!.getReader()
  const lasts = Math.max(HEADERS_TIMEOUT, REQUEST_TIMEOUT, KEEP_ALIVE_TIMEOUT, IDLE_TIMEOUT) + 1500
  const start = Date.now()
  let writes = 0
  while (Date.now() - start < lasts) {
    const { done } = await reader.read()
    if (done) break
    writes += 1
  }
  t.ok(Date.now() - start >= lasts, `the stream stayed open ${Date.now() - start} ms`)
  t.ok(writes >= 3, `the feed kept writing (${writes} reads): heartbeats`)
})

t.test('past the connection cap, a new connection is closed at once; once some close, new ones are served', async (t) => {
  const cap = 8
  const port = await listen(t, { HTTP_MAX_CONNECTIONS: String(cap) })
  const held: Socket[] = []
  for (let i = 0; i < cap; i++) {
    const socket = connect(port, '127.0.0.1')
    t.teardown(() => socket.destroy())
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    held.push(socket)
  }
  // The held connections are open on the server side before the next one arrives.
  await sleep(200)

  const started = Date.now()
  const extra = connect(port, '127.0.0.1')
  t.teardown(() => extra.destroy())
  extra.on('error', () => {})
  const refusedAfter = await Promise.race([
    new Promise<number>((resolve) => extra.once('close', () => resolve(Date.now() - started))),
    sleep(3000).then(() => undefined),
  ])
  t.ok(refusedAfter !== undefined, `connection ${cap + 1} was closed by the server (after ${refusedAfter} ms)`)

  for (const socket of held.splice(0, cap / 2)) socket.destroy()
  await sleep(300)
  const res = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(res.status, 200, 'with connections free again, a request is served')
  for (const socket of held) socket.destroy()
})
