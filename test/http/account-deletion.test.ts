/**
 * DELETE /auth/account: the password again, then every token of the user
 * dies at once (here, on other instances and at resource servers following
 * the revocation feed) and the personal data is erased; the email is free
 * again. test/instances/profile-cache.test.ts shows the other instance.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestApp, createTestDomain } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, uniqueEmail, type TokenPair } from '../helpers/client.js'
import type { Db } from '../../src/db/client.js'
import { hashSecret, randomSecret } from '../../src/crypto/secrets.js'
import type { RevocationBatch } from '../../src/domain/revocation-feed.js'

function deleteAccount (app: FastifyInstance, accessToken: string, password: string = PASSWORD) {
  return app.inject({ method: 'DELETE', url: '/auth/account', payload: { password }, headers: bearer(accessToken) })
}

/** Everything the database holds about a user, by id and by the email it had. */
async function rowsOf (db: Db, userId: string, email: string) {
  return {
    user: await db.user.findUnique({ where: { id: userId } }),
    byEmail: await db.user.count({ where: { email } }),
    sessions: await db.session.findMany({ where: { userId } }),
    resets: await db.passwordReset.count({ where: { userId } }),
  }
}

/** A pending password reset for the user, as POST /auth/password/forgot leaves one. */
async function pendingReset (db: Db, userId: string) {
  const now = new Date()
  await db.passwordReset.create({ data: { userId, tokenHash: 'x'.repeat(64), createdAt: now, expiresAt: new Date(now.getTime() + 60_000) } })
}

t.test('a wrong password answers 401 invalid_credentials and changes nothing', async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await register(app, uniqueEmail(), PASSWORD, 'phone')
  const b = await login(app, a.email, PASSWORD, 'laptop')
  await pendingReset(db, a.user.id)
  const before = await rowsOf(db, a.user.id, a.email)

  const res = await deleteAccount(app, a.accessToken, 'not the password')
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'invalid_credentials')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')

  t.same(await rowsOf(db, a.user.id, a.email), before, 'no row changed')
  for (const token of [a.accessToken, b.accessToken]) t.equal((await me(app, token)).statusCode, 200, 'tokens still work')
  t.equal((await refresh(app, b.refreshToken)).statusCode, 200)
  t.equal((await post(app, '/auth/login', { email: a.email, password: PASSWORD })).statusCode, 200)
})

t.test('a missing password is validation_failed and changes nothing', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const res = await app.inject({ method: 'DELETE', url: '/auth/account', headers: bearer(a.accessToken) })
  t.equal(res.statusCode, 400)
  t.equal(codeOf(res), 'validation_failed')
  t.equal((await me(app, a.accessToken)).statusCode, 200)
})

t.test('without a live access token nothing is deleted', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const anonymous = await app.inject({ method: 'DELETE', url: '/auth/account', payload: { password: PASSWORD } })
  t.equal(anonymous.statusCode, 401)
  t.equal(codeOf(anonymous), 'invalid_token')
  await post(app, '/auth/logout', undefined, bearer(a.accessToken))
  const loggedOut = await deleteAccount(app, a.accessToken)
  t.equal(codeOf(loggedOut), 'token_revoked', 'a logged-out token cannot delete the account')
  t.equal((await post(app, '/auth/login', { email: a.email, password: PASSWORD })).statusCode, 200, 'the account is still there')
})

t.test('password guesses through account deletion count against the sign-in throttle', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '3' } })
  const a = await register(app)
  for (let i = 0; i < 3; i++) t.equal(codeOf(await deleteAccount(app, a.accessToken, `guess ${i}`)), 'invalid_credentials')
  const limited = await deleteAccount(app, a.accessToken)
  t.equal(limited.statusCode, 429, 'even the right password is not tried past the limit')
  t.equal(codeOf(limited), 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(codeOf(await post(app, '/auth/login', { email: a.email, password: PASSWORD })), 'rate_limited', 'and sign-in from that address is limited too')
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'nothing was deleted')
})

