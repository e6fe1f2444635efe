/**
 * Token revocation (RFC 7009) at POST /auth/revoke: a refresh token's holder
 * (no credentials) or a resource client (its credentials) revokes; a live
 * token ends its session like logout; anything else is a 200 that changes
 * nothing.
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestApp, createTestDomain } from '../helpers/app.js'
import { codeOf, me, post, refresh, register } from '../helpers/client.js'
import type { RevocationBatch } from '../../src/domain/revocation-feed.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const env = { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` }
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

/** A form-encoded RFC 7009 request, as OAuth libraries send it. */
function revoke (app: FastifyInstance, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST', url: '/auth/revoke',
    headers: { 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8', ...headers },
    payload: new URLSearchParams(fields).toString(),
  })
}

t.test('revoking a refresh token without client credentials ends its session, like logout', async (t) => {
  const { app, db } = await createTestApp(t, { env })
  const a = await register(app)
  const other = await post(app, '/auth/login', { email: a.email, password: a.password }).then((res) => res.json())

  const res = await revoke(app, { token: a.refreshToken, token_type_hint: 'refresh_token', client_id: 'vouch' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '', 'an empty body')
  t.equal(res.headers['cache-control'], 'no-store')

  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid', 'the refresh token is dead')
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked', 'and so is the access token of its session')
  const row = await db.session.findUniqueOrThrow({ where: { id: a.sessionId } })
  t.ok(row.revokedAt, 'the session is revoked')
  t.equal(row.revokedReason, 'logout')
  t.equal((await me(app, other.accessToken)).statusCode, 200, 'the user\'s other session is untouched')
})

t.test('revoking an access token ends its session too, form-encoded or JSON, hint or not', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  const res = await revoke(app, { token: a.accessToken, token_type_hint: 'access_token' }, { authorization: basic(CLIENT.id, CLIENT.secret) })
  t.equal(res.statusCode, 200)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid', 'the session\'s refresh token dies with it')

  const b = await register(app)
  // A wrong hint is only a hint (RFC 7009 §2.1), and JSON bodies work too.
  const json = await post(app, '/auth/revoke', { token: b.accessToken, token_type_hint: 'refresh_token', client_id: CLIENT.id, client_secret: CLIENT.secret })
  t.equal(json.statusCode, 200)
  t.equal(codeOf(await me(app, b.accessToken)), 'token_revoked')
  const c = await register(app)
  t.equal((await post(app, '/auth/revoke', { token: c.accessToken })).statusCode, 200, 'the holder of an access token needs no credentials either')
  t.equal(codeOf(await me(app, c.accessToken)), 'token_revoked')
})

t.test('a superseded refresh token revokes the session as well', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  const rotated = (await refresh(app, a.refreshToken)).json()
  t.equal((await revoke(app, { token: a.refreshToken })).statusCode, 200)
  t.equal(codeOf(await refresh(app, rotated.refreshToken)), 'refresh_token_invalid', 'the live token of the session is dead')
  t.equal(codeOf(await me(app, rotated.accessToken)), 'token_revoked')
})

t.test('unknown, malformed, expired and already-revoked tokens answer 200 and change nothing', async (t) => {
  const { app, clock } = await createTestApp(t, { env })
  const a = await register(app)
  const b = await register(app)
  await revoke(app, { token: b.refreshToken })
  const dead = {
    empty: '',
    garbage: 'not-a-token',
    'an unknown refresh token': `${crypto.randomUUID()}.0.${'A'.repeat(64)}`,
    'a refresh token with a wrong secret': `${a.sessionId}.0.${'A'.repeat(64)}`,
    'a tampered access token': `${a.accessToken.slice(0, -4)}AAAA`,
    'an already revoked refresh token': b.refreshToken,
    'an access token of a revoked session': b.accessToken,
    'a reset-token-shaped string': `${crypto.randomUUID()}.${'B'.repeat(43)}`,
  }
  for (const [name, token] of Object.entries(dead)) {
    const res = await revoke(app, { token })
    t.equal(res.statusCode, 200, name)
    t.equal(res.body, '', name)
  }
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'the live session was not touched')

  clock.advance(900 + 6)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_expired')
  t.equal((await revoke(app, { token: a.accessToken })).statusCode, 200, 'an expired access token')
  const renewed = await refresh(app, a.refreshToken)
  t.equal(renewed.statusCode, 200, 'an expired access token has no power left: its session lives on')
})

t.test('wrong client credentials are 401 invalid_credentials with a Basic challenge, and the token lives on', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  for (const [name, headers, fields] of [
    ['wrong secret (Basic)', { authorization: basic(CLIENT.id, 'wrong-secret-0123456789') }, {}],
    ['unknown client (Basic)', { authorization: basic('nobody', CLIENT.secret) }, {}],
    ['a bearer token as credentials', { authorization: `Bearer ${a.accessToken}` }, {}],
    ['wrong secret in the body', {}, { client_id: CLIENT.id, client_secret: 'wrong-secret-0123456789' }],
    ['a secret without a client id', {}, { client_secret: CLIENT.secret }],
  ] as const) {
    const res = await revoke(app, { token: a.refreshToken, ...fields }, headers)
    t.equal(res.statusCode, 401, name)
    t.equal(codeOf(res), 'invalid_credentials', name)
    t.equal(res.headers['www-authenticate'], 'Basic realm="vouch"', name)
  }
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'nothing was revoked')
})

t.test('a request without a token is 400 validation_failed', async (t) => {
  const { app } = await createTestApp(t, { env })
  const res = await revoke(app, { token_type_hint: 'refresh_token' })
  t.equal(res.statusCode, 400)
  t.equal(codeOf(res), 'validation_failed')
})

t.test('a revocation reaches the revocation feed, as a logout does', async (t) => {
  const { domain } = await createTestDomain(t)
  const account = await domain.accounts.register('feed@example.com', 'correct horse battery staple')
  const user = await domain.sessions.start(account, {})
  const seen: RevocationBatch[] = []
  const unsubscribe = domain.revocationFeed.subscribe({ revocations: (batch) => seen.push(batch), heartbeat: () => {}, failed: () => {} })
  t.teardown(unsubscribe)
  t.equal(await domain.sessions.revokeByToken(user.refreshToken), true)
  const deadline = Date.now() + 5000
  while (!seen.some((batch) => batch.sessions.includes(user.sessionId)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(seen.some((batch) => batch.sessions.includes(user.sessionId)), 'the session is announced to the feed\'s streams')
  t.equal(await domain.sessions.revokeByToken(user.refreshToken), false, 'a second revocation changes nothing')
})
