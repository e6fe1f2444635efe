/**
 * The revocation feed scales with the resource servers that follow it:
 * streams are capped per process (503 past the cap, a slot freed when one
 * closes), a reader that stops reading is cut while the others keep
 * receiving, a slow reader of a large backlog is not, and the database
 * statements a revocation (or a heartbeat) costs do not grow with the number
 * of connected streams. Real streams on loopback, raw HTTP readers.
 */
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createLogger } from '../../src/app.js'
import type { Db } from '../../src/db/client.js'
import { createTestApp } from '../helpers/app.js'
import { bearer, post, register } from '../helpers/client.js'
import { openEventStream, type EventStreamReader as Feed, type ReaderOptions, type StreamEvent as FeedEvent } from '../helpers/event-stream.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const AUTHORIZATION = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`
const CLIENTS = { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` }
/** Generous: the machine may be busy. */
const WAIT_MS = 15_000

/** GET /auth/revocations with the client's credentials (test/helpers/event-stream.ts). */
function openFeed (t: Test, port: number, options: ReaderOptions = {}): Promise<Feed> {
  return openEventStream(t, `http://127.0.0.1:${port}/auth/revocations`, { authorization: AUTHORIZATION }, options)
}

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

const isReady = (event: FeedEvent) => event.event === 'ready'
const revokes = (userId: string) => (event: FeedEvent) =>
  event.event === 'revocations' && (event.data.users as Array<{ id: string }>).some((user) => user.id === userId)

/** Log lines of the app, as parsed JSON. */
function captureLogs () {
  const lines: Array<Record<string, unknown>> = []
  return { lines, logger: createLogger('info', { write: (line: string) => { lines.push(JSON.parse(line)) } }) }
}

/**
 * Revoked sessions for `userId`, with ids of `idLength` characters: a few
 * rows that make megabytes of feed (as a mass revocation of many thousands
 * would), revoked at `now` (the app's clock, so that the heartbeat polls,
 * whose overlap is 0 here, do not send them again).
 */
async function revokeBulkyBacklog (db: Db, now: Date, userId: string, rows: number, idLength: number) {
  await db.session.createMany({
    data: Array.from({ length: rows }, (_, i) => ({
      id: `${String(i).padStart(6, '0')}${'s'.repeat(idLength - 6)}`,
      userId, tokenVersion: 0, refreshTokenHash: `hash-${i}`, lastUsedAt: now, expiresAt: new Date(now.getTime() + 3_600_000), revokedAt: now,
    })),
  })
}

t.test('past REVOCATION_FEED_MAX_STREAMS, a new stream is refused 503 service_unavailable with Retry-After; a stream that closes frees its slot', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, REVOCATION_FEED_MAX_STREAMS: '3' } })
  const port = await listen(app)
  const feeds = await Promise.all([1, 2, 3].map(() => openFeed(t, port)))
  t.same(feeds.map((feed) => feed.status), [200, 200, 200])
  await Promise.all(feeds.map((feed) => feed.next(isReady)))

  const refused = await openFeed(t, port)
  t.equal(refused.status, 503, 'the fourth stream is refused')
  t.equal(refused.headers['retry-after'], '5', 'with Retry-After')
  t.match(refused.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(refused.body), {
    statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable',
    message: 'This instance already serves as many revocation-feed streams as it allows; retry later or at another instance.',
  }, "the catalogue's shape and code")
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'the rest of the service is unaffected')

  feeds[0]!.close()
  const deadline = Date.now() + WAIT_MS
  let admitted: Feed | undefined
  while (admitted === undefined && Date.now() < deadline) {
    const attempt = await openFeed(t, port)
    if (attempt.status === 200) admitted = attempt
    else await sleep(50)
  }
  t.ok(admitted, 'once a stream has closed, a new one is admitted')
  await admitted?.next(isReady)
  t.equal((await openFeed(t, port)).status, 503, 'and the cap holds again')
})

t.test('a reader that stops reading is cut, while the streams that read keep receiving', async (t) => {
  const { lines, logger } = captureLogs()
  const { app, db, clock } = await createTestApp(t, {
    env: { ...CLIENTS, REVOCATION_FEED_HEARTBEAT_MS: '1000', REVOCATION_FEED_OVERLAP_MS: '0' }, logger,
  })
  const port = await listen(app)
  const alice = await register(app)
  // 10 MB of backlog: more than the kernel's socket buffers hold (about 4 MB on loopback here), so most of it waits in vouch.
  await revokeBulkyBacklog(db, clock.now(), alice.user.id, 400, 25_000)
  const readers = await Promise.all([1, 2].map(() => openFeed(t, port)))
  for (const reader of readers) t.equal((await reader.next(isReady)).data.sessions.length, 400, 'a reading stream gets the backlog')

  const stalled = connect(port, '127.0.0.1')
  t.teardown(() => stalled.destroy())
  stalled.pause()
  stalled.on('error', () => {})
  stalled.write(`GET /auth/revocations HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${AUTHORIZATION}\r\n\r\n`)

  const deadline = Date.now() + WAIT_MS
  const cutLine = () => lines.find((line) => line.msg === 'revocation feed: cutting a stream that does not keep up')
  while (cutLine() === undefined && Date.now() < deadline) await sleep(50)
  t.match(cutLine(), { level: 30, reason: 'stalled' }, 'vouch cut the stream whose reader stopped (logged at info)')
  t.ok(Number(cutLine()?.waiting) > 1024 * 1024, `with ${(Number(cutLine()?.waiting) / 2 ** 20).toFixed(1)} MiB waiting`)

  t.equal((await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))).statusCode, 204)
  for (const reader of readers) await reader.next(revokes(alice.user.id))
  t.pass('the reading streams received the next revocation')

  let received = ''
  stalled.setEncoding('latin1')
  stalled.on('data', (chunk: string) => { received += chunk })
  stalled.resume()
  const closed = await Promise.race([new Promise<boolean>((resolve) => stalled.once('close', () => resolve(true))), sleep(WAIT_MS).then(() => false)])
  t.ok(closed, 'the stalled reader, reading again, finds its stream ended')
  t.match(received, /^HTTP\/1\.1 200 /)
  t.notMatch(received, /event: revocations/, 'and nothing after the cut')
})

