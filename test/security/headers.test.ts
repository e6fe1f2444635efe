/** Security headers on every response, and CORS closed unless configured. */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { register } from '../helpers/client.js'

t.test('every response carries the security headers, errors included', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  const responses = {
    jwks: await app.inject({ method: 'GET', url: '/.well-known/jwks.json' }),
    me: await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `Bearer ${a.accessToken}` } }),
    unauthorized: await app.inject({ method: 'GET', url: '/auth/me' }),
    notFound: await app.inject({ method: 'GET', url: '/nope' }),
    tooLarge: await app.inject({ method: 'POST', url: '/auth/login', payload: JSON.stringify({ x: 'y'.repeat(70_000) }), headers: { 'content-type': 'application/json' } }),
  }
  for (const [name, res] of Object.entries(responses)) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`)
    t.equal(res.headers['x-frame-options'], 'DENY', `${name}: no framing at all`)
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", `${name}: a deny-all CSP, nothing loosened by defaults`)
    t.match(res.headers['strict-transport-security'], /max-age=\d+/, `${name}: HSTS`)
    t.equal(res.headers['referrer-policy'], 'no-referrer', `${name}: no referrer`)
    t.notOk(res.headers['x-powered-by'], `${name}: no x-powered-by`)
  }
})

t.test('CORS is closed by default: no allow-origin for any origin', async (t) => {
  const { app } = await createTestApp(t)
  const preflight = await app.inject({
    method: 'OPTIONS', url: '/auth/login',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  })
  t.notOk(preflight.headers['access-control-allow-origin'])
  const simple = await app.inject({ method: 'GET', url: '/.well-known/jwks.json', headers: { origin: 'https://evil.example' } })
  t.notOk(simple.headers['access-control-allow-origin'])
})

t.test('CORS_ORIGINS opens CORS to exactly the listed origins', async (t) => {
  const { app } = await createTestApp(t, { env: { CORS_ORIGINS: 'https://app.example.com, https://admin.example.com' } })
  const allowed = await app.inject({
    method: 'OPTIONS', url: '/auth/login',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  })
  t.equal(allowed.statusCode, 204)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.match(allowed.headers['access-control-allow-headers'], /content-type/)
  const other = await app.inject({
    method: 'OPTIONS', url: '/auth/login',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  })
  t.notOk(other.headers['access-control-allow-origin'])
})

t.test('a listed origin\'s script can read the headers it needs: Retry-After, WWW-Authenticate, X-Request-Id', async (t) => {
  const { app } = await createTestApp(t, {
    env: { CORS_ORIGINS: 'https://api-client.example.com', COOKIE_ORIGINS: 'https://app.example.com', PUBLIC_URL: 'https://auth.example.com' },
  })
  for (const origin of ['https://api-client.example.com', 'https://app.example.com']) {
    const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { origin } })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['access-control-allow-origin'], origin, `${origin}: allowed`)
    const exposed = String(res.headers['access-control-expose-headers'] ?? '').toLowerCase().split(/\s*,\s*/).sort()
    t.same(exposed, ['retry-after', 'www-authenticate', 'x-request-id'], `${origin}: exactly these exposed`)
  }
  const other = await app.inject({ method: 'GET', url: '/auth/me', headers: { origin: 'https://evil.example' } })
  t.notOk(other.headers['access-control-expose-headers'], 'nothing for an unlisted origin')
})

for (const env of [{ CORS_ORIGINS: 'https://app.example.com' }, { COOKIE_ORIGINS: 'https://app.example.com', PUBLIC_URL: 'https://auth.example.com' }] as Array<Record<string, string>>) {
  t.test(`an OPTIONS from a listed origin that is no preflight (no Access-Control-Request-Method) is the catalogue's 400 (${Object.keys(env)[0]})`, async (t) => {
    const { app } = await createTestApp(t, { env })
    for (const method of [undefined, '']) {
      const res = await app.inject({
        method: 'OPTIONS', url: '/auth/login', headers: { origin: 'https://app.example.com', ...(method !== undefined && { 'access-control-request-method': method }) },
      })
      t.equal(res.statusCode, 400)
      t.match(res.headers['content-type'], /^application\/json/)
      t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], `body: ${res.body}`)
      t.equal(res.json().code, 'validation_failed')
    }
    const preflight = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } })
    t.equal(preflight.statusCode, 204, 'a real preflight is still answered')
  })
}
