/**
 * Client secrets with characters that form-encoding changes (`+`, `%`, as
 * `openssl rand -base64 32` gives about every other secret): RFC 6749 §2.3.1
 * form-encodes the id and secret inside HTTP Basic (as @vouch/verifier
 * does), while `curl -u id:secret` sends them as they are. Every route that
 * takes client credentials accepts both, and tells the same client apart
 * the same way: introspection takes the resource client, the admin API
 * answers it 403 forbidden (a resource client's right secret), never 401.
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { register } from '../helpers/client.js'

const RESOURCE = { id: 'api', secret: 'Zr8+Lp3/Qw9%2BtYx7+Ue7Io3PwKd5Vb1Nm6Hj4Gf2Sa0=' }
const ADMIN = { id: 'ops', secret: 'Pz4+Kq8/Lm2+Rt6%Wv0Ya3Hb7Nc1Jd5Fe9Gx3Hk7Mn2Qs=' }
const env = { RESOURCE_CLIENTS: `${RESOURCE.id}:${RESOURCE.secret}`, ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}` }

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
const formEncoded = (part: string) => new URLSearchParams({ x: part }).toString().slice(2)
const encodings = {
  'as typed (curl -u)': (id: string, secret: string) => basic(id, secret),
  'form-encoded (RFC 6749)': (id: string, secret: string) => basic(formEncoded(id), formEncoded(secret)),
}

t.test('a secret with + and % authenticates as sent and form-encoded, on introspection and on the admin API', async (t) => {
  const { app } = await createTestApp(t, { env })
  const a = await register(app)
  for (const [name, encode] of Object.entries(encodings)) {
    const introspection = await app.inject({
      method: 'POST', url: '/auth/introspect',
      headers: { authorization: encode(RESOURCE.id, RESOURCE.secret), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: a.accessToken }).toString(),
    })
    t.equal(introspection.statusCode, 200, `${name}: the resource client introspects`)
    t.equal(introspection.json().active, true)

    const asAdmin = await app.inject({ method: 'GET', url: `/admin/users/${a.user.id}`, headers: { authorization: encode(RESOURCE.id, RESOURCE.secret) } })
    t.equal(asAdmin.statusCode, 403, `${name}: the resource client's right secret at /admin is forbidden, not unknown`)
    t.equal(asAdmin.json().code, 'forbidden')

    const admin = await app.inject({ method: 'GET', url: `/admin/users/${a.user.id}`, headers: { authorization: encode(ADMIN.id, ADMIN.secret) } })
    t.equal(admin.statusCode, 200, `${name}: the admin client reads the user`)
  }
  // What either decoding of a wrong secret gives is still wrong.
  for (const wrong of [RESOURCE.secret.replace(/\+/g, ' '), RESOURCE.secret.replace('%2B', '+'), `${RESOURCE.secret}x`]) {
    const res = await app.inject({ method: 'GET', url: `/admin/users/${a.user.id}`, headers: { authorization: basic(RESOURCE.id, formEncoded(wrong)) } })
    t.equal(res.statusCode, 401, `a wrong secret (${wrong}) is unknown`)
  }
})

t.test('a configured client id costs the same lookup as a stored one or no client\'s, so timing does not tell which exist', async (t) => {
  let statements: string[] = []
  const { app } = await createTestApp(t, { env, onQuery: (sql) => { statements.push(sql) } })
  const lookups = async (id: string) => {
    statements = []
    const res = await app.inject({ method: 'GET', url: '/admin/users/00000000-0000-4000-8000-000000000000', headers: { authorization: basic(id, 'wrong secret, long enough to be one') } })
    t.equal(res.statusCode, 401, `${id}: a wrong secret`)
    return statements.filter((sql) => /api_clients/i.test(sql)).length
  }
  t.equal(await lookups(ADMIN.id), 1, 'a configured admin id: one lookup')
  t.equal(await lookups(RESOURCE.id), 1, 'a configured resource id: one lookup')
  t.equal(await lookups('no-such-client'), 1, 'an id of no client: one lookup')
  t.equal(await lookups(ADMIN.id), 0, 'each remembered alike for a few seconds')
  t.equal(await lookups('no-such-client'), 0)
})
