/** The published key set and the health checks. */
import t from 'tap'
import { decodeProtectedHeader } from 'jose'
import { createTestApp } from '../helpers/app.js'
import { register } from '../helpers/client.js'

t.test('the JWKS publishes public signing keys only, cacheable', async (t) => {
  const { app } = await createTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['cache-control'], /^public, max-age=\d+$/)
  const { keys } = res.json()
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: String, x: String })
  t.notOk('d' in keys[0], 'no private parameter')
})

t.test('access tokens name a published kid and the configured alg', async (t) => {
  const { app } = await createTestApp(t, { env: { SIGNING_ALG: 'ES256' } })
  const { keys } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  t.match(keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' })
  const a = await register(app)
  const header = decodeProtectedHeader(a.accessToken)
  t.same(header, { alg: 'ES256', typ: 'at+jwt', kid: keys[0].kid })
})

t.test('health: live always, ready when the database answers, with each check named', async (t) => {
  const { app } = await createTestApp(t)
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', checks: { database: 'ok', invalidations: 'ok' } }, 'no Redis configured: no redis check')
})