t.test('a slow reader of a large backlog is not cut while it keeps reading', async (t) => {
  const { lines, logger } = captureLogs()
  const { app, db, clock } = await createTestApp(t, {
    env: { ...CLIENTS, REVOCATION_FEED_HEARTBEAT_MS: '1000', REVOCATION_FEED_OVERLAP_MS: '0' }, logger,
  })
  const port = await listen(app)
  const alice = await register(app)
  await revokeBulkyBacklog(db, clock.now(), alice.user.id, 400, 25_000)
  // 10 MB at 2 MB/s: heartbeats find megabytes waiting for seconds, but the reader always takes some.
  const slow = await openFeed(t, port, { bytesPerSecond: 2_000_000 })
  const ready = await slow.next(isReady, 60_000)
  t.equal(ready.data.sessions.length, 400, 'the whole backlog arrived')
  t.equal(lines.filter((line) => String(line.msg).startsWith('revocation feed: cutting')).length, 0, 'no stream was cut')
  t.equal((await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))).statusCode, 204)
  await slow.next(revokes(alice.user.id))
  t.pass('and it follows the feed from there')
})

/** Statements between a logout-all and its arrival at every one of `count` streams. */
async function statementsPerLogoutAll (t: Test, count: number): Promise<string[]> {
  let counting = false
  const statements: string[] = []
  // No heartbeat (and so no poll) during the count: only the revocation's own work.
  const { app } = await createTestApp(t, {
    env: { ...CLIENTS, REVOCATION_FEED_HEARTBEAT_MS: '60000', HTTP_IDLE_TIMEOUT_MS: '120000' },
    onQuery: (sql) => { if (counting) statements.push(sql) },
  })
  const port = await listen(app)
  const alice = await register(app)
  const feeds = await Promise.all(Array.from({ length: count }, () => openFeed(t, port)))
  await Promise.all(feeds.map((feed) => feed.next(isReady)))
  counting = true
  t.equal((await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))).statusCode, 204)
  await Promise.all(feeds.map((feed) => feed.next(revokes(alice.user.id))))
  await sleep(200)
  counting = false
  for (const feed of feeds) feed.close()
  return statements
}

t.test('the database statements of a revocation, from the logout-all to its arrival at every stream, are the same for 1 stream and 50', async (t) => {
  const one = await statementsPerLogoutAll(t, 1)
  const fifty = await statementsPerLogoutAll(t, 50)
  t.comment(`1 stream: ${one.length} statements; 50 streams: ${fifty.length}`)
  t.ok(one.length > 0, 'the count sees the statements')
  t.equal(fifty.length, one.length, 'no statement per stream')
})

/** Statements and heartbeats (seen by one stream) over `ms` of an idle feed with `count` streams. */
async function statementsWhileIdle (t: Test, count: number, ms: number): Promise<{ statements: number, heartbeats: number }> {
  let counting = false
  let statements = 0
  const { app } = await createTestApp(t, {
    env: { ...CLIENTS, REVOCATION_FEED_HEARTBEAT_MS: '200' },
    onQuery: () => { if (counting) statements += 1 },
  })
  const port = await listen(app)
  const feeds = await Promise.all(Array.from({ length: count }, () => openFeed(t, port)))
  await Promise.all(feeds.map((feed) => feed.next(isReady)))
  const before = feeds[0]!.events.length
  counting = true
  await sleep(ms)
  counting = false
  const heartbeats = feeds[0]!.events.slice(before).filter((event) => event.event === 'heartbeat').length
  for (const feed of feeds) feed.close()
  return { statements, heartbeats }
}

t.test('heartbeats cost one poll (two statements) per instance, for 1 stream as for 50', async (t) => {
  for (const count of [1, 50]) {
    const { statements, heartbeats } = await statementsWhileIdle(t, count, 2000)
    t.comment(`${count} stream(s): ${statements} statements over ${heartbeats} heartbeats`)
    t.ok(heartbeats >= 3, `${count} stream(s): heartbeats arrived (${heartbeats})`)
    // One poll per tick; the window may catch one tick more than the stream has seen, and one poll may re-run.
    t.ok(statements <= 2 * (heartbeats + 2), `${count} stream(s): at most two statements per heartbeat (${statements} for ${heartbeats})`)
  }
})