t.test('password guesses through a password change count against the same throttle', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '3' } })
  const a = await register(app)
  const change = (currentPassword: string) => post(app, '/auth/password', { currentPassword, newPassword: 'a brand new passphrase' }, bearer(a.accessToken))
  for (let i = 0; i < 3; i++) t.equal(codeOf(await change(`guess ${i}`)), 'invalid_credentials')
  const limited = await change(PASSWORD)
  t.equal(limited.statusCode, 429, 'even the right password is not tried past the limit')
  t.equal(codeOf(limited), 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(codeOf(await deleteAccount(app, a.accessToken)), 'rate_limited', 'one budget with account deletion')
  t.equal(codeOf(await post(app, '/auth/login', { email: a.email, password: PASSWORD })), 'rate_limited', 'and with sign-in from that address')
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'the session is untouched')
})

t.test('deleting the account ends every access and refresh token of the user at once, and no one else\'s', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app, uniqueEmail(), PASSWORD, 'phone')
  const b = await login(app, a.email, PASSWORD, 'laptop')
  const other = await register(app)
  // Cached checks must not outlive the deletion.
  for (let i = 0; i < 3; i++) for (const token of [a.accessToken, b.accessToken]) t.equal((await me(app, token)).statusCode, 200)

  const res = await deleteAccount(app, a.accessToken)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal(res.headers['cache-control'], 'no-store')

  for (const token of [a.accessToken, b.accessToken]) {
    for (const [name, request] of [
      ['GET /auth/me', { method: 'GET', url: '/auth/me' }],
      ['GET /auth/sessions', { method: 'GET', url: '/auth/sessions' }],
      ['DELETE /auth/sessions/:id', { method: 'DELETE', url: `/auth/sessions/${b.sessionId}` }],
      ['POST /auth/sessions/revoke-others', { method: 'POST', url: '/auth/sessions/revoke-others' }],
      ['POST /auth/logout-all', { method: 'POST', url: '/auth/logout-all' }],
      ['POST /auth/logout', { method: 'POST', url: '/auth/logout' }],
    ] as const) {
      const denied = await app.inject({ ...request, headers: bearer(token) })
      t.equal(denied.statusCode, 401, `${name} refuses the old token`)
      t.equal(codeOf(denied), 'token_revoked')
      t.equal(denied.headers['www-authenticate'], 'Bearer error="invalid_token"')
    }
    t.equal(codeOf(await deleteAccount(app, token)), 'token_revoked', 'deleting again is refused')
  }
  for (const token of [a.refreshToken, b.refreshToken]) {
    const denied = await refresh(app, token)
    t.equal(denied.statusCode, 401, 'the refresh token is refused')
    t.equal(codeOf(denied), 'refresh_token_invalid')
  }
  t.equal(codeOf(await post(app, '/auth/login', { email: a.email, password: PASSWORD })), 'invalid_credentials', 'the old email and password no longer sign in')
  t.equal((await me(app, other.accessToken)).statusCode, 200, "another user's token keeps working")
  t.equal((await refresh(app, other.refreshToken)).statusCode, 200)
})

t.test('deleting the account erases its personal data: email, password hash, devices, addresses, pending reset', async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await register(app, uniqueEmail('erased'), PASSWORD, 'Ada’s phone')
  await post(app, '/auth/login', { email: a.email, password: PASSWORD, deviceName: 'work laptop' }, { 'user-agent': 'Mozilla/5.0 (Ada)' })
  await pendingReset(db, a.user.id)
  const other = await register(app, uniqueEmail(), PASSWORD, 'someone else')
  const before = await rowsOf(db, a.user.id, a.email)
  t.equal(before.sessions.length, 2)
  t.equal(before.resets, 1)

  t.equal((await deleteAccount(app, a.accessToken)).statusCode, 204)

  const after = await rowsOf(db, a.user.id, a.email)
  t.equal(after.byEmail, 0, 'no row holds the email')
  t.same(after.sessions, [], 'no session row: device names, user agents and IPs are gone')
  t.equal(after.resets, 0, 'no pending reset')
  // The row stays as a tombstone: revocations reach caches and resource servers through it.
  const tombstone = after.user!
  t.notOk(tombstone.email.includes('@'), `the email is a placeholder no sign-in can name (${tombstone.email})`)
  t.notOk(tombstone.email.includes(a.email.split('@')[0]!), 'nothing of the old address is kept')
  t.notOk(tombstone.passwordHash.startsWith('$argon2'), 'the hash is gone, replaced by a marker that is no hash at all')
  t.equal(tombstone.tokenVersion, before.user!.tokenVersion + 1, 'one version bump')
  t.ok(tombstone.updatedAt > before.user!.updatedAt, 'updatedAt moves, for the revocation feed')

  const raw = JSON.stringify([
    await db.user.findMany(), await db.session.findMany(), await db.passwordReset.findMany(),
  ])
  for (const secret of [a.email, 'Ada’s phone', 'work laptop', 'Mozilla/5.0 (Ada)', before.user!.passwordHash]) {
    t.notOk(raw.includes(secret), `nothing in users, sessions or password_resets holds ${secret.slice(0, 20)}`)
  }
  t.equal((await db.session.count({ where: { userId: other.user.id } })), 1, "another user's sessions are untouched")
})

