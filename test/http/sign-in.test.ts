import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, register, uniqueEmail } from '../helpers/client.js'

t.test('registering creates an account and a first session', async (t) => {
  const { app } = await createTestApp(t)
  const res = await post(app, '/auth/register', { email: '  Alice@Example.COM ', password: PASSWORD, deviceName: 'laptop' })
  t.equal(res.statusCode, 201)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.equal(body.user.email, 'alice@example.com', 'email is trimmed and lower-cased')
  t.match(body, { tokenType: 'Bearer', expiresIn: 900, refreshExpiresIn: 1_209_600, sessionId: String })
  t.notOk('passwordHash' in body.user)
  const profile = await me(app, body.accessToken)
  t.equal(profile.statusCode, 200)
  t.same(profile.json(), body.user)
})

t.test('an email can be registered once, however its accented letters are encoded, and signs in either way', async (t) => {
  const { app } = await createTestApp(t)
  const composed = `\u00e9l\u00e8ve-${Date.now()}@exemple.fr`
  const decomposed = composed.normalize('NFD')
  t.not(decomposed, composed, 'two encodings of one address')
  const first = await post(app, '/auth/register', { email: composed.toUpperCase(), password: PASSWORD })
  t.equal(first.statusCode, 201)
  t.equal(first.json().user.email, composed, 'stored composed (NFC) and lower-cased')
  t.equal(codeOf(await post(app, '/auth/register', { email: decomposed, password: PASSWORD })), 'email_taken', 'the decomposed form is the same account')
  t.equal((await post(app, '/auth/login', { email: decomposed.toUpperCase(), password: PASSWORD })).statusCode, 200, 'and signs in')
})

t.test('an email can be registered once, whatever its case', async (t) => {
  const { app } = await createTestApp(t)
  const email = uniqueEmail()
  await register(app, email)
  const res = await post(app, '/auth/register', { email: email.toUpperCase(), password: PASSWORD })
  t.equal(res.statusCode, 409)
  t.equal(codeOf(res), 'email_taken')
})

t.test('signing in opens a new session per device', async (t) => {
  const { app, clock } = await createTestApp(t)
  const account = await register(app, uniqueEmail(), PASSWORD, 'phone')
  clock.advance(1)
  const pair = await login(app, account.email.toUpperCase(), PASSWORD, 'laptop')
  t.not(pair.sessionId, account.sessionId)
  const list = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(pair.accessToken) })
  t.equal(list.statusCode, 200)
  t.same(list.json().sessions.map((s: { deviceName: string, current: boolean }) => [s.deviceName, s.current]),
    [['laptop', true], ['phone', false]])
})
