/** Refresh-token rotation, the reuse grace window, and session lifetimes. */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { bearer, codeOf, login, me, post, refresh, register, uniqueEmail, type TokenPair } from '../helpers/client.js'

t.test('a refresh rotates the refresh token and keeps the session', async (t) => {
  const { app, clock } = await createTestApp(t)
  const first = await register(app)
  clock.advance(60)
  const res = await refresh(app, first.refreshToken)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const second: TokenPair = res.json()
  t.equal(second.sessionId, first.sessionId)
  t.not(second.refreshToken, first.refreshToken)
  t.not(second.accessToken, first.accessToken)
  t.match(second, { tokenType: 'Bearer', expiresIn: 900 })
  t.equal((await me(app, second.accessToken)).statusCode, 200)
  t.equal((await refresh(app, second.refreshToken)).statusCode, 200, 'the new refresh token works in turn')
})

t.test('a duplicate refresh within the grace window gets the same new token and signs no one out', async (t) => {
  const { app, clock } = await createTestApp(t)
  const first = await register(app)
  const winner: TokenPair = (await refresh(app, first.refreshToken)).json()
  clock.advance(9)
  const duplicate = await refresh(app, first.refreshToken)
  t.equal(duplicate.statusCode, 200)
  t.equal(duplicate.json().refreshToken, winner.refreshToken, 'one chain: the duplicate gets the live token')
  t.equal((await me(app, duplicate.json().accessToken)).statusCode, 200)
  t.equal((await refresh(app, winner.refreshToken)).statusCode, 200, 'the session is still alive')
})

t.test('concurrent refreshes with one token all succeed with the same new token', async (t) => {
  const { app } = await createTestApp(t)
  const first = await register(app)
  const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(app, first.refreshToken)))
  t.same(responses.map((res) => res.statusCode), Array(10).fill(200), 'no one is signed out, no 5xx')
  const tokens = new Set(responses.map((res) => res.json().refreshToken))
  t.equal(tokens.size, 1, 'no second valid chain')
  t.equal((await refresh(app, [...tokens][0] as string)).statusCode, 200)
})

t.test('a refresh token replayed after the grace window revokes its session', async (t) => {
  const { app, clock } = await createTestApp(t)
  const first = await register(app)
  const second: TokenPair = (await refresh(app, first.refreshToken)).json()
  clock.advance(11)
  const replay = await refresh(app, first.refreshToken)
  t.equal(replay.statusCode, 401)
  t.equal(codeOf(replay), 'refresh_token_reused')
  t.equal(codeOf(await refresh(app, second.refreshToken)), 'refresh_token_invalid', 'the live token of that session is dead too')
  t.equal(codeOf(await me(app, second.accessToken)), 'token_revoked', 'and so is its access token')
})

t.test('a replay revokes only the replayed session', async (t) => {
  const { app, clock } = await createTestApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  await refresh(app, a.refreshToken)
  clock.advance(30)
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_reused')
  t.equal((await me(app, b.accessToken)).statusCode, 200)
  t.equal((await refresh(app, b.refreshToken)).statusCode, 200)
})

t.test('malformed, forged and foreign refresh tokens are refresh_token_invalid', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const [sessionId, generation, body] = a.refreshToken.split('.') as [string, string, string]
  const flip = (text: string) => text.slice(0, -1) + (text.endsWith('A') ? 'B' : 'A')
  const cases = {
    garbage: 'not-a-token',
    'right session, wrong secret': `${sessionId}.${generation}.${flip(body)}`,
    'right session, wrong generation': `${sessionId}.1.${body}`,
    'unknown session': `00000000-0000-4000-8000-000000000000.${generation}.${body}`,
    'access token as refresh token': a.accessToken,
    'missing secret': `${sessionId}.${generation}.`,
    'secret only': body,
    'generation with a sign': `${sessionId}.-0.${body}`,
    'generation with leading zeros': `${sessionId}.00.${body}`,
    'generation past 32 bits': `${sessionId}.4294967296.${body}`,
    'first-release shape, unknown secret': `${sessionId}.${body.slice(0, 43)}`,
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await refresh(app, token)
    t.equal(res.statusCode, 401, name)
    t.equal(codeOf(res), 'refresh_token_invalid', name)
  }
  t.equal((await refresh(app, a.refreshToken)).statusCode, 200, 'none of that harmed the real session')
})

t.test('refreshing a logged-out session is refresh_token_invalid', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const res = await post(app, '/auth/logout', undefined, bearer(a.accessToken))
  t.equal(res.statusCode, 204)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid')
})

t.test('a session ends at its absolute lifetime, however often it is refreshed', async (t) => {
  const { app, clock } = await createTestApp(t, { env: { SESSION_LIFETIME: '3600', SESSION_IDLE_TIMEOUT: '0' } })
  let pair: TokenPair = await register(app)
  t.equal(pair.refreshExpiresIn, 3600)
  for (let elapsed = 0; elapsed < 3000; elapsed += 600) {
    clock.advance(600)
    const res = await refresh(app, pair.refreshToken)
    t.equal(res.statusCode, 200)
    pair = res.json()
  }
  t.equal(pair.refreshExpiresIn, 600, 'the lifetime is not extended by refreshing')
  clock.advance(601)
  t.equal(codeOf(await refresh(app, pair.refreshToken)), 'refresh_token_invalid')
  t.equal(codeOf(await me(app, pair.accessToken)), 'token_revoked', 'an access token of an expired session is refused')
})

t.test('a session lapses after the idle limit without a refresh', async (t) => {
  const { app, clock } = await createTestApp(t, { env: { SESSION_IDLE_TIMEOUT: '3600' } })
  const a = await register(app)
  t.equal(a.refreshExpiresIn, 3600, 'refreshExpiresIn reports the idle limit when it comes first')
  clock.advance(3000)
  const refreshed = await refresh(app, a.refreshToken)
  t.equal(refreshed.statusCode, 200, 'a refresh inside the limit keeps it alive')
  clock.advance(3601)
  t.equal(codeOf(await refresh(app, refreshed.json().refreshToken)), 'refresh_token_invalid')
})

t.test('an access token expires after its lifetime, within the clock skew', async (t) => {
  const { app, clock } = await createTestApp(t)
  const a = await register(app)
  clock.advance(900 + 4)
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'accepted inside the 5 s skew')
  clock.advance(2)
  const res = await me(app, a.accessToken)
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'token_expired')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal((await refresh(app, a.refreshToken)).statusCode, 200, 'the refresh token still works')
})

t.test('the grace window is configurable', async (t) => {
  const { app, clock } = await createTestApp(t, { env: { REFRESH_REUSE_GRACE: '0' } })
  const a = await register(app, uniqueEmail())
  await refresh(app, a.refreshToken)
  clock.advance(1)
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_reused')
})
