/**
 * Security events (src/domain/security-events.ts), read from the
 * security_events table: each action through the HTTP API (and the
 * administrator's, through the domain's administration service, on the same
 * database and clock) writes exactly the events it should, with the user,
 * session, address, user agent, actor and detail it should; an action that
 * is refused or rolls back writes none; no stored column ever holds a
 * password, a password hash or a token; `prune()` keeps the retention, and
 * a retention of 0 stores nothing but still publishes.
 */
import { randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createDomain } from '../../src/domain/index.js'
import { createSecurityEvents, type SecurityEvent } from '../../src/domain/security-events.js'
import { createTokenVersions } from '../../src/domain/token-version.js'
import type { Authority } from '../../src/domain/administration.js'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, codeOf, uniqueEmail, type TokenPair } from '../helpers/client.js'

const IP = '203.0.113.5'
const UA = 'EventsTest/1.0 (X11; Linux x86_64)'
const PHONE_UA = 'EventsPhone/2.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)'
const NEW_PASSWORD = 'a brand new passphrase'
const ADMIN: Authority = { actor: { kind: 'admin', id: 'ops-console' }, client: { ip: '198.51.100.9', userAgent: 'ops/1' } }

interface Call { ip?: string, ua?: string, token?: string }

/** One request from `ip` with user agent `ua`, with the access token when given. */
function call (app: FastifyInstance, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, { ip = IP, ua = UA, token }: Call = {}) {
  return app.inject({
    method, url, remoteAddress: ip, ...(payload !== undefined && { payload }),
    headers: { 'user-agent': ua, ...(token !== undefined && { authorization: `Bearer ${token}` }) },
  })
}

/** The app, the administrator's domain on its database and clock, and what each step wrote. */
async function setup (t: Test, env: Record<string, string> = {}, onQuery?: (sql: string) => void) {
  const context = await createTestApp(t, { env, ...(onQuery && { onQuery }) })
  const { app, db, config, keys, clock, dir } = context
  const admin = createDomain({ config, db, keys, refreshKey: randomBytes(32), clock })
  const seen = new Set<string>()
  const secrets = new Set<string>([PASSWORD, NEW_PASSWORD])

  /** The rows written since the last call, oldest first, detail parsed; `id` and `at` left out. */
  const written = async () => {
    const rows = (await db.securityEvent.findMany({ orderBy: { id: 'asc' } })).filter((row) => !seen.has(row.id))
    for (const row of rows) seen.add(row.id)
    return rows.map(({ id: _id, at: _at, detail, ...row }) => ({ ...row, detail: detail === null ? null : JSON.parse(detail) as unknown }))
  }
  /** Remembers every token of a pair and the user's current password hash, for the final scan. */
  const keep = async (pair: Partial<TokenPair> | undefined, userId?: string) => {
    if (pair?.accessToken) secrets.add(pair.accessToken)
    if (pair?.refreshToken) secrets.add(pair.refreshToken)
    if (userId !== undefined) {
      const user = await db.user.findUnique({ where: { id: userId }, select: { passwordHash: true } })
      if (user !== null) secrets.add(user.passwordHash)
    }
    return pair as TokenPair
  }
  const register = async (ua = UA, email = uniqueEmail('events')) => {
    const res = await call(app, 'POST', '/auth/register', { email, password: PASSWORD }, { ua })
    t.equal(res.statusCode, 201, 'registered')
    const body = res.json() as TokenPair & { user: { id: string } }
    await keep(body, body.user.id)
    return { ...body, email, userId: body.user.id }
  }
  const login = async (email: string, options: Call & { deviceName?: string } = {}) => {
    const res = await call(app, 'POST', '/auth/login', { email, password: PASSWORD, ...(options.deviceName && { deviceName: options.deviceName }) }, options)
    t.equal(res.statusCode, 200, 'signed in')
    return keep(res.json() as TokenPair)
  }
  /** A stored row as expected: the user's own action from IP with UA, unless told otherwise. */
  const row = (type: string, fields: { userId?: string | null, sessionId?: string | null, ip?: string | null, userAgent?: string | null, actor?: string, actorId?: string | null, detail?: unknown }) => ({
    type, userId: null, sessionId: null, ip: IP, userAgent: UA, actor: 'user', actorId: null, detail: null, ...fields,
  })
  return { ...context, admin, written, keep, register, login, row, secrets, dir }
}

