/**
 * Two real vouch processes sharing one database: a page watching its session
 * on B (GET /auth/session/watch) learns within 1 s that it was signed out
 * through A, one session (revoked {sessionId}) or all of them (revoked
 * {minVersion}). The revocation reaches B's watch the way it reaches B's
 * revocation feed: Redis pub/sub (REDIS_URL) on either database, PostgreSQL
 * LISTEN/NOTIFY on PostgreSQL, and on SQLite without Redis (two processes
 * share no bus) the feed's safety-net poll, every REVOCATION_FEED_HEARTBEAT_MS.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { TEST_PROVIDER } from '../helpers/app.js'
import { REDIS_URL, twoInstances } from '../helpers/instances.js'
import { call } from '../helpers/process.js'
import { named, openEventStream } from '../helpers/event-stream.js'
import { requireServicesOf } from '../helpers/services.js'

const BOUND_MS = 1000

const variants: Array<{ name: string, env: Record<string, string> }> = [
  { name: 'Redis pub/sub', env: { REDIS_URL } },
  TEST_PROVIDER === 'postgresql'
    ? { name: 'PostgreSQL LISTEN/NOTIFY', env: {} }
    : { name: 'no bus, the feed polling every 200 ms', env: { REVOCATION_FEED_HEARTBEAT_MS: '200' } },
]

for (const variant of variants) {
  t.test(`${variant.name}: a page watching on B learns within ${BOUND_MS} ms that it was signed out through A`, async (t) => {
    if (!await requireServicesOf(t, variant.env)) return
    const [a, b] = await twoInstances(t, variant.env)
    const credentials = { email: 'watch@example.com', password: 'two instances' }
    const phone = (await call(a.base, '/auth/register', { body: credentials })).body
    const laptop = (await call(b.base, '/auth/login', { body: credentials })).body
    const tablet = (await call(b.base, '/auth/login', { body: credentials })).body
    const watch = async (token: string) => {
      const stream = await openEventStream(t, `${b.base}/auth/session/watch`, { authorization: `Bearer ${token}` })
      t.equal(stream.status, 200)
      await stream.next(named('ready'))
      return stream
    }

    const laptopWatch = await watch(laptop.accessToken)
    const tabletWatch = await watch(tablet.accessToken)
    t.equal((await call(a.base, `/auth/sessions/${laptop.sessionId}`, { method: 'DELETE', token: phone.accessToken })).status, 204)
    const revokedAt = performance.now()
    const one = await laptopWatch.next(named('revoked'))
    t.same(one.data, { sessionId: laptop.sessionId }, 'the session signed out')
    t.comment(`B's watch was told ${(one.at - revokedAt).toFixed(1)} ms after A answered`)
    t.ok(one.at - revokedAt <= BOUND_MS, `within ${BOUND_MS} ms (took ${(one.at - revokedAt).toFixed(1)} ms)`)
    await laptopWatch.ended
    t.notOk(tabletWatch.events.some(named('revoked')), 'the other session is not told')

    t.equal((await call(a.base, '/auth/logout-all', { method: 'POST', token: phone.accessToken })).status, 204)
    const allAt = performance.now()
    const all = await tabletWatch.next(named('revoked'))
    t.same(all.data, { minVersion: 1 }, "every token below version 1, the tablet's 0 included")
    t.comment(`B's watch was told ${(all.at - allAt).toFixed(1)} ms after A answered logout-all`)
    t.ok(all.at - allAt <= BOUND_MS, `within ${BOUND_MS} ms (took ${(all.at - allAt).toFixed(1)} ms)`)
    await tabletWatch.ended
  })
}
