/**
 * MAX_SESSIONS_PER_USER (src/domain/session-limit.ts): a sign-in beyond the
 * limit revokes the user's least recently used session, as a revocation of
 * that one device would, and racing sign-ins never leave more than the limit.
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, type TokenPair } from '../helpers/client.js'
import { createSecurityEvents, type SecurityEvent } from '../../src/domain/security-events.js'
import type { Db } from '../../src/db/client.js'

const LIMIT = { MAX_SESSIONS_PER_USER: '3' }

const activeSessions = (db: Db, userId: string) => db.session.findMany({
  where: { userId, revokedAt: null, tokenVersion: 0 },
  select: { id: true },
}).then((rows) => rows.map((row) => row.id).sort())

t.test('with a limit of 3, a fourth sign-in revokes the least recently used session and the other three survive', async (t) => {
  const events = createSecurityEvents()
  const seen: SecurityEvent[] = []
  events.subscribe((event) => seen.push(event))
  const { app, db, clock } = await createTestApp(t, { env: LIMIT, events })

  const phone = await register(app, undefined, PASSWORD, 'phone')
  clock.advance(10)
  const tablet = await login(app, phone.email, PASSWORD, 'tablet')
  clock.advance(10)
  const laptop = await login(app, phone.email, PASSWORD, 'laptop')
  clock.advance(10)
  // The phone refreshes: now the tablet is the least recently used, though the phone is the oldest.
  const phoneNow: TokenPair = (await refresh(app, phone.refreshToken)).json()
  clock.advance(10)
  // Cached at this instance, so the revocation must reach the cache, not just the database.
  t.equal((await me(app, tablet.accessToken)).statusCode, 200)

  const desktop = await login(app, phone.email, PASSWORD, 'desktop')

  const revoked = await me(app, tablet.accessToken)
  t.equal(revoked.statusCode, 401)
  t.equal(codeOf(revoked), 'token_revoked', "the tablet's access token is refused at once")
  t.equal(codeOf(await refresh(app, tablet.refreshToken)), 'refresh_token_invalid', "and so is its refresh token")
  for (const [name, pair] of [['phone', phoneNow], ['laptop', laptop], ['desktop', desktop]] as const) {
    t.equal((await me(app, pair.accessToken)).statusCode, 200, `the ${name} survives`)
  }
  t.equal((await refresh(app, laptop.refreshToken)).statusCode, 200, "the laptop's refresh token still works")

  const { sessions } = (await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(desktop.accessToken) })).json()
  t.same(sessions.map((s: { deviceName: string }) => s.deviceName).sort(), ['desktop', 'laptop', 'phone'])
  const row = await db.session.findUniqueOrThrow({ where: { id: tablet.sessionId } })
  t.equal(row.revokedReason, 'session_limit', 'recorded with its reason')
  t.match(seen.filter((event) => event.type === 'session_revoked'), [
    { type: 'session_revoked', reason: 'session_limit', userId: phone.user.id, sessionId: tablet.sessionId },
  ], 'one security event, naming the session')
})

t.test('a sign-in within the limit revokes nothing', async (t) => {
  const { app, db } = await createTestApp(t, { env: LIMIT })
  const a = await register(app)
  await login(app, a.email)
  await login(app, a.email)
  t.equal((await activeSessions(db, a.user.id)).length, 3)
  t.equal((await me(app, a.accessToken)).statusCode, 200)
})

t.test('sessions already ended do not count against the limit', async (t) => {
  const { app, db } = await createTestApp(t, { env: LIMIT })
  const a = await register(app)
  const b = await login(app, a.email)
  await post(app, '/auth/logout', undefined, bearer(b.accessToken))
  await login(app, a.email)
  await login(app, a.email)
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'the first session is still one of three active')
  t.equal((await activeSessions(db, a.user.id)).length, 3)
})

t.test('10 concurrent sign-ins leave exactly the limit active', async (t) => {
  const { app, db, clock } = await createTestApp(t, { env: LIMIT })
  const a = await register(app)
  clock.advance(1)
  const pairs = await Promise.all(Array.from({ length: 10 }, () => login(app, a.email)))
  const active = await activeSessions(db, a.user.id)
  t.equal(active.length, 3, 'three active sessions, no more')
  const alive = []
  for (const pair of pairs) {
    if ((await me(app, pair.accessToken)).statusCode === 200) alive.push(pair.sessionId)
  }
  t.same(alive.sort(), active, 'and exactly their tokens are accepted')
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked', 'the oldest session went first')
})
