/** Token introspection (RFC 7662) for resource servers with client credentials. */
import t from 'tap'
import { createApiClients } from '../../src/domain/api-clients.js'
import { createTestApp } from '../helpers/app.js'
import { bearer, post, register } from '../helpers/client.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const env = { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret},billing:614w_D7i6T2cl2R7C1P88MOWGEZdPB2T6WXmEhuiuCo` }
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

function introspect (app: Parameters<typeof post>[0], token: string, authorization = basic(CLIENT.id, CLIENT.secret)) {
  return app.inject({
    method: 'POST', url: '/auth/introspect',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
  })
}

t.test('an active token is reported with its standard claims', async (t) => {
  const { app, config } = await createTestApp(t, { env })
  const a = await register(app)
  const res = await introspect(app, a.accessToken)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const body = res.json()
  t.match(body, { active: true, token_type: 'Bearer', sub: a.user.id, sid: a.sessionId, ver: 0, iss: config.tokens.issuer, aud: 'vouch', jti: String, client_id: 'vouch' })
  t.ok(body.exp > body.iat)
})

t.test('client credentials in the body (client_secret_post) and JSON bodies work too', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  const form = await app.inject({
    method: 'POST', url: '/auth/introspect',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token: a.accessToken, client_id: CLIENT.id, client_secret: CLIENT.secret }).toString(),
  })
  t.equal(form.json().active, true)
  const json = await post(app, '/auth/introspect', { token: a.accessToken }, { authorization: basic('billing', '614w_D7i6T2cl2R7C1P88MOWGEZdPB2T6WXmEhuiuCo') })
  t.equal(json.json().active, true)
})

t.test('any token vouch would reject is inactive', async (t) => {
  const { app, clock } = await createTestApp(t, { env })
  const a = await register(app)
  const b = await register(app)
  const c = await register(app)
  await post(app, '/auth/logout', undefined, bearer(a.accessToken))
  await post(app, '/auth/logout-all', undefined, bearer(b.accessToken))
  const cases = {
    'logged-out session': a.accessToken,
    'after logout-all': b.accessToken,
    'a refresh token': c.refreshToken,
    garbage: 'not-a-token',
    tampered: c.accessToken.slice(0, -4) + 'AAAA',
  }
  for (const [name, token] of Object.entries(cases)) {
    const res = await introspect(app, token)
    t.equal(res.statusCode, 200, name)
    t.same(res.json(), { active: false }, name)
  }
  t.equal((await introspect(app, c.accessToken)).json().active, true, 'a live token is still active')
  clock.advance(900 + 6)
  t.same((await introspect(app, c.accessToken)).json(), { active: false }, 'an expired token')
})

t.test('bad client credentials are 401 with a Basic challenge', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  for (const [name, authorization] of Object.entries({
    'wrong secret': basic(CLIENT.id, 'wrong-secret-0123456789'),
    'unknown client': basic('nobody', CLIENT.secret),
    'a bearer token': `Bearer ${a.accessToken}`,
    'no credentials': '',
  })) {
    const res = await introspect(app, a.accessToken, authorization)
    t.equal(res.statusCode, 401, name)
    t.equal(res.json().code, 'invalid_credentials', name)
    t.equal(res.headers['www-authenticate'], 'Basic realm="vouch"', name)
    t.notOk(res.body.includes('active'), `${name}: nothing about the token`)
  }
})

t.test('without configured clients introspection refuses everyone', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  t.equal((await introspect(app, a.accessToken)).statusCode, 401)
})

t.test('a resource client stored with `vouch clients add` introspects; a stored admin client is no resource server', async (t) => {
  const { app, db, clock } = await createTestApp(t, { env })
  const clients = createApiClients({ db, clock })
  const reader = await clients.add('stored-reader', 'resource')
  const adminClient = await clients.add('stored-console', 'admin')
  const a = await register(app)
  const res = await introspect(app, a.accessToken, basic(reader.id, reader.secret))
  t.equal(res.statusCode, 200)
  t.equal(res.json().active, true, 'the stored resource client is accepted')
  t.equal((await introspect(app, a.accessToken, basic(reader.id, 'x'.repeat(43)))).statusCode, 401, 'with a wrong secret it is not')
  const admin = await introspect(app, a.accessToken, basic(adminClient.id, adminClient.secret))
  t.equal(admin.statusCode, 401, 'an admin client\'s right secret is refused here')
  t.equal(admin.json().code, 'invalid_credentials')
})
