/**
 * Sign-out everywhere: the tokenVersion bump, and the calls that keep the
 * calling device (password change, revoke-others).
 */
import t from 'tap'
import { createTestApp, createTestDomain } from '../helpers/app.js'
import { assertOneBump, seedSessions } from '../helpers/bulk-sessions.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'

const NEW_PASSWORD = 'a brand new passphrase'

t.test('a password change from device A kills every other token and keeps A on a fresh pair', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app, uniqueEmail(), PASSWORD, 'A')
  const b = await login(app, a.email, PASSWORD, 'B')
  const c = await login(app, a.email, PASSWORD, 'C')

  const res = await post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(a.accessToken))
  t.equal(res.statusCode, 200)
  const fresh = res.json()
  t.equal(fresh.sessionId, a.sessionId, 'A keeps its session')
  t.not(fresh.refreshToken, a.refreshToken)

  for (const [name, token] of [['A (old)', a.accessToken], ['B', b.accessToken], ['C', c.accessToken]] as const) {
    const denied = await me(app, token)
    t.equal(denied.statusCode, 401, `${name} access token is rejected`)
    t.equal(codeOf(denied), 'token_revoked')
  }
  for (const [name, token] of [['A (old)', a.refreshToken], ['B', b.refreshToken], ['C', c.refreshToken]] as const) {
    const denied = await refresh(app, token)
    t.equal(denied.statusCode, 401, `${name} refresh token is rejected`)
    t.equal(codeOf(denied), 'refresh_token_invalid')
  }

  t.equal((await me(app, fresh.accessToken)).statusCode, 200, "A's new access token works")
  const rotated = await refresh(app, fresh.refreshToken)
  t.equal(rotated.statusCode, 200, "A's new refresh token works")
  t.equal(rotated.json().sessionId, a.sessionId)

  t.equal(codeOf(await post(app, '/auth/login', { email: a.email, password: PASSWORD })), 'invalid_credentials', 'old password fails')
  t.equal((await post(app, '/auth/login', { email: a.email, password: NEW_PASSWORD })).statusCode, 200, 'new password works')
})

t.test('a wrong current password changes nothing', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const res = await post(app, '/auth/password', { currentPassword: 'not the password', newPassword: NEW_PASSWORD }, bearer(a.accessToken))
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'invalid_credentials')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal((await me(app, a.accessToken)).statusCode, 200)
  t.equal((await me(app, b.accessToken)).statusCode, 200)
  t.equal((await post(app, '/auth/login', { email: a.email, password: PASSWORD })).statusCode, 200)
})

t.test('a new password shorter than the minimum is a weak_password and changes nothing', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const res = await post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: 'short' }, bearer(a.accessToken))
  t.equal(res.statusCode, 400)
  t.equal(codeOf(res), 'weak_password')
  t.equal((await me(app, a.accessToken)).statusCode, 200)
})

t.test('logout-all kills every token of the user, the caller included, and no one else', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const other = await register(app)

  const res = await post(app, '/auth/logout-all', undefined, bearer(a.accessToken))
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  for (const token of [a.accessToken, b.accessToken]) t.equal(codeOf(await me(app, token)), 'token_revoked')
  for (const token of [a.refreshToken, b.refreshToken]) t.equal(codeOf(await refresh(app, token)), 'refresh_token_invalid')
  t.equal((await me(app, other.accessToken)).statusCode, 200, "another user's token keeps working")
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200)
  t.equal((await post(app, '/auth/login', { email: a.email, password: PASSWORD })).statusCode, 200, 'signing in again works')
})

t.test('revoke-others keeps only the caller, re-keyed with a new refresh token', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app, uniqueEmail(), PASSWORD, 'A')
  const b = await login(app, a.email, PASSWORD, 'B')

  const res = await post(app, '/auth/sessions/revoke-others', undefined, bearer(a.accessToken))
  t.equal(res.statusCode, 200)
  const fresh = res.json()
  t.equal(fresh.sessionId, a.sessionId)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked', "the caller's old access token dies")
  t.equal(codeOf(await me(app, b.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid', "the caller's old refresh token dies, no grace")
  t.equal(codeOf(await refresh(app, b.refreshToken)), 'refresh_token_invalid')
  t.equal((await me(app, fresh.accessToken)).statusCode, 200)

  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(fresh.accessToken) })
  t.same(list.json().sessions.map((s: { id: string, current: boolean }) => [s.id, s.current]), [[a.sessionId, true]])
})

