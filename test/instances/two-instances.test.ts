/**
 * Two real vouch processes on different ports sharing one database: a
 * revocation made through one is honoured by the other within the documented
 * bound, even though the other had the token's check cached.
 *
 * Channels: Redis pub/sub (REDIS_URL) on either database; PostgreSQL
 * LISTEN/NOTIFY when the database is PostgreSQL. On SQLite without Redis the
 * only bound is the cache TTL, shown with REVOCATION_CACHE_TTL=1.
 */
import t from 'tap'
import { BUS_VARIANTS, rejectedBy, twoInstances, within } from '../helpers/instances.js'
import { call } from '../helpers/process.js'
import { requireServicesOf } from '../helpers/services.js'

for (const variant of BUS_VARIANTS) {
  t.test(`${variant.name}: logout-all on A is honoured by B within ${variant.boundMs} ms`, async (t) => {
    if (!await requireServicesOf(t, variant.env)) return
    const [a, b] = await twoInstances(t, variant.env)
    const user = (await call(a.base, '/auth/register', { body: { email: 'two@example.com', password: 'two instances' } })).body
    const other = (await call(b.base, '/auth/register', { body: { email: 'other@example.com', password: 'two instances' } })).body

    for (const instance of [a, b, b]) {
      t.equal((await call(instance.base, '/auth/me', { token: user.accessToken })).status, 200, 'accepted (and cached) by both')
    }
    t.equal((await call(a.base, '/auth/logout-all', { method: 'POST', token: user.accessToken })).status, 204)
    const elapsed = await within(variant.boundMs, rejectedBy(b, user.accessToken))
    t.comment(`B rejected the token ${elapsed.toFixed(1)} ms after A answered logout-all`)
    t.ok(elapsed <= variant.boundMs, `within ${variant.boundMs} ms (took ${elapsed.toFixed(1)} ms)`)
    t.equal((await call(b.base, '/auth/me', { token: other.accessToken })).status, 200, "another user's token is unaffected")
  })

  t.test(`${variant.name}: revoking one session on A is honoured by B within ${variant.boundMs} ms`, async (t) => {
    if (!await requireServicesOf(t, variant.env)) return
    const [a, b] = await twoInstances(t, variant.env)
    const phone = (await call(a.base, '/auth/register', { body: { email: 'dev@example.com', password: 'two instances' } })).body
    const laptop = (await call(b.base, '/auth/login', { body: { email: 'dev@example.com', password: 'two instances' } })).body

    t.equal((await call(b.base, '/auth/me', { token: laptop.accessToken })).status, 200)
    t.equal((await call(b.base, '/auth/me', { token: phone.accessToken })).status, 200)
    const res = await call(a.base, `/auth/sessions/${laptop.sessionId}`, { method: 'DELETE', token: phone.accessToken })
    t.equal(res.status, 204)
    const elapsed = await within(variant.boundMs, rejectedBy(b, laptop.accessToken))
    t.comment(`B rejected the revoked session's token ${elapsed.toFixed(1)} ms after A answered`)
    t.ok(elapsed <= variant.boundMs, `within ${variant.boundMs} ms (took ${elapsed.toFixed(1)} ms)`)
    t.equal((await call(b.base, '/auth/me', { token: phone.accessToken })).status, 200, 'the session kept is still accepted by B')
  })
}
