/**
 * Races through the whole HTTP stack: requests fired together with
 * `Promise.all`, so that on PostgreSQL they run in parallel transactions and
 * on SQLite they interleave statement by statement. After every race the
 * survivors are checked against SPEC.md and the README's design decisions:
 *
 * - concurrent refreshes with one token all get the same new token: one chain;
 * - of concurrent password changes (from one session or several) exactly one
 *   wins, tokenVersion moves once, only the winner's password and pair work;
 * - logout-all, revoke-others and a session delete racing refreshes and reads
 *   leave no token of the old version alive, whatever the interleaving;
 * - tokenVersion increments are atomic: no lost update;
 * - nothing ever answers 5xx.
 *
 * (Simultaneous resets with one reset token: test/http/password-reset.test.ts.)
 */
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp, type TestContext } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, type TokenPair } from '../helpers/client.js'
import { hashSecret } from '../../src/crypto/secrets.js'

const ROUNDS = 5

const ctx: TestContext = await createTestApp(t)
const { app, db } = ctx

let attacks = 0
const serverErrors: string[] = []

/** A racing request: counted as an attack case; any 5xx is recorded. */
function race (label: string, pending: Promise<LightMyRequestResponse>): Promise<LightMyRequestResponse> {
  attacks++
  return track(label, pending)
}

/** Every request of this file goes through here: any 5xx is recorded. */
function track (label: string, pending: Promise<LightMyRequestResponse>): Promise<LightMyRequestResponse> {
  return pending.then((res) => {
    if (res.statusCode >= 500) serverErrors.push(`${label}: ${res.statusCode} ${res.body}`)
    return res
  })
}

const secretOf = (refreshToken: string) => refreshToken.slice(refreshToken.indexOf('.') + 1)

async function userRow (userId: string) {
  return db.user.findUniqueOrThrow({ where: { id: userId }, select: { tokenVersion: true, passwordHash: true } })
}

function assertNo5xx (t: Test, responses: readonly LightMyRequestResponse[], what: string) {
  const bad = responses.filter((res) => res.statusCode >= 500)
  t.same(bad.map((res) => `${res.statusCode} ${res.body}`), [], `${what}: no 5xx`)
}

async function expectAccessDead (t: Test, app: FastifyInstance, accessToken: string, what: string) {
  const res = await track('me', me(app, accessToken))
  t.equal(res.statusCode, 401, `${what}: access token refused`)
  t.equal(codeOf(res), 'token_revoked', `${what}: token_revoked`)
}

async function expectRefreshDead (t: Test, app: FastifyInstance, refreshToken: string, what: string) {
  const res = await track('refresh', refresh(app, refreshToken))
  t.equal(res.statusCode, 401, `${what}: refresh token refused`)
  t.equal(codeOf(res), 'refresh_token_invalid', `${what}: refresh_token_invalid`)
}

async function expectLogin (app: FastifyInstance, email: string, password: string): Promise<number> {
  return (await track('login', post(app, '/auth/login', { email, password }))).statusCode
}

t.test('simultaneous refreshes with one refresh token: one new token, one chain', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const account = await register(app)
    const results = await Promise.all(Array.from({ length: 8 }, () => race('refresh race', refresh(app, account.refreshToken))))
    assertNo5xx(t, results, `round ${round}`)
    t.same(results.map((res) => res.statusCode), Array(8).fill(200), `round ${round}: every duplicate refresh is 200`)
    const pairs = results.map((res) => res.json() as TokenPair)
    const next = pairs[0]!.refreshToken
    t.same(new Set(pairs.map((pair) => pair.refreshToken)), new Set([next]), 'all got the same new refresh token')
    t.same(new Set(pairs.map((pair) => pair.sessionId)), new Set([account.sessionId]), 'same session')
    t.not(next, account.refreshToken, 'the token rotated')
    for (const pair of pairs) t.equal((await track('me', me(app, pair.accessToken))).statusCode, 200, 'each fresh access token works')

    const sessions = await db.session.findMany({ where: { userId: account.user.id } })
    t.equal(sessions.length, 1, 'no second session was created')
    t.equal(sessions[0]!.refreshTokenHash, hashSecret(secretOf(next)), 'the row has exactly one current hash: the new token\'s')
    t.equal(sessions[0]!.previousRefreshTokenHash, hashSecret(secretOf(account.refreshToken)), 'and remembers the one it replaced')

    // One chain: the old token, within the grace window, only ever yields that same token.
    const duplicate = await track('refresh', refresh(app, account.refreshToken))
    t.equal(duplicate.statusCode, 200)
    t.equal((duplicate.json() as TokenPair).refreshToken, next, 'the old token yields the same token again, not a new chain')
    const third = await track('refresh', refresh(app, next))
    t.equal(third.statusCode, 200, 'the new token rotates')
    const after = (third.json() as TokenPair).refreshToken
    const graceOfNext = await track('refresh', refresh(app, next))
    t.equal((graceOfNext.json() as TokenPair).refreshToken, after, 'the previous token still only yields the current one')
    const original = await track('refresh', refresh(app, account.refreshToken))
    t.equal(codeOf(original), 'refresh_token_reused', 'the original token, two rotations back, is a replay')
    await expectRefreshDead(t, app, after, 'the live token of the replayed session')
    t.equal(await db.session.count({ where: { userId: account.user.id } }), 1, 'still one session')
  }
})