t.test('the email can be registered again, as a new account', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app, uniqueEmail('again'))
  t.equal((await deleteAccount(app, a.accessToken)).statusCode, 204)

  const again = await register(app, ` ${a.email.toUpperCase()} `, 'a different passphrase')
  t.not(again.user.id, a.user.id, 'a new user')
  t.equal(again.user.email, a.email)
  t.equal((await me(app, again.accessToken)).json().email, a.email)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked', "the old account's token stays dead")
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid')
  t.equal(codeOf(await post(app, '/auth/login', { email: a.email, password: PASSWORD })), 'invalid_credentials', 'the old password does not open the new account')
  t.equal((await post(app, '/auth/login', { email: a.email, password: 'a different passphrase' })).statusCode, 200)
})

t.test("a deleted account's placeholder can be neither signed in with, registered nor sent a reset", async (t) => {
  const { app, db } = await createTestApp(t)
  const a = await register(app)
  t.equal((await deleteAccount(app, a.accessToken)).statusCode, 204)
  const { email: placeholder } = (await db.user.findUnique({ where: { id: a.user.id } }))!
  for (const password of [PASSWORD, '!deleted']) {
    const res = await post(app, '/auth/login', { email: placeholder, password })
    t.equal(codeOf(res), 'validation_failed', 'sign-in never looks the placeholder up')
  }
  t.equal(codeOf(await post(app, '/auth/register', { email: placeholder, password: PASSWORD })), 'validation_failed')
  t.equal(codeOf(await post(app, '/auth/password/forgot', { email: placeholder })), 'validation_failed')
})

t.test('a reset requested as the account was deleted can never give the deleted account a password again', async (t) => {
  const { app, db } = await createTestApp(t, { env: { RESET_SIGNS_IN: 'true' } })
  const a = await register(app)
  t.equal((await deleteAccount(app, a.accessToken)).statusCode, 204)
  // POST /auth/password/forgot looked the email up just before the deletion
  // committed and stored its reset just after: the link reached the old inbox.
  const secret = randomSecret()
  const now = new Date()
  const { id } = await db.passwordReset.create({
    data: { userId: a.user.id, tokenHash: hashSecret(secret), createdAt: now, expiresAt: new Date(now.getTime() + 60_000) },
  })
  const res = await post(app, '/auth/password/reset', { token: `${id}.${secret}`, newPassword: 'back from the dead' })
  t.equal(res.statusCode, 400)
  t.equal(codeOf(res), 'reset_token_invalid')
  const tombstone = (await db.user.findUnique({ where: { id: a.user.id } }))!
  t.notOk(tombstone.passwordHash.startsWith('$argon2'), 'still no password')
  t.equal(tombstone.tokenVersion, 1, 'and no new session or version')
  t.equal(await db.session.count({ where: { userId: a.user.id } }), 0)
})

