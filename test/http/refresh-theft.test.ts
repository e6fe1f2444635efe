/**
 * Refresh-token theft (SPEC "Additions"): any refresh token that was once
 * valid for a session and has since been superseded, presented after the
 * grace window, revokes the session with `refresh_token_reused`, however many
 * rotations ago it was superseded. Inside the window only a duplicate of the
 * last rotation from the session's own client gets the live successor.
 */
import t from 'tap'
import { hashSecret } from '../../src/crypto/secrets.js'
import { createSecurityEvents, type SecurityEvent } from '../../src/domain/security-events.js'
import { createTestApp } from '../helpers/app.js'
import { codeOf, me, post, refresh, register, type TokenPair } from '../helpers/client.js'

const OWNER_AGENT = 'Mozilla/5.0 (owner laptop)'
const THIEF_AGENT = 'curl/8.5.0'

function refreshAs (app: Parameters<typeof refresh>[0], refreshToken: string, userAgent: string) {
  return post(app, '/auth/refresh', { refreshToken }, { 'user-agent': userAgent })
}

/** Rotates `pair` `times` times, a second apart; returns every pair in order (the first is `pair`). */
async function rotate (app: Parameters<typeof refresh>[0], clock: { advance (seconds: number): void }, pair: TokenPair, times: number) {
  const chain = [pair]
  for (let i = 0; i < times; i++) {
    clock.advance(1)
    const res = await refresh(app, chain.at(-1)!.refreshToken)
    if (res.statusCode !== 200) throw new Error(`rotation ${i + 1} failed: ${res.body}`)
    chain.push(res.json())
  }
  return chain
}

t.test('a thief who rotates a stolen token twice is caught when the owner replays it: the session dies', async (t) => {
  const { app, clock } = await createTestApp(t)
  const owner = await register(app)
  // The thief copies the owner's refresh token and rotates it twice.
  clock.advance(60)
  const [, stolen1, stolen2] = await rotate(app, clock, owner, 2)
  // The owner comes back later with the token it still holds.
  clock.advance(60)
  const replay = await refresh(app, owner.refreshToken)
  t.equal(replay.statusCode, 401)
  t.equal(codeOf(replay), 'refresh_token_reused')
  t.equal(codeOf(await refresh(app, stolen2!.refreshToken)), 'refresh_token_invalid', "the thief's live refresh token is dead")
  t.equal(codeOf(await me(app, stolen2!.accessToken)), 'token_revoked', "and so is the thief's access token")
  t.equal(codeOf(await me(app, stolen1!.accessToken)), 'token_revoked')
})

t.test('the owner replaying inside the grace window after a double rotation still revokes the session', async (t) => {
  const { app, clock } = await createTestApp(t)
  const owner = await register(app)
  const [, , stolen2] = await rotate(app, clock, owner, 2)
  const replay = await refresh(app, owner.refreshToken)
  t.equal(codeOf(replay), 'refresh_token_reused', 'two rotations back is never a duplicate of the last one')
  t.equal(codeOf(await me(app, stolen2!.accessToken)), 'token_revoked')
})

for (const behind of [3, 10]) {
  t.test(`a refresh token replayed ${behind} rotations back revokes the session`, async (t) => {
    const { app, clock } = await createTestApp(t)
    const chain = await rotate(app, clock, await register(app), behind)
    clock.advance(30)
    t.equal(codeOf(await refresh(app, chain[0]!.refreshToken)), 'refresh_token_reused')
    t.equal(codeOf(await refresh(app, chain.at(-1)!.refreshToken)), 'refresh_token_invalid', 'the live token died with the session')
    t.equal(codeOf(await me(app, chain.at(-1)!.accessToken)), 'token_revoked')
  })
}

t.test('every superseded generation is recognised, not only the first', async (t) => {
  const { app, clock } = await createTestApp(t)
  const chain = await rotate(app, clock, await register(app), 6)
  clock.advance(30)
  // Replaying the fourth of six superseded tokens (two back from the live one).
  t.equal(codeOf(await refresh(app, chain[4]!.refreshToken)), 'refresh_token_reused')
  t.equal(codeOf(await refresh(app, chain[6]!.refreshToken)), 'refresh_token_invalid')
})