/** The token of the reset mail in DATA_DIR/outbox (where new-device alerts go too), once it is there. */
async function resetTokenFromOutbox (dir: string): Promise<string> {
  const outbox = path.join(dir, 'outbox')
  for (let i = 0; i < 400; i++) {
    for (const file of await readdir(outbox).catch(() => [] as string[])) {
      const match = /token=([^\s&]+)/.exec(await readFile(path.join(outbox, file), 'utf8'))
      if (match !== null) return decodeURIComponent(match[1]!)
    }
    await sleep(25)
  }
  throw new Error('no reset mail')
}

t.test('sign-ins: succeeded (with its method), new device, and each reason of a failure', async (t) => {
  const { app, admin, written, register, login, row } = await setup(t)
  const user = await register()
  t.same(await written(), [row('sign_in_succeeded', { userId: user.userId, sessionId: user.sessionId, detail: { method: 'registration' } })],
    'registration: one sign-in, no new device (there is no other)')

  const again = await login(user.email)
  t.same(await written(), [row('sign_in_succeeded', { userId: user.userId, sessionId: again.sessionId, detail: { method: 'password' } })],
    'the same device: a sign-in only')

  const phone = await login(user.email, { ua: PHONE_UA, ip: '192.0.2.44', deviceName: 'Phone' })
  const fromPhone = { userId: user.userId, sessionId: phone.sessionId, ip: '192.0.2.44', userAgent: PHONE_UA }
  t.same(await written(), [
    row('sign_in_succeeded', { ...fromPhone, detail: { method: 'password' } }),
    row('new_device', { ...fromPhone, detail: { deviceName: 'Phone' } }),
  ], 'a new device: the sign-in and the new device')

  t.equal(codeOf(await call(app, 'POST', '/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD })), 'invalid_credentials')
  t.same(await written(), [row('sign_in_failed', { actor: 'anonymous', detail: { reason: 'unknown_email' } })], 'unknown email: no user')

  t.equal(codeOf(await call(app, 'POST', '/auth/login', { email: user.email, password: 'not the password' })), 'invalid_credentials')
  t.same(await written(), [row('sign_in_failed', { userId: user.userId, actor: 'anonymous', detail: { reason: 'wrong_password' } })],
    'wrong password: the account named, the caller anonymous')

  await admin.administration.disable(user.userId, ADMIN)
  const byAdmin = { userId: user.userId, ip: '198.51.100.9', userAgent: 'ops/1', actor: 'admin', actorId: 'ops-console' }
  t.same(await written(), [row('account_disabled', byAdmin)], 'disabled, by the admin')
  await admin.administration.disable(user.userId, ADMIN)
  t.same(await written(), [], 'disabling a disabled account records nothing')

  t.equal(codeOf(await call(app, 'POST', '/auth/login', { email: user.email, password: PASSWORD })), 'invalid_credentials')
  t.same(await written(), [row('sign_in_failed', { userId: user.userId, actor: 'anonymous', detail: { reason: 'account_disabled' } })])

  await admin.administration.enable(user.userId, ADMIN)
  t.same(await written(), [row('account_enabled', byAdmin)], 'enabled, by the admin')
  await admin.administration.enable(user.userId, ADMIN)
  t.same(await written(), [], 'enabling an enabled account records nothing')
})

t.test('a throttled sign-in', async (t) => {
  const statements: string[] = []
  const { app, written, register, row } = await setup(t, { LOGIN_MAX_FAILURES: '2' }, (sql) => { statements.push(sql) })
  const user = await register()
  await written()
  const attempt = () => call(app, 'POST', '/auth/login', { email: user.email, password: 'not the password' }, { ip: '192.0.2.99' })
  const from = { userId: user.userId, ip: '192.0.2.99', actor: 'anonymous' }
  for (let i = 0; i < 2; i++) {
    t.equal(codeOf(await attempt()), 'invalid_credentials')
    t.same(await written(), [row('sign_in_failed', { ...from, detail: { reason: 'wrong_password' } })])
  }
  statements.length = 0
  t.equal(codeOf(await attempt()), 'rate_limited')
  t.notOk(statements.some((sql) => /password_?hash/i.test(sql)), `a refused attempt never reads the hash: ${JSON.stringify(statements)}`)
  t.same(await written(), [row('sign_in_throttled', from)], 'throttled: one event, not a failure as well')
})

t.test('a wrong current password on a password change or an account deletion, and a throttled one', async (t) => {
  const { app, written, register, row } = await setup(t, { LOGIN_MAX_FAILURES: '2' })
  const user = await register()
  await written()
  const mine = { userId: user.userId, sessionId: user.sessionId }
  const change = () => call(app, 'POST', '/auth/password', { currentPassword: 'not the password', newPassword: NEW_PASSWORD }, { token: user.accessToken })
  const deletion = () => call(app, 'DELETE', '/auth/account', { password: 'not the password' }, { token: user.accessToken })

  t.equal(codeOf(await change()), 'invalid_credentials')
  t.same(await written(), [row('password_check_failed', { ...mine, detail: { action: 'password_change', reason: 'wrong_password' } })],
    'a password change: the user, this session, why')
  t.equal(codeOf(await deletion()), 'invalid_credentials')
  t.same(await written(), [row('password_check_failed', { ...mine, detail: { action: 'account_deletion', reason: 'wrong_password' } })],
    'an account deletion')
  t.equal(codeOf(await change()), 'rate_limited')
  t.same(await written(), [row('password_check_failed', { ...mine, detail: { action: 'password_change', reason: 'throttled' } })],
    'throttled: one event, not a failure as well')
  t.equal(codeOf(await deletion()), 'rate_limited')
  t.same(await written(), [row('password_check_failed', { ...mine, detail: { action: 'account_deletion', reason: 'throttled' } })])
})

t.test('a refresh token replayed after the grace window; a duplicate inside it is not stored', async (t) => {
  const { app, clock, written, register, keep, row } = await setup(t)
  const user = await register()
  await written()
  const rotated = await keep((await call(app, 'POST', '/auth/refresh', { refreshToken: user.refreshToken })).json() as TokenPair)
  t.same(await written(), [], 'a refresh writes nothing')
  t.equal((await call(app, 'POST', '/auth/refresh', { refreshToken: user.refreshToken })).statusCode, 200, 'a duplicate in the grace window')
  t.same(await written(), [], 'is logged, not stored')

  await call(app, 'POST', '/auth/refresh', { refreshToken: rotated.refreshToken })
  clock.advance(11)
  t.equal(codeOf(await call(app, 'POST', '/auth/refresh', { refreshToken: user.refreshToken }, { ip: '192.0.2.66', ua: 'thief/1' })), 'refresh_token_reused')
  t.same(await written(), [row('refresh_token_reused', {
    userId: user.userId, sessionId: user.sessionId, ip: '192.0.2.66', userAgent: 'thief/1', detail: { generationsBehind: 2 },
  })], 'one event (the revocation it causes is that event)')
})

t.test('sessions revoked: logout, by the user, by token revocation, by an administrator', async (t) => {
  const { app, admin, written, register, login, row } = await setup(t)
  const user = await register()
  const [b, c, d, e] = [await login(user.email), await login(user.email), await login(user.email), await login(user.email)]
  await written()
  const revoked = (sessionId: string, reason: string, fields = {}) => row('session_revoked', { userId: user.userId, sessionId, detail: { reason }, ...fields })

  t.equal((await call(app, 'POST', '/auth/logout', undefined, { token: user.accessToken })).statusCode, 204)
  t.same(await written(), [revoked(user.sessionId, 'logout')], 'logout')

  t.equal((await call(app, 'DELETE', `/auth/sessions/${c.sessionId}`, undefined, { token: b.accessToken })).statusCode, 204)
  t.same(await written(), [revoked(c.sessionId, 'revoked_by_user')], 'one device revoked from another')
  t.equal((await call(app, 'DELETE', `/auth/sessions/${c.sessionId}`, undefined, { token: b.accessToken })).statusCode, 204)
  t.same(await written(), [], 'revoked again: nothing more')

  t.equal((await call(app, 'POST', '/auth/revoke', { token: d.refreshToken })).statusCode, 200)
  t.same(await written(), [revoked(d.sessionId, 'token_revocation')], 'RFC 7009 with a refresh token')
  t.equal((await call(app, 'POST', '/auth/revoke', { token: b.accessToken })).statusCode, 200)
  t.same(await written(), [revoked(b.sessionId, 'token_revocation')], 'and with an access token')
  t.equal((await call(app, 'POST', '/auth/revoke', { token: d.refreshToken })).statusCode, 200)
  t.same(await written(), [], 'a token of an ended session: nothing')

  await admin.administration.revokeSession(user.userId, e.sessionId, ADMIN)
  t.same(await written(), [revoked(e.sessionId, 'admin', { ip: '198.51.100.9', userAgent: 'ops/1', actor: 'admin', actorId: 'ops-console' })], 'by an administrator')
})

t.test('a session ended by the per-user limit', async (t) => {
  const { clock, written, register, login, row } = await setup(t, { MAX_SESSIONS_PER_USER: '2' })
  const user = await register()
  clock.advance(1)
  await login(user.email)
  await written()
  const third = await login(user.email)
  t.same(await written(), [
    row('sign_in_succeeded', { userId: user.userId, sessionId: third.sessionId, detail: { method: 'password' } }),
    row('session_revoked', { userId: user.userId, sessionId: user.sessionId, actor: 'system', detail: { reason: 'session_limit' } }),
  ], 'the least recently used session, by the system, from the sign-in that ended it')
})

t.test('signed out everywhere: logout-all, revoke-others, an administrator', async (t) => {
  const { app, admin, written, register, login, row, keep } = await setup(t)
  const user = await register()
  await written()
  t.equal((await call(app, 'POST', '/auth/logout-all', undefined, { token: user.accessToken })).statusCode, 204)
  t.same(await written(), [row('signed_out_everywhere', { userId: user.userId })], 'logout-all')

  const a = await login(user.email)
  await login(user.email)
  await written()
  const kept = await keep((await call(app, 'POST', '/auth/sessions/revoke-others', undefined, { token: a.accessToken })).json() as TokenPair)
  t.same(await written(), [row('signed_out_everywhere', { userId: user.userId, detail: { keptSessionId: a.sessionId } })], 'revoke-others keeps the caller')
  t.equal(kept.sessionId, a.sessionId)

  await admin.administration.revokeSessions(user.userId, ADMIN)
  t.same(await written(), [row('signed_out_everywhere', { userId: user.userId, ip: '198.51.100.9', userAgent: 'ops/1', actor: 'admin', actorId: 'ops-console' })])
})

t.test('password changed, reset requested and completed; a refused change records only the failed check', async (t) => {
  const { app, db, dir, written, register, keep, row, secrets } = await setup(t)
  const user = await register()
  await written()

  const wrong = await call(app, 'POST', '/auth/password', { currentPassword: 'not the password', newPassword: NEW_PASSWORD }, { token: user.accessToken })
  t.equal(codeOf(wrong), 'invalid_credentials')
  t.same(await written(), [row('password_check_failed', { userId: user.userId, sessionId: user.sessionId, detail: { action: 'password_change', reason: 'wrong_password' } })],
    'a wrong current password: the failed check, no change')

  const changed = await call(app, 'POST', '/auth/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, { token: user.accessToken })
  t.equal(changed.statusCode, 200)
  await keep(changed.json() as TokenPair, user.userId)
  t.same(await written(), [row('password_changed', { userId: user.userId, sessionId: user.sessionId })])

  t.equal((await call(app, 'POST', '/auth/password/forgot', { email: user.email }, { ip: '192.0.2.7' })).statusCode, 202)
  const token = await resetTokenFromOutbox(dir)
  secrets.add(token)
  secrets.add(token.split('.')[1]!)
  t.same(await written(), [row('password_reset_requested', { userId: user.userId, ip: '192.0.2.7', actor: 'anonymous' })], 'written before the mail went')
  const stored = await db.passwordReset.findFirstOrThrow({ where: { userId: user.userId } })
  secrets.add(stored.tokenHash)

  t.equal(codeOf(await call(app, 'POST', '/auth/password/reset', { token, newPassword: 'short' })), 'weak_password')
  t.equal(codeOf(await call(app, 'POST', '/auth/password/reset', { token: `${stored.id}.${'A'.repeat(43)}`, newPassword: PASSWORD })), 'reset_token_invalid')
  t.same(await written(), [], 'refused resets: nothing')
  t.equal((await call(app, 'POST', '/auth/password/reset', { token, newPassword: PASSWORD }, { ip: '192.0.2.8' })).statusCode, 204)
  await keep(undefined, user.userId)
  t.same(await written(), [row('password_reset_completed', { userId: user.userId, ip: '192.0.2.8' })])
})

t.test('accounts deleted, by the user and by an administrator; a refused deletion records only the failed check', async (t) => {
  const { app, db, admin, clock, written, register, login, row } = await setup(t)
  const user = await register()
  await login(user.email, { ua: PHONE_UA, deviceName: "Alice's phone" })
  const other = await register()
  await written()

  const refused = await call(app, 'DELETE', '/auth/account', { password: 'not the password' }, { token: user.accessToken })
  t.equal(codeOf(refused), 'invalid_credentials')
  t.same(await written(), [row('password_check_failed', { userId: user.userId, sessionId: user.sessionId, detail: { action: 'account_deletion', reason: 'wrong_password' } })],
    'a wrong password: the failed check, no deletion')

  t.equal((await call(app, 'DELETE', '/auth/account', { password: PASSWORD }, { token: user.accessToken })).statusCode, 204)
  t.same(await written(), [row('account_deleted', { userId: user.userId, sessionId: user.sessionId, ip: null, userAgent: null })],
    'recorded without the address the deletion erases')
  const past = await db.securityEvent.findMany({ where: { userId: user.userId, type: { not: 'account_deleted' } } })
  t.same(past.map((event) => event.type).sort(), ['new_device', 'password_check_failed', 'sign_in_succeeded', 'sign_in_succeeded'], 'the past events stay')
  t.same(past.filter((event) => event.ip !== null || event.userAgent !== null), [], 'without their addresses and user agents')
  t.notOk(JSON.stringify(past).includes("Alice's phone"), 'or the device name of the new device')

  // The administrator's domain numbers its events apart from the app's: a later millisecond orders them after the app's.
  clock.advance(1)
  await admin.administration.sessions(other.userId, ADMIN)
  await admin.administration.delete(other.userId, ADMIN)
  const byAdmin = { userId: other.userId, ip: '198.51.100.9', userAgent: 'ops/1', actor: 'admin', actorId: 'ops-console' }
  t.same(await written(), [row('admin_read', { ...byAdmin, detail: { what: 'sessions' } }), row('account_deleted', byAdmin)],
    'by an administrator: recorded with the administrator\'s address')
  t.same((await db.securityEvent.findMany({ where: { userId: other.userId, actor: 'admin' }, orderBy: { id: 'asc' } })).map((event) => event.ip),
    ['198.51.100.9', '198.51.100.9'], 'which the erasure keeps: it is not the user\'s')
  t.same((await db.securityEvent.findMany({ where: { userId: other.userId, NOT: { actor: 'admin' } } })).map((event) => event.ip), [null],
    'the user\'s own registration loses its address')
  const timeline = await admin.administration.events(other.userId, { limit: 10 }, ADMIN)
  t.same(timeline.events.map((event) => event.type), ['account_deleted', 'admin_read', 'sign_in_succeeded'], 'an administrator can still read the deleted account\'s timeline')
  await written()
  await t.rejects(admin.administration.delete(other.userId, ADMIN), { code: 'not_found' })
  t.same(await written(), [], 'deleting it again: nothing')
})

t.test("an administrator's reads", async (t) => {
  const { admin, written, register, row } = await setup(t)
  const user = await register()
  await written()
  await admin.administration.find(user.userId, ADMIN)
  await admin.administration.findByEmail(user.email, ADMIN)
  await admin.administration.sessions(user.userId, ADMIN)
  await admin.administration.events(user.userId, { limit: 10 }, ADMIN)
  const by = { userId: user.userId, ip: '198.51.100.9', userAgent: 'ops/1', actor: 'admin', actorId: 'ops-console' }
  t.same(await written(), ['user', 'user', 'sessions', 'events'].map((what) => row('admin_read', { ...by, detail: { what } })))
  await t.rejects(admin.administration.find(crypto.randomUUID(), ADMIN), { code: 'not_found' })
  t.same(await written(), [], 'an unknown user: nothing read, nothing recorded')
})

t.test('changes that roll back record nothing and publish nothing', async (t) => {
  const { db, admin, written, register, login, row } = await setup(t)
  const user = await register()
  const laptop = await login(user.email)
  await written()
  const published: SecurityEvent[] = []
  admin.events.subscribe((event) => { published.push(event) })

  // revoke-others whose own session ended meanwhile: the version bump happens, then the transaction throws.
  await admin.sessions.end({ userId: user.userId, sessionId: laptop.sessionId, version: 0 })
  await written()
  published.length = 0
  await t.rejects(admin.sessions.keepOnly({ userId: user.userId, sessionId: laptop.sessionId, version: 0 }), { code: 'token_revoked' })
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.userId } })).tokenVersion, 0, 'the bump was rolled back')
  // A password change on a stale token: refused in its transaction.
  await t.rejects(admin.sessions.keepOnly({ userId: user.userId, sessionId: user.sessionId, version: 7 }, { passwordHash: 'x', verifiedHash: 'y' }))
  t.same(await written(), [], 'no row')
  t.same(published, [], 'no event published')

  // A failure inside a transaction after its events were recorded.
  const versions = createTokenVersions({ db, cache: admin.cache, events: admin.events })
  await t.rejects(versions.transaction(async (_tx, bump, record) => {
    await bump(user.userId)
    record({ type: 'signed_out_everywhere', userId: user.userId })
    record({ type: 'password_changed', userId: user.userId })
    throw new Error('forced failure')
  }), /forced failure/)
  t.same(await written(), [], 'no row')
  t.same(published, [], 'no event published')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.userId } })).tokenVersion, 0)

  // The same, committed: written and published.
  await versions.transaction(async (_tx, _bump, record) => { record({ type: 'signed_out_everywhere', userId: user.userId, actor: { kind: 'cli' } }) })
  t.same(await written(), [row('signed_out_everywhere', { userId: user.userId, ip: null, userAgent: null, actor: 'cli' })])
  t.equal(published.length, 1)
})