t.test('simultaneous password changes from one session: exactly one wins', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const account = await register(app)
    const newPasswords = Array.from({ length: 6 }, (_, i) => `new passphrase ${round}-${i}`)
    const results = await Promise.all(newPasswords.map((newPassword) =>
      race('password race', post(app, '/auth/password', { currentPassword: PASSWORD, newPassword }, bearer(account.accessToken)))))
    assertNo5xx(t, results, `round ${round}`)
    const winners = results.flatMap((res, i) => (res.statusCode === 200 ? [i] : []))
    t.equal(winners.length, 1, `round ${round}: exactly one change succeeded (${results.map((r) => r.statusCode).join(',')})`)
    for (const [i, res] of results.entries()) {
      if (i === winners[0]) continue
      t.equal(res.statusCode, 401, 'a loser gets 401')
      t.ok(['invalid_credentials', 'token_revoked'].includes(codeOf(res) ?? ''), `a loser gets invalid_credentials or token_revoked (${codeOf(res)})`)
      t.notMatch(res.body, /accessToken|refreshToken/, 'a loser gets no tokens')
    }
    if (winners.length !== 1) continue
    const winner = winners[0]!
    const pair = results[winner]!.json() as TokenPair

    t.equal((await userRow(account.user.id)).tokenVersion, 1, 'tokenVersion incremented exactly once')
    const row = await db.session.findUniqueOrThrow({ where: { id: account.sessionId } })
    t.equal(row.refreshTokenHash, hashSecret(secretOf(pair.refreshToken)), 'the kept session holds the winner\'s refresh token only')
    t.equal(pair.sessionId, account.sessionId, 'the caller\'s session was kept')

    t.equal((await track('me', me(app, pair.accessToken))).statusCode, 200, 'the winner\'s access token works')
    await expectAccessDead(t, app, account.accessToken, 'the pre-change access token')
    await expectRefreshDead(t, app, account.refreshToken, 'the pre-change refresh token')
    const rotated = await track('refresh', refresh(app, pair.refreshToken))
    t.equal(rotated.statusCode, 200, 'the winner\'s refresh token works')

    const logins = await Promise.all([PASSWORD, ...newPasswords].map((password) => expectLogin(app, account.email, password)))
    t.same(logins, [401, ...newPasswords.map((_, i) => (i === winner ? 200 : 401))], 'only the winner\'s new password signs in')
  }
})

