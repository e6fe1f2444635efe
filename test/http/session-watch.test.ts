/**
 * GET /auth/session/watch: a page holding an access token learns at once
 * that its session ended elsewhere (revoked {sessionId}, or revoked
 * {minVersion} when the user's token version moved past the token's), or
 * that the token expired; refusals are catalogue errors, never streams;
 * streams are capped per process, apart from the revocation feed's, and
 * per user; they end when the server closes. Real streams on loopback; the
 * clock is the app's test clock. Other instances:
 * test/instances/session-watch.test.ts; the race with a revocation just
 * before the watch starts: test/domain/session-watch.test.ts.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { decodeJwt } from 'jose'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, post, register, uniqueEmail } from '../helpers/client.js'
import { named, openEventStream, type EventStreamReader } from '../helpers/event-stream.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

function watch (t: Test, base: string, accessToken: string): Promise<EventStreamReader> {
  return openEventStream(t, `${base}/auth/session/watch`, bearer(accessToken))
}

/** A watch that has said `ready`. */
async function watching (t: Test, base: string, accessToken: string): Promise<EventStreamReader> {
  const stream = await watch(t, base, accessToken)
  t.equal(stream.status, 200, 'the watch opens')
  await stream.next(named('ready'))
  return stream
}

/** A listening app, and one user signed in on a phone and a laptop. */
async function twoDevices (t: Test) {
  const { app } = await createTestApp(t)
  const base = await listen(app)
  const phone = await register(app, uniqueEmail(), PASSWORD, 'phone')
  const laptop = await login(app, phone.email, PASSWORD, 'laptop')
  return { app, base, phone, laptop }
}

/** The events other than heartbeats, as [name, data]. */
const said = (stream: EventStreamReader) => stream.events.filter((event) => event.event !== 'heartbeat').map((event) => [event.event, event.data])