t.test('after every action, no stored column holds a password, a password hash or a token', async (t) => {
  const { app, db, dir, admin, clock, register, login, keep, secrets, written } = await setup(t, { LOGIN_MAX_FAILURES: '2', MAX_SESSIONS_PER_USER: '3' })
  const user = await register()
  const laptop = await login(user.email)
  const phone = await login(user.email, { ua: PHONE_UA, deviceName: 'Phone' })
  await call(app, 'POST', '/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD })
  for (let i = 0; i < 3; i++) await call(app, 'POST', '/auth/login', { email: user.email, password: NEW_PASSWORD }, { ip: '192.0.2.1' })
  const rotated = await keep((await call(app, 'POST', '/auth/refresh', { refreshToken: laptop.refreshToken })).json() as TokenPair)
  await call(app, 'POST', '/auth/refresh', { refreshToken: rotated.refreshToken })
  clock.advance(11)
  await call(app, 'POST', '/auth/refresh', { refreshToken: laptop.refreshToken })
  await call(app, 'DELETE', `/auth/sessions/${user.sessionId}`, undefined, { token: phone.accessToken })
  const extra: TokenPair[] = []
  for (let i = 0; i < 3; i++) {
    clock.advance(1)
    extra.push(await login(user.email))
  }
  await call(app, 'POST', '/auth/revoke', { token: extra[2]!.accessToken })
  await call(app, 'POST', '/auth/logout', undefined, { token: extra[1]!.accessToken })
  // The three sign-ins above took the limit's three places: extra[0] is the one session left.
  t.equal(codeOf(await call(app, 'POST', '/auth/password', { currentPassword: 'wrong', newPassword: NEW_PASSWORD }, { token: extra[0]!.accessToken })), 'invalid_credentials')
  const changed = await call(app, 'POST', '/auth/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, { token: extra[0]!.accessToken })
  t.equal(changed.statusCode, 200, 'password changed')
  await keep(changed.json() as TokenPair, user.userId)
  const kept = await keep((await call(app, 'POST', '/auth/sessions/revoke-others', undefined, { token: (changed.json() as TokenPair).accessToken })).json() as TokenPair)
  await call(app, 'POST', '/auth/logout-all', undefined, { token: kept.accessToken })
  await call(app, 'POST', '/auth/password/forgot', { email: user.email })
  const token = await resetTokenFromOutbox(dir)
  secrets.add(token)
  secrets.add(token.split('.')[1]!)
  secrets.add((await db.passwordReset.findFirstOrThrow({ where: { userId: user.userId } })).tokenHash)
  t.equal((await call(app, 'POST', '/auth/password/reset', { token, newPassword: PASSWORD })).statusCode, 204, 'reset')
  await keep(undefined, user.userId)
  const after = await login(user.email)
  await admin.administration.disable(user.userId, ADMIN)
  await admin.administration.enable(user.userId, ADMIN)
  await admin.administration.sessions(user.userId, ADMIN)
  await admin.administration.events(user.userId, { limit: 50 }, ADMIN)
  await admin.administration.revokeSessions(user.userId, ADMIN)
  const other = await register()
  await call(app, 'DELETE', '/auth/account', { password: PASSWORD }, { token: other.accessToken })
  t.ok(after.accessToken)

  const types = new Set((await written()).map((event) => event.type))
  t.same([...types].sort(), [
    'account_deleted', 'account_disabled', 'account_enabled', 'admin_read', 'new_device', 'password_changed', 'password_check_failed',
    'password_reset_completed', 'password_reset_requested', 'refresh_token_reused', 'session_revoked', 'sign_in_failed', 'sign_in_succeeded', 'sign_in_throttled',
    'signed_out_everywhere',
  ], 'every stored type was written')
  const stored = JSON.stringify(await db.securityEvent.findMany())
  t.ok(secrets.size > 30, 'the passwords, hashes and tokens of the run')
  const leaked = [...secrets].filter((secret) => stored.includes(secret))
  t.same(leaked, [], 'none of them in any column of any row')
})

t.test('prune() deletes only the events older than the retention', async (t) => {
  const { db, clock, register, login } = await setup(t, { EVENT_RETENTION_DAYS: '30' })
  const events = createSecurityEvents({ db, clock, settings: { retentionDays: 30 } })
  const user = await register()
  clock.advance(20 * 86_400)
  await login(user.email)
  clock.advance(10 * 86_400 - 1)
  t.equal(await events.prune(), 0, 'the registration, a second short of 30 days old, stays')
  clock.advance(2)
  t.equal(await events.prune(), 1, 'the registration, 30 days and a second old, goes')
  const left = await db.securityEvent.findMany()
  t.same(left.map((event) => event.detail), ['{"method":"password"}'], 'the sign-in stays')
  clock.advance(20 * 86_400)
  t.equal(await events.prune(), 1, 'and the sign-in, once as old')
  t.equal(await events.prune(), 0)
})

t.test('EVENT_RETENTION_DAYS=0 stores nothing but still publishes', async (t) => {
  const published: SecurityEvent[] = []
  const { app, db, admin } = await setup(t, { EVENT_RETENTION_DAYS: '0' })
  admin.events.subscribe((event) => { published.push(event) })
  const res = await call(app, 'POST', '/auth/register', { email: uniqueEmail('unstored'), password: PASSWORD })
  t.equal(res.statusCode, 201)
  const userId = (res.json() as { user: { id: string } }).user.id
  await admin.administration.disable(userId, ADMIN)
  await admin.administration.find(userId, ADMIN)
  t.equal(await db.securityEvent.count(), 0, 'nothing stored')
  t.same(published.map((event) => event.type), ['account_disabled', 'admin_read'], 'all published')
  t.equal(await admin.events.prune(), 0)
})