t.test('simultaneous password changes from two sessions of one user: exactly one wins', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const first = await register(app)
    const second = await login(app, first.email)
    const devices = [first as TokenPair, second]
    const newPasswords = [`first device passphrase ${round}`, `second device passphrase ${round}`]
    const results = await Promise.all(devices.map((device, i) =>
      race('two-session password race', post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: newPasswords[i] }, bearer(device.accessToken)))))
    assertNo5xx(t, results, `round ${round}`)
    const winners = results.flatMap((res, i) => (res.statusCode === 200 ? [i] : []))
    t.equal(winners.length, 1, `round ${round}: exactly one change succeeded (${results.map((r) => r.statusCode).join(',')})`)
    if (winners.length !== 1) continue
    const winner = winners[0]!
    const loser = 1 - winner
    t.equal(results[loser]!.statusCode, 401)
    t.ok(['invalid_credentials', 'token_revoked'].includes(codeOf(results[loser]!) ?? ''), `the loser gets invalid_credentials or token_revoked (${codeOf(results[loser]!)})`)
    const pair = results[winner]!.json() as TokenPair

    t.equal((await userRow(first.user.id)).tokenVersion, 1, 'tokenVersion incremented exactly once')
    t.equal((await track('me', me(app, pair.accessToken))).statusCode, 200, 'the winner\'s new access token works')
    t.equal((await track('refresh', refresh(app, pair.refreshToken))).statusCode, 200, 'the winner\'s new refresh token works')
    for (const [i, device] of devices.entries()) {
      await expectAccessDead(t, app, device.accessToken, `device ${i} pre-change access token`)
      await expectRefreshDead(t, app, device.refreshToken, `device ${i} pre-change refresh token`)
    }
    const logins = await Promise.all([PASSWORD, ...newPasswords].map((password) => expectLogin(app, first.email, password)))
    t.same(logins, [401, winner === 0 ? 200 : 401, winner === 1 ? 200 : 401], 'only the winner\'s new password signs in')
    const listed = await track('sessions', app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) }))
    t.notOk((listed.json() as { sessions: Array<{ id: string }> }).sessions.some((s) => s.id === devices[loser]!.sessionId),
      'the losing device is not among the active sessions')
  }
})

t.test('logout-all racing refreshes and reads: no token of the old version survives', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const account = await register(app)
    const other = await login(app, account.email)
    const pending = [
      race('logout-all', post(app, '/auth/logout-all', undefined, bearer(account.accessToken))),
      ...Array.from({ length: 3 }, () => race('refresh', refresh(app, account.refreshToken))),
      race('refresh other', refresh(app, other.refreshToken)),
      ...Array.from({ length: 3 }, () => race('me', me(app, account.accessToken))),
      race('me other', me(app, other.accessToken)),
    ]
    const [logoutAll, ...rest] = await Promise.all(pending)
    assertNo5xx(t, [logoutAll!, ...rest], `round ${round}`)
    t.equal(logoutAll!.statusCode, 204, 'logout-all succeeded')
    for (const res of rest.slice(0, 4)) {
      t.ok(res.statusCode === 200 || codeOf(res) === 'refresh_token_invalid', `a racing refresh is 200 or refresh_token_invalid (${res.statusCode} ${codeOf(res)})`)
    }
    for (const res of rest.slice(4)) {
      t.ok(res.statusCode === 200 || codeOf(res) === 'token_revoked', `a racing read is 200 or token_revoked (${res.statusCode} ${codeOf(res)})`)
    }
    t.equal((await userRow(account.user.id)).tokenVersion, 1, 'tokenVersion is 1')

    // Whatever won the race, every token issued before or during it is dead now.
    const issued = rest.slice(0, 4).filter((res) => res.statusCode === 200).map((res) => res.json() as TokenPair)
    t.comment(`round ${round}: ${issued.length} of 4 racing refreshes got a pair`)
    for (const pair of [account as TokenPair, other, ...issued]) {
      await expectAccessDead(t, app, pair.accessToken, 'an access token of the old version')
      await expectRefreshDead(t, app, pair.refreshToken, 'a refresh token of the old version')
    }
    t.equal(await expectLogin(app, account.email, PASSWORD), 200, 'the account still signs in')
  }
})

