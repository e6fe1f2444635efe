/**
 * A refusal's internal detail (which user, session or client) reaches the
 * access log's line for the request and never the response.
 */
import t from 'tap'
import { createLogger } from '../../src/app.js'
import { createTestApp } from '../helpers/app.js'
import { bearer, codeOf, me, post, refresh, register } from '../helpers/client.js'

interface Line { msg: string, reqId?: string, res?: { statusCode: number }, refusal?: { code: string, detail: Record<string, unknown> } }

async function logged (t: Parameters<typeof createTestApp>[0]) {
  const lines: Line[] = []
  const logger = createLogger('info', { write: (line: string) => { lines.push(JSON.parse(line) as Line) } })
  const context = await createTestApp(t, { logger })
  const refusals = () => lines.filter((line) => line.msg === 'request completed' && line.refusal !== undefined).map((line) => line.refusal!)
  return { ...context, refusals }
}

t.test('a replayed refresh token: the log line names the session and user, the body does not', async (t) => {
  const { app, clock, refusals } = await logged(t)
  const a = await register(app)
  await refresh(app, a.refreshToken)
  clock.advance(60)
  const replay = await refresh(app, a.refreshToken)
  t.equal(codeOf(replay), 'refresh_token_reused')
  t.notMatch(replay.body, a.sessionId, 'the body does not name the session')
  t.notMatch(replay.body, a.user.id, 'nor the user')
  t.same(refusals(), [{ code: 'refresh_token_reused', detail: { sessionId: a.sessionId, userId: a.user.id } }])
})

t.test('a revoked access token: the log line names its session and user', async (t) => {
  const { app, refusals } = await logged(t)
  const a = await register(app)
  t.equal((await post(app, '/auth/logout', undefined, bearer(a.accessToken))).statusCode, 204)
  const res = await me(app, a.accessToken)
  t.equal(codeOf(res), 'token_revoked')
  t.notMatch(res.body, a.sessionId)
  t.same(refusals(), [{ code: 'token_revoked', detail: { sessionId: a.sessionId, userId: a.user.id } }])
})

t.test('a dead session\'s refresh token: the log line says which session and why', async (t) => {
  const { app, refusals } = await logged(t)
  const a = await register(app)
  await post(app, '/auth/logout-all', undefined, bearer(a.accessToken))
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid')
  t.match(refusals(), [{ code: 'refresh_token_invalid', detail: { sessionId: a.sessionId, userId: a.user.id, why: 'session not active' } }])
})

t.test('refusals without a detail add nothing to the line', async (t) => {
  const { app, refusals } = await logged(t)
  t.equal(codeOf(await me(app, 'not-a-token')), 'invalid_token')
  t.same(refusals(), [])
})