t.test('bumping the version is one UPDATE of one user row (and its security event), with 10,000 sessions on file', async (t) => {
  const statements: string[] = []
  let recording = false
  const { app, db } = await createTestApp(t, { onQuery: (sql) => { if (recording) statements.push(sql) } })
  const a = await register(app)

  const snapshot = await seedSessions(db, a.user.id, 10_000)
  t.equal(await db.session.count({ where: { userId: a.user.id } }), 10_001)

  const before = await snapshot()

  recording = true
  const res = await post(app, '/auth/logout-all', undefined, bearer(a.accessToken))
  recording = false
  t.equal(res.statusCode, 204)

  assertOneBump(t, statements)
  t.equal(await snapshot(), before, 'no session row changed')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: a.user.id } })).tokenVersion, 1)
})

t.test('100 concurrent logout-all calls raise tokenVersion by exactly 100', async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await register(app)
  const responses = await Promise.all(Array.from({ length: 100 }, () =>
    post(app, '/auth/logout-all', undefined, bearer(a.accessToken))))
  // Every call was authenticated before any bump committed only if it got in
  // first; the ones that came after a bump are rejected. Count the accepted.
  const accepted = responses.filter((res) => res.statusCode === 204).length
  const rejected = responses.filter((res) => res.statusCode === 401 && codeOf(res) === 'token_revoked').length
  t.comment(`${accepted} of 100 calls authenticated before a bump landed`)
  t.equal(accepted + rejected, 100, 'every call is either applied or rejected as revoked; no 5xx')
  const { tokenVersion } = await db.user.findUniqueOrThrow({ where: { id: a.user.id } })
  t.equal(tokenVersion, accepted, 'one increment per accepted call, none lost')
})

t.test('100 concurrent logout-all calls from 100 live sessions raise tokenVersion by exactly 100', async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await register(app)
  const callers = await Promise.all(Array.from({ length: 99 }, () => login(app, a.email)))
  const tokens = [a.accessToken, ...callers.map((pair) => pair.accessToken)]
  // Authenticate all 100 first (the bearer check runs before any bump can
  // land only if they are all in flight together), so issue them at once.
  const responses = await Promise.all(tokens.map((token) => post(app, '/auth/logout-all', undefined, bearer(token))))
  const accepted = responses.filter((res) => res.statusCode === 204).length
  t.comment(`${accepted} of 100 calls authenticated before a bump landed`)
  t.ok(responses.every((res) => res.statusCode === 204 || codeOf(res) === 'token_revoked'), 'no 5xx')
  const { tokenVersion } = await db.user.findUniqueOrThrow({ where: { id: a.user.id } })
  t.equal(tokenVersion, accepted, 'no lost update')
})

t.test('100 logout-alls authenticated together, then run concurrently, raise tokenVersion by exactly 100', async (t) => {
  // Over HTTP the first bump to land revokes the tokens of calls still being
  // authenticated (as it should), so the race on the counter itself is shown
  // at the domain level: 100 callers pass authentication, then all 100
  // increments run at once and none may be lost.
  const { db, domain } = await createTestDomain(t)
  const user = await domain.accounts.register(uniqueEmail(), PASSWORD)
  const pairs = await Promise.all(Array.from({ length: 100 }, () => domain.sessions.start(user, {})))
  const principals = await Promise.all(pairs.map((pair) => domain.sessions.authenticate(pair.accessToken)))
  await Promise.all(principals.map((principal) => domain.sessions.endAll(principal.userId)))
  const { tokenVersion } = await db.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(tokenVersion, 100)
  await t.rejects(domain.sessions.authenticate(pairs[0]!.accessToken), { code: 'token_revoked' })
})