t.test('a made-up token naming an old generation of a real session is invalid and revokes nothing', async (t) => {
  const { app, clock } = await createTestApp(t)
  const chain = await rotate(app, clock, await register(app), 3)
  clock.advance(30)
  // Someone who knows the session id (it is in every access token) but holds no token of it.
  const [sessionId, , body] = chain.at(-1)!.refreshToken.split('.') as [string, string, string]
  const forged = [`${sessionId}.0.${body}`, `${sessionId}.1.${'A'.repeat(body.length)}`, `${sessionId}.2.${body.slice(0, 43)}${'B'.repeat(22)}`]
  for (const token of forged) t.equal(codeOf(await refresh(app, token)), 'refresh_token_invalid', token.slice(37))
  t.equal((await refresh(app, chain.at(-1)!.refreshToken)).statusCode, 200, 'the session is unharmed')
})

t.test('inside the grace window a duplicate gets the live successor and is recorded', async (t) => {
  const events = createSecurityEvents()
  const seen: SecurityEvent[] = []
  events.subscribe((event) => seen.push(event))
  const { app, clock } = await createTestApp(t, { events })
  const owner = (await post(app, '/auth/register', { email: `grace-${process.pid}@example.com`, password: 'correct horse battery staple' }, { 'user-agent': OWNER_AGENT })).json() as TokenPair
  const winner: TokenPair = (await refreshAs(app, owner.refreshToken, OWNER_AGENT)).json()
  clock.advance(5)
  const duplicate = await refreshAs(app, owner.refreshToken, OWNER_AGENT)
  t.equal(duplicate.statusCode, 200)
  t.equal(duplicate.json().refreshToken, winner.refreshToken, 'the same successor: one chain')
  t.match(seen.filter((event) => event.type === 'refresh_duplicate_in_grace'), [{ type: 'refresh_duplicate_in_grace', sessionId: owner.sessionId, client: { userAgent: OWNER_AGENT } }])
})

t.test('inside the grace window a duplicate from another client is a theft: the session dies', async (t) => {
  const events = createSecurityEvents()
  const seen: SecurityEvent[] = []
  events.subscribe((event) => seen.push(event))
  const { app, clock } = await createTestApp(t, { events })
  const owner = (await post(app, '/auth/register', { email: `bound-${process.pid}@example.com`, password: 'correct horse battery staple' }, { 'user-agent': OWNER_AGENT })).json() as TokenPair
  const next: TokenPair = (await refreshAs(app, owner.refreshToken, OWNER_AGENT)).json()
  clock.advance(2)
  t.equal(codeOf(await refreshAs(app, owner.refreshToken, THIEF_AGENT)), 'refresh_token_reused')
  t.equal(codeOf(await me(app, next.accessToken)), 'token_revoked')
  t.match(seen.filter((event) => event.type === 'refresh_token_reused'), [{ type: 'refresh_token_reused', sessionId: owner.sessionId, generationsBehind: 1, client: { userAgent: THIEF_AGENT } }])
})

t.test('after a password change the old refresh tokens are invalid and revoke nothing (they outlived their version)', async (t) => {
  const { app, clock } = await createTestApp(t)
  const chain = await rotate(app, clock, await register(app), 2)
  const changed = await post(app, '/auth/password', { currentPassword: 'correct horse battery staple', newPassword: 'another long passphrase' },
    { authorization: `Bearer ${chain[2]!.accessToken}` })
  t.equal(changed.statusCode, 200)
  clock.advance(30)
  for (const old of chain) t.equal(codeOf(await refresh(app, old.refreshToken)), 'refresh_token_invalid')
  t.equal((await refresh(app, changed.json().refreshToken)).statusCode, 200, 'the re-keyed session lives on')
})

t.test('a refresh token of the first release (no generation) still refreshes, into the current format', async (t) => {
  const { app, db } = await createTestApp(t)
  const owner = await register(app)
  const legacySecret = 'L'.repeat(43)
  await db.session.update({ where: { id: owner.sessionId }, data: { refreshTokenHash: hashSecret(legacySecret) } })
  const res = await refresh(app, `${owner.sessionId}.${legacySecret}`)
  t.equal(res.statusCode, 200)
  t.match(res.json().refreshToken, new RegExp(`^${owner.sessionId}\\.1\\.[A-Za-z0-9_-]{65}$`))
  t.equal((await refresh(app, res.json().refreshToken)).statusCode, 200)
})