t.test('revoke-others racing another session\'s refreshes: the other session dies, the caller lives', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const keeper = await register(app)
    const victim = await login(app, keeper.email)
    const [kept, ...refreshes] = await Promise.all([
      race('revoke-others', post(app, '/auth/sessions/revoke-others', undefined, bearer(keeper.accessToken))),
      ...Array.from({ length: 3 }, () => race('refresh victim', refresh(app, victim.refreshToken))),
    ])
    assertNo5xx(t, [kept!, ...refreshes], `round ${round}`)
    t.equal(kept!.statusCode, 200, 'revoke-others succeeded')
    const pair = kept!.json() as TokenPair
    for (const res of refreshes) t.ok(res.statusCode === 200 || codeOf(res) === 'refresh_token_invalid', `racing refresh: ${res.statusCode} ${codeOf(res)}`)
    t.equal((await userRow(keeper.user.id)).tokenVersion, 1, 'tokenVersion is 1')
    t.equal((await track('me', me(app, pair.accessToken))).statusCode, 200, 'the caller\'s new pair works')
    const issued = refreshes.filter((res) => res.statusCode === 200).map((res) => res.json() as TokenPair)
    for (const dead of [victim, ...issued]) {
      await expectAccessDead(t, app, dead.accessToken, 'the other session\'s access token')
      await expectRefreshDead(t, app, dead.refreshToken, 'the other session\'s refresh token')
    }
    await expectAccessDead(t, app, keeper.accessToken, 'the caller\'s previous access token')
    await expectRefreshDead(t, app, keeper.refreshToken, 'the caller\'s previous refresh token (no grace)')
    t.equal((await track('refresh', refresh(app, pair.refreshToken))).statusCode, 200, 'the caller\'s new refresh token works')
  }
})

t.test('deleting a session while it refreshes: nothing of it survives', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const owner = await register(app)
    const device = await login(app, owner.email)
    const [deleted, ...refreshes] = await Promise.all([
      race('delete session', app.inject({ method: 'DELETE', url: `/auth/sessions/${device.sessionId}`, headers: bearer(owner.accessToken) })),
      ...Array.from({ length: 3 }, () => race('refresh deleted', refresh(app, device.refreshToken))),
    ])
    assertNo5xx(t, [deleted!, ...refreshes], `round ${round}`)
    t.equal(deleted!.statusCode, 204, 'the session was deleted')
    for (const res of refreshes) t.ok(res.statusCode === 200 || codeOf(res) === 'refresh_token_invalid', `racing refresh: ${res.statusCode} ${codeOf(res)}`)
    const issued = refreshes.filter((res) => res.statusCode === 200).map((res) => res.json() as TokenPair)
    for (const dead of [device, ...issued]) {
      await expectAccessDead(t, app, dead.accessToken, 'the deleted session\'s access token')
      await expectRefreshDead(t, app, dead.refreshToken, 'the deleted session\'s refresh token')
    }
    t.equal((await track('me', me(app, owner.accessToken))).statusCode, 200, 'the owner\'s own session is untouched')
  }
})

t.test('simultaneous logout-all and revoke-others from several sessions: no lost update', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const account = await register(app)
    const devices = [account as TokenPair, ...await Promise.all(Array.from({ length: 5 }, () => login(app, account.email)))]
    const results = await Promise.all(devices.map((device, i) =>
      race('bump race', post(app, i % 2 === 0 ? '/auth/logout-all' : '/auth/sessions/revoke-others', undefined, bearer(device.accessToken)))))
    assertNo5xx(t, results, `round ${round}`)
    for (const res of results) t.ok([200, 204].includes(res.statusCode) || codeOf(res) === 'token_revoked', `${res.statusCode} ${codeOf(res)}`)
    const successes = results.filter((res) => res.statusCode === 200 || res.statusCode === 204).length
    const { tokenVersion } = await userRow(account.user.id)
    t.equal(tokenVersion, successes, `round ${round}: tokenVersion ${tokenVersion} equals the ${successes} successful bumps`)
    t.ok(successes >= 1, 'at least one bump succeeded')
    // Only a revoke-others that ran last can hold a live pair; every pre-race token is dead.
    for (const device of devices) await expectAccessDead(t, app, device.accessToken, 'a pre-race access token')
    const pairs = results.filter((res) => res.statusCode === 200).map((res) => res.json() as TokenPair)
    const alive = []
    for (const pair of pairs) if ((await track('me', me(app, pair.accessToken))).statusCode === 200) alive.push(pair)
    t.ok(alive.length <= 1, `at most one revoke-others pair is alive (${alive.length})`)
  }
})

t.test('no request of this file answered 5xx', async (t) => {
  t.same(serverErrors, [], 'no 5xx')
  t.comment(`concurrency: ${attacks} attack cases tried`)
})
