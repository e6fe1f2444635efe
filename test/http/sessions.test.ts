/** Listing and revoking one's own devices. */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'

t.test('the session list shows active sessions only, newest first, with device details', async (t) => {
  const { app, clock } = await createTestApp(t)
  const email = uniqueEmail()
  const phone = await register(app, email, PASSWORD, 'phone')
  clock.advance(10)
  const tablet = await login(app, email, PASSWORD, 'tablet')
  clock.advance(10)
  const laptop = await post(app, '/auth/login', { email, password: PASSWORD, deviceName: 'laptop' }, { 'user-agent': 'curl/8.0' })
  await post(app, '/auth/logout', undefined, bearer(tablet.accessToken))

  const res = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(phone.accessToken) })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const { sessions } = res.json()
  t.same(sessions.map((s: { deviceName: string }) => s.deviceName), ['laptop', 'phone'], 'the logged-out tablet is gone')
  const [latest, mine] = sessions
  t.same(Object.keys(latest).sort(), ['createdAt', 'current', 'deviceName', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])
  t.match(latest, { id: laptop.json().sessionId, userAgent: 'curl/8.0', ip: '127.0.0.1', current: false })
  t.match(mine, { id: phone.sessionId, current: true })
  t.ok(new Date(mine.expiresAt) > new Date(mine.createdAt))
})

t.test('a session past its version disappears from the list', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  await login(app, a.email)
  const kept = (await post(app, '/auth/sessions/revoke-others', undefined, bearer(a.accessToken))).json()
  const { sessions } = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(kept.accessToken) })).json()
  t.equal(sessions.length, 1)
})

t.test('deleting one of my other sessions ends that device only', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${b.sessionId}`, headers: bearer(a.accessToken) })
  t.equal(res.statusCode, 204)
  t.equal(codeOf(await me(app, b.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, b.refreshToken)), 'refresh_token_invalid')
  t.equal((await me(app, a.accessToken)).statusCode, 200)
  const again = await app.inject({ method: 'DELETE', url: `/auth/sessions/${b.sessionId}`, headers: bearer(a.accessToken) })
  t.equal(again.statusCode, 204, 'deleting an already-ended session of mine is idempotent')
})

t.test("someone else's session, or one that does not exist, is not_found and untouched", async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const stranger = await register(app)
  for (const id of [stranger.sessionId, '00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
    const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${id}`, headers: bearer(a.accessToken) })
    t.equal(res.statusCode, 404, id)
    t.equal(codeOf(res), 'not_found', id)
  }
  t.equal((await me(app, stranger.accessToken)).statusCode, 200, "the stranger's session survives")
})

t.test('deleting my current session signs me out', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const res = await app.inject({ method: 'DELETE', url: `/auth/sessions/${a.sessionId}`, headers: bearer(a.accessToken) })
  t.equal(res.statusCode, 204)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked')
})

t.test('logout ends only the current session', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const res = await post(app, '/auth/logout', undefined, { ...bearer(a.accessToken), 'content-type': 'application/json' })
  t.equal(res.statusCode, 204, 'an empty body with a JSON content type is fine')
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked')
  t.equal((await me(app, b.accessToken)).statusCode, 200)
})