t.test('ready at once, then revoked {sessionId} when another session signs this one out (DELETE /auth/sessions/:id), and the stream ends', async (t) => {
  const { app, base, phone, laptop } = await twoDevices(t)

  const stream = await watching(t, base, laptop.accessToken)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['cache-control'], 'no-store')
  t.match(stream.headers['content-security-policy'], /default-src 'none'/, "the API's security headers ride along")
  const phoneStream = await watching(t, base, phone.accessToken)

  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${laptop.sessionId}`, headers: bearer(phone.accessToken) })
  t.equal(res.statusCode, 204)
  t.same((await stream.next(named('revoked'))).data, { sessionId: laptop.sessionId })
  await stream.ended
  t.same(said(stream), [['ready', {}], ['revoked', { sessionId: laptop.sessionId }]], 'nothing else, and nothing after')
  t.same(said(phoneStream), [['ready', {}]], 'the session that stays is not told anything')
})

t.test('revoked {minVersion} after logout-all from another session', async (t) => {
  const { app, base, phone, laptop } = await twoDevices(t)
  const other = await register(app)
  const stream = await watching(t, base, laptop.accessToken)
  const otherStream = await watching(t, base, other.accessToken)

  t.equal((await post(app, '/auth/logout-all', undefined, bearer(phone.accessToken))).statusCode, 204)
  const { data } = await stream.next(named('revoked'))
  t.same(data, { minVersion: decodeJwt(laptop.accessToken).ver as number + 1 }, "above the token's ver")
  await stream.ended
  t.same(said(otherStream), [['ready', {}]], "another user's watch is not told anything")
})

t.test("revoked {minVersion} after a password change from another session; the changer's new token watches on", async (t) => {
  const { app, base, phone, laptop } = await twoDevices(t)
  const stream = await watching(t, base, laptop.accessToken)
  const ownStream = await watching(t, base, phone.accessToken)

  const res = await post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: 'a new password, long enough' }, bearer(phone.accessToken))
  t.equal(res.statusCode, 200)
  const kept = res.json() as { accessToken: string }
  const minVersion = decodeJwt(kept.accessToken).ver
  t.same((await stream.next(named('revoked'))).data, { minVersion })
  await stream.ended
  t.same((await ownStream.next(named('revoked'))).data, { minVersion },
    "the changer's old token is told too (its SDK ignores it: the pair it now holds is at minVersion)")

  const renewed = await watching(t, base, kept.accessToken)
  await sleep(300)
  t.same(said(renewed), [['ready', {}]], 'a watch with the new token is not revoked')
})

t.test('revoked {minVersion} when the account is deleted from another session', async (t) => {
  const { app, base, phone, laptop } = await twoDevices(t)
  const stream = await watching(t, base, laptop.accessToken)

  const res = await app.inject({ method: 'DELETE', url: '/auth/account', payload: { password: PASSWORD }, headers: bearer(phone.accessToken) })
  t.equal(res.statusCode, 204)
  t.same((await stream.next(named('revoked'))).data, { minVersion: decodeJwt(laptop.accessToken).ver as number + 1 })
  await stream.ended
})

t.test("expired at the token's exp, by the app's clock, and the stream ends", async (t) => {
  const { app, clock } = await createTestApp(t)
  const base = await listen(app)
  const user = await register(app)
  const { exp } = decodeJwt(user.accessToken)
  const stream = await watching(t, base, user.accessToken)

  clock.set(new Date((exp! - 1) * 1000))
  await sleep(600)
  t.same(said(stream), [['ready', {}]], 'a second before exp: nothing yet')
  clock.set(new Date(exp! * 1000))
  await stream.next(named('expired'), 5000)
  await stream.ended
  t.same(said(stream), [['ready', {}], ['expired', {}]])
})

t.test('no token, a malformed, an expired or a revoked token: 401 with its catalogue error, not a stream', async (t) => {
  const { app, clock } = await createTestApp(t)
  const base = await listen(app)
  const user = await register(app)
  const revoked = await login(app, user.email)
  t.equal((await post(app, '/auth/logout', undefined, bearer(revoked.accessToken))).statusCode, 204)

  const cases: Array<[string, Record<string, string>, string]> = [
    ['no token', {}, 'invalid_token'],
    ['a malformed token', bearer('not.a.jwt'), 'invalid_token'],
    ['a revoked token', bearer(revoked.accessToken), 'token_revoked'],
  ]
  for (const [name, headers, code] of cases) {
    const stream = await openEventStream(t, `${base}/auth/session/watch`, headers)
    t.equal(stream.status, 401, name)
    t.match(stream.headers['content-type'], /^application\/json/, `${name}: JSON`)
    t.equal(JSON.parse(stream.body).code, code, name)
  }
  clock.advance(3600)
  const expired = await app.inject({ method: 'GET', url: '/auth/session/watch', headers: bearer(user.accessToken) })
  t.equal(expired.statusCode, 401)
  t.equal(codeOf(expired), 'token_expired', 'an expired token')
})

t.test('past SESSION_WATCH_MAX_STREAMS, 503 service_unavailable with Retry-After; counted apart from the revocation feed; a closed watch frees its slot', async (t) => {
  const { app } = await createTestApp(t, { env: { SESSION_WATCH_MAX_STREAMS: '2', REVOCATION_FEED_MAX_STREAMS: '1', RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` } })
  const base = await listen(app)
  const [a, b, c] = [await register(app), await register(app), await register(app)]
  const first = await watching(t, base, a.accessToken)
  await watching(t, base, b.accessToken)

  const refused = await watch(t, base, c.accessToken)
  t.equal(refused.status, 503, 'the third watch is refused')
  t.equal(refused.headers['retry-after'], '30')
  t.same(JSON.parse(refused.body), {
    statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable',
    message: 'This instance already serves as many session watches as it allows; retry later.',
  })
  const feed = await openEventStream(t, `${base}/auth/revocations`, { authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}` })
  t.equal(feed.status, 200, 'a revocation-feed stream still opens: the caps are apart')
  t.equal((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(c.accessToken) })).statusCode, 200, 'the rest of the service is unaffected')

  first.close()
  let admitted: EventStreamReader | undefined
  for (const deadline = Date.now() + 15_000; admitted === undefined && Date.now() < deadline;) {
    const attempt = await watch(t, base, c.accessToken)
    if (attempt.status === 200) admitted = attempt
    else await sleep(50)
  }
  t.ok(admitted, 'once a watch has closed, a new one is admitted')
})

t.test('one user past 16 watches is refused 429 rate_limited, while other users are served', async (t) => {
  const { app } = await createTestApp(t)
  const base = await listen(app)
  const user = await register(app)
  const streams = await Promise.all(Array.from({ length: 16 }, () => watch(t, base, user.accessToken)))
  t.same(streams.map((stream) => stream.status), Array(16).fill(200))
  const refused = await watch(t, base, user.accessToken)
  t.equal(refused.status, 429)
  t.equal(refused.headers['retry-after'], '30')
  t.equal(JSON.parse(refused.body).code, 'rate_limited')
  await watching(t, base, (await register(app)).accessToken)
})

t.test('watch streams end when the server closes, and do not hold it open', async (t) => {
  const { app } = await createTestApp(t)
  const base = await listen(app)
  const user = await register(app)
  const streams = [await watching(t, base, user.accessToken), await watching(t, base, (await register(app)).accessToken)]
  await app.close()
  await Promise.all(streams.map((stream) => stream.ended))
  t.same(streams.map(said), [[['ready', {}]], [['ready', {}]]], 'ended without an event: the page reconnects elsewhere')
})

t.test('a quiet watch sends heartbeat comments within the idle timeout, and outlives it', async (t) => {
  const { app } = await createTestApp(t, { env: { HTTP_IDLE_TIMEOUT_MS: '1000', REVOCATION_FEED_HEARTBEAT_MS: '500' } })
  const base = await listen(app)
  const stream = await watching(t, base, (await register(app)).accessToken)
  await sleep(2500)
  t.ok(stream.events.filter(named('heartbeat')).length >= 3, 'a heartbeat at least every half idle timeout')
  t.same(said(stream), [['ready', {}]], 'and nothing else')
  const ended = await Promise.race([stream.ended.then(() => true), sleep(50).then(() => false)])
  t.notOk(ended, 'the stream is open past two idle timeouts')
})