t.test('of two concurrent deletions one succeeds and the other is refused', async (t) => {
  const { app } = await createTestApp(t)
  for (let round = 0; round < 5; round++) {
    const a = await register(app)
    const b = await login(app, a.email)
    const answers = await Promise.all([deleteAccount(app, a.accessToken), deleteAccount(app, b.accessToken)])
    t.same(answers.map((res) => res.statusCode).sort(), [204, 401], `round ${round}`)
    // Never invalid_credentials: the password was right; the token is what died.
    t.equal(codeOf(answers.find((res) => res.statusCode === 401)!), 'token_revoked', `round ${round}`)
  }
})

t.test('a deletion checked against a token that went stale since it was verified is token_revoked, and no guess is counted', async (t) => {
  const { domain } = await createTestDomain(t, { env: { LOGIN_MAX_FAILURES: '1' } })
  const { accounts, sessions } = domain
  const user = await accounts.register(uniqueEmail('stale'), PASSWORD)
  // Both verified before either deletion runs, as two concurrent requests are.
  const first = await sessions.authenticate((await sessions.start(user, {})).accessToken)
  const second = await sessions.authenticate((await sessions.start(user, {})).accessToken)
  await accounts.deleteAccount(first, PASSWORD, { ip: '127.0.0.1' })
  await t.rejects(accounts.deleteAccount(second, PASSWORD, { ip: '127.0.0.1' }), { code: 'token_revoked' })
  await t.rejects(accounts.deleteAccount(second, PASSWORD, { ip: '127.0.0.1' }), { code: 'token_revoked' }, 'still not rate_limited: nothing was counted')
})

t.test('a deletion racing refreshes leaves no usable token', async (t) => {
  const { app } = await createTestApp(t)
  for (let round = 0; round < 8; round++) {
    const a = await register(app)
    const b = await login(app, a.email)
    // Each device keeps refreshing, with the token it got last, until the
    // deletion has answered, and once more after: refreshes land before,
    // during and after the deletion's transaction.
    let settled = false
    const deletion = deleteAccount(app, a.accessToken).finally(() => { settled = true })
    const chain = async (start: TokenPair) => {
      const issued: TokenPair[] = []
      let current = start
      for (;;) {
        const wasSettled = settled
        const res = await refresh(app, current.refreshToken)
        if (res.statusCode !== 200) {
          t.equal(codeOf(res), 'refresh_token_invalid', `round ${round}: a refresh that lost the race is refresh_token_invalid`)
          return issued
        }
        current = res.json()
        issued.push(current)
        t.notOk(wasSettled, `round ${round}: no refresh succeeds once the deletion has answered`)
        if (wasSettled) return issued
      }
    }
    const chains = await Promise.all([chain(a), chain(b)])
    t.equal((await deletion).statusCode, 204, `round ${round}: deleted`)
    const issued = chains.flat()
    t.comment(`round ${round}: ${issued.length} refreshes succeeded before the deletion committed`)
    for (const pair of [...issued, a, b]) {
      t.equal(codeOf(await me(app, pair.accessToken)), 'token_revoked', `round ${round}: no access token works`)
      t.equal(codeOf(await refresh(app, pair.refreshToken)), 'refresh_token_invalid', `round ${round}: no refresh token works`)
    }
  }
})

t.test('resource servers following the revocation feed are told of a deletion', async (t) => {
  const { domain } = await createTestDomain(t)
  const { accounts, sessions, revocationFeed } = domain
  const user = await accounts.register(uniqueEmail('feed'), PASSWORD)
  const pair = await sessions.start(user, {})
  const principal = await sessions.authenticate(pair.accessToken)

  const pushed: RevocationBatch[] = []
  const unsubscribe = revocationFeed.subscribe({ revocations: (batch) => pushed.push(batch), heartbeat () {}, failed () {} })
  t.teardown(unsubscribe)
  await accounts.deleteAccount(principal, PASSWORD, { ip: '127.0.0.1' })

  for (let i = 0; i < 100 && pushed.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.same(pushed.flatMap((batch) => batch.users), [{ id: user.id, minVersion: user.tokenVersion + 1 }], 'pushed to the streams as soon as it committed')
  const polled = await revocationFeed.changesSince(0)
  t.same(polled.users.filter((entry) => entry.id === user.id), [{ id: user.id, minVersion: user.tokenVersion + 1 }], 'and found by the polls that catch up')
})
