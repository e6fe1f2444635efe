/** Every failure answers in one shape with a stable code, and never leaks internals. */
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { CHEAP_ARGON2, TEST_PROVIDER, createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, me, post, register, uniqueEmail } from '../helpers/client.js'
import { createPasswordHasher, type PasswordHasher } from '../../src/crypto/passwords.js'
import { createDb } from '../../src/db/client.js'

function assertErrorShape (t: Test, res: LightMyRequestResponse, status: number, code: string, name = code) {
  t.equal(res.statusCode, status, `${name}: status`)
  t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${name}: exactly the error fields`)
  t.equal(body.statusCode, status, `${name}: statusCode`)
  t.equal(body.code, code, `${name}: code`)
  t.type(body.error, 'string')
  t.type(body.message, 'string')
  t.notMatch(res.body, /\bat .+:\d+:\d+|stack|prisma|sqlite|argon2|SELECT|INSERT/i, `${name}: no internals`)
}

t.test('invalid registration input is validation_failed', async (t) => {
  const { app } = await createTestApp(t)
  const cases: Record<string, unknown> = {
    'missing email': { password: PASSWORD },
    'missing password': { email: uniqueEmail() },
    'email not a string': { email: 12345, password: PASSWORD },
    'password not a string': { email: uniqueEmail(), password: 12345678 },
    'no @': { email: 'not-an-email', password: PASSWORD },
    'empty local part': { email: '@example.com', password: PASSWORD },
    'empty domain': { email: 'user@', password: PASSWORD },
    'two @': { email: 'a@b@example.com', password: PASSWORD },
    'space inside': { email: 'a b@example.com', password: PASSWORD },
    'email over 254 characters': { email: `${'a'.repeat(64)}@${'b'.repeat(186)}.com`, password: PASSWORD },
    'password over 256 characters': { email: uniqueEmail(), password: 'x'.repeat(257) },
    'device name over 100 characters': { email: uniqueEmail(), password: PASSWORD, deviceName: 'd'.repeat(101) },
    'body is an array': [{ email: uniqueEmail(), password: PASSWORD }],
    'body is a string': 'hello',
  }
  for (const [name, payload] of Object.entries(cases)) {
    const res = await app.inject({ method: 'POST', url: '/auth/register', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } })
    assertErrorShape(t, res, 400, 'validation_failed', name)
  }
})

t.test('an email of exactly 254 characters and a password of 256 are accepted', async (t) => {
  const { app } = await createTestApp(t)
  const email = `${'a'.repeat(64)}@${'b'.repeat(185)}.com`
  t.equal(email.length, 254)
  const res = await post(app, '/auth/register', { email, password: 'p'.repeat(256) })
  t.equal(res.statusCode, 201)
})

t.test('unknown fields are ignored, not stored', async (t) => {
  const { app } = await createTestApp(t)
  const res = await post(app, '/auth/register', { email: uniqueEmail(), password: PASSWORD, tokenVersion: 99, isAdmin: true })
  t.equal(res.statusCode, 201)
  t.notOk('isAdmin' in res.json().user)
})

t.test('a password shorter than the minimum is weak_password', async (t) => {
  const { app } = await createTestApp(t)
  assertErrorShape(t, await post(app, '/auth/register', { email: uniqueEmail(), password: 'seven77' }), 400, 'weak_password')
  t.equal((await post(app, '/auth/register', { email: uniqueEmail(), password: 'eight888' })).statusCode, 201)
})

t.test('the minimum password length is configurable', async (t) => {
  const { app } = await createTestApp(t, { env: { PASSWORD_MIN_LENGTH: '12' } })
  assertErrorShape(t, await post(app, '/auth/register', { email: uniqueEmail(), password: 'elevenchars' }), 400, 'weak_password')
})

t.test('malformed bodies are rejected with the error shape', async (t) => {
  const { app } = await createTestApp(t)
  const json = { 'content-type': 'application/json' }
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', payload: '{"email": "a@b.c", ', headers: json }), 400, 'validation_failed', 'truncated JSON')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', payload: '{"__proto__": {"admin": true}, "email": "a@b.c", "password": "xxxxxxxx"}', headers: json }), 400, 'validation_failed', '__proto__ key')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', payload: '{"constructor": {"prototype": {}}, "email": "a@b.c", "password": "xxxxxxxx"}', headers: json }), 400, 'validation_failed', 'constructor.prototype key')
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/login', payload: '', headers: json }), 400, 'validation_failed', 'empty body on a route that needs one')
})

t.test('a malformed JSON body does not echo its content', async (t) => {
  const { app } = await createTestApp(t)
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: '{"password": "hunter2-secret" oops', headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 400)
  t.notMatch(res.body, /hunter2/)
})

t.test('a body over 64 KiB is payload_too_large', async (t) => {
  const { app } = await createTestApp(t)
  const payload = JSON.stringify({ email: uniqueEmail(), password: PASSWORD, padding: 'x'.repeat(64 * 1024) })
  assertErrorShape(t, await app.inject({ method: 'POST', url: '/auth/register', payload, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large')
})

t.test('a body that is not JSON is unsupported_media_type', async (t) => {
  const { app } = await createTestApp(t)
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const res = await app.inject({ method: 'POST', url: '/auth/login', payload: 'email=a@b.c&password=xxxxxxxx', headers: { 'content-type': type } })
    assertErrorShape(t, res, 415, 'unsupported_media_type', type)
  }
})

t.test('an unknown route or method is not_found', async (t) => {
  const { app } = await createTestApp(t)
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/nope' }), 404, 'not_found', 'unknown path')
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/auth/login' }), 404, 'not_found', 'wrong method')
})

t.test('unknown email and wrong password are the same invalid_credentials, each paying one argon2 verification', async (t) => {
  let verifications = 0
  const real = createPasswordHasher(CHEAP_ARGON2)
  const counting: PasswordHasher = { ...real, verify: async (hash, password) => { verifications += 1; return real.verify(hash, password) } }
  const { app } = await createTestApp(t, { passwords: counting })
  const a = await register(app)

  verifications = 0
  const wrong = await post(app, '/auth/login', { email: a.email, password: 'wrong password' })
  t.equal(verifications, 1)
  verifications = 0
  const unknown = await post(app, '/auth/login', { email: uniqueEmail('ghost'), password: 'wrong password' })
  t.equal(verifications, 1, 'the unknown email is verified against a dummy hash')

  assertErrorShape(t, wrong, 401, 'invalid_credentials', 'wrong password')
  assertErrorShape(t, unknown, 401, 'invalid_credentials', 'unknown email')
  t.equal(wrong.json().message, unknown.json().message, 'same message')
})

t.test('bearer routes without a usable token are invalid_token with a WWW-Authenticate challenge', async (t) => {
  const { app } = await createTestApp(t)
  const routes = [
    ['GET', '/auth/me'], ['GET', '/auth/sessions'], ['POST', '/auth/logout'], ['POST', '/auth/logout-all'],
    ['POST', '/auth/password'], ['POST', '/auth/sessions/revoke-others'], ['DELETE', '/auth/sessions/x'],
  ] as const
  for (const [method, url] of routes) {
    for (const authorization of [undefined, 'Bearer', 'Bearer not.a.jwt', 'Basic dXNlcjpwYXNz']) {
      const res = await app.inject({ method, url, headers: authorization === undefined ? {} : { authorization } })
      assertErrorShape(t, res, 401, 'invalid_token', `${method} ${url} with ${authorization ?? 'no header'}`)
      t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
      t.equal(res.headers['cache-control'], 'no-store')
    }
  }
})

t.test('a revoked token on a bearer route is token_revoked with a challenge', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  await post(app, '/auth/logout', undefined, bearer(a.accessToken))
  const res = await me(app, a.accessToken)
  assertErrorShape(t, res, 401, 'token_revoked')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
})

t.test('an unreachable database is service_unavailable: fail closed, never a 500', async (t) => {
  const { app, keys, config, dir } = await createTestApp(t)
  const a = await register(app)
  // The same deployment (keys, config), on a database that cannot be opened.
  const deadUrl = TEST_PROVIDER === 'sqlite' ? `file:${dir}/missing-folder/vouch.db` : 'postgresql://postgres@127.0.0.1:1/vouch'
  const down = await createTestApp(t, { db: createDb(deadUrl), keys })
  t.equal(down.config.tokens.issuer, config.tokens.issuer)

  const res = await me(down.app, a.accessToken)
  assertErrorShape(t, res, 503, 'service_unavailable', 'authenticated call')
  assertErrorShape(t, await post(down.app, '/auth/login', { email: a.email, password: PASSWORD }), 503, 'service_unavailable', 'login')
  assertErrorShape(t, await post(down.app, '/auth/refresh', { refreshToken: a.refreshToken }), 503, 'service_unavailable', 'refresh')
  assertErrorShape(t, await down.app.inject({ method: 'GET', url: '/health/ready' }), 503, 'service_unavailable', 'readiness')
  t.equal((await down.app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'liveness does not depend on the database')
})
