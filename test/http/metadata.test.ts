/**
 * Standard tokens and metadata: access tokens carry every RFC 9068 claim
 * (client_id included), and the RFC 8414 document at both well-known paths
 * names the issuer those tokens carry and the endpoints under PUBLIC_URL, or
 * under where vouch listens when nothing says otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose'
import type { FastifyInstance } from 'fastify'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER, createTestApp } from '../helpers/app.js'
import { codeOf, me, register } from '../helpers/client.js'
import { call, startVouch } from '../helpers/process.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const PATHS = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']

const metadataOf = async (app: FastifyInstance, url = PATHS[0]!) => app.inject({ method: 'GET', url })

t.test('both well-known paths answer the same RFC 8414 document, its URLs under PUBLIC_URL', async (t) => {
  const { app, config } = await createTestApp(t, { env: { PUBLIC_URL: 'https://auth.example.com/' } })
  const [oauth, oidc] = await Promise.all(PATHS.map((url) => metadataOf(app, url)))
  for (const res of [oauth!, oidc!]) {
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.headers['cache-control'], 'public, max-age=300', 'cacheable like the JWKS')
  }
  t.equal(oidc!.body, oauth!.body, 'the same document')
  t.same(oauth!.json(), {
    issuer: 'https://auth.example.com',
    jwks_uri: 'https://auth.example.com/.well-known/jwks.json',
    introspection_endpoint: 'https://auth.example.com/auth/introspect',
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint: 'https://auth.example.com/auth/revoke',
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    grant_types_supported: [],
    response_types_supported: [],
    vouch_access_token_signing_alg_values_supported: ['EdDSA'],
    vouch_revocation_feed_endpoint: 'https://auth.example.com/auth/revocations',
  })
  t.equal(config.tokens.issuer, 'https://auth.example.com', 'PUBLIC_URL is the issuer')
  t.equal(config.mail.resetUrl, 'https://auth.example.com/account/reset-password', 'and the base of the reset link')
  const a = await register(app)
  t.equal(decodeJwt(a.accessToken).iss, 'https://auth.example.com', 'tokens carry the issuer the metadata names')
})

t.test('without PUBLIC_URL or JWT_ISSUER, the issuer and every URL are where vouch listens', async (t) => {
  const { app } = await createTestApp(t, { env: { PORT: '4123', SIGNING_ALG: 'ES256' } })
  const metadata = (await metadataOf(app)).json()
  t.match(metadata, {
    issuer: 'http://127.0.0.1:4123',
    jwks_uri: 'http://127.0.0.1:4123/.well-known/jwks.json',
    vouch_access_token_signing_alg_values_supported: ['ES256'],
  })
  t.equal(decodeJwt((await register(app)).accessToken).iss, 'http://127.0.0.1:4123')
})

t.test('JWT_ISSUER, when set, is the issuer, and the URLs follow it unless PUBLIC_URL is set', async (t) => {
  const alone = await createTestApp(t, { env: { JWT_ISSUER: 'https://id.example.com' } })
  t.match((await metadataOf(alone.app)).json(), { issuer: 'https://id.example.com', jwks_uri: 'https://id.example.com/.well-known/jwks.json' })
  const both = await createTestApp(t, { env: { JWT_ISSUER: 'https://id.example.com', PUBLIC_URL: 'https://vouch.internal:8443' } })
  t.match((await metadataOf(both.app)).json(), { issuer: 'https://id.example.com', jwks_uri: 'https://vouch.internal:8443/.well-known/jwks.json' })
})

t.test('access tokens carry every RFC 9068 claim: iss, exp, aud, sub, client_id, iat, jti, with sid, ver and typ at+jwt', async (t) => {
  const { app, config } = await createTestApp(t, { env: { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` } })
  const a = await register(app)
  t.equal(decodeProtectedHeader(a.accessToken).typ, 'at+jwt')
  const claims = decodeJwt(a.accessToken)
  t.same(Object.keys(claims).sort(), ['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub', 'ver'])
  t.match(claims, { iss: config.tokens.issuer, aud: 'vouch', sub: a.user.id, client_id: 'vouch', sid: a.sessionId, ver: 0, jti: String })
  t.equal(claims.exp! - claims.iat!, 900)

  const introspected = await app.inject({
    method: 'POST', url: '/auth/introspect',
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}` },
    payload: { token: a.accessToken },
  })
  t.match(introspected.json(), { active: true, client_id: 'vouch' }, 'introspection names the client too')
})

t.test('JWT_CLIENT_ID names the client the tokens are issued to', async (t) => {
  const { app } = await createTestApp(t, { env: { JWT_CLIENT_ID: 'acme-web' } })
  const a = await register(app)
  t.equal(decodeJwt(a.accessToken).client_id, 'acme-web')
  t.equal((await me(app, a.accessToken)).statusCode, 200)
})

t.test('a token signed before client_id existed is still accepted; a client_id that is not a string is not', async (t) => {
  const { app, config, keys } = await createTestApp(t)
  const a = await register(app)
  const { client_id: _clientId, ...older } = decodeJwt(a.accessToken)
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims)
    .setProtectedHeader({ alg: keys.algorithm, typ: 'at+jwt', kid: keys.current.kid })
    .sign(keys.current.privateKey)
  t.equal(older.iss, config.tokens.issuer)
  t.equal((await me(app, await sign(older))).statusCode, 200, 'no client_id: a first-release token')
  t.equal(codeOf(await me(app, await sign({ ...older, client_id: 42 }))), 'invalid_token')
})

t.test('a vouch started without JWT_ISSUER signs as the URL it serves on, and says so in its ready line', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-issuer-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const vouch = await startVouch(t, { DATA_DIR: dir, DATABASE_URL: database.url, HOST: '127.0.0.1' })
  t.teardown(() => vouch.stop())

  const metadata = (await call(vouch.base, '/.well-known/oauth-authorization-server')).body
  t.equal(metadata.issuer, vouch.base, 'the issuer is the URL the server answers on')
  const registered = await call(vouch.base, '/auth/register', { body: { email: 'issuer@example.com', password: 'a long enough password' } })
  t.equal(decodeJwt(registered.body.accessToken).iss, vouch.base)

  const ready = vouch.output().split('\n').map((line) => { try { return JSON.parse(line) } catch { return undefined } })
    .find((entry) => entry?.msg === 'ready')
  t.match(ready, { issuer: vouch.base, audience: 'vouch', metadata: `${vouch.base}/.well-known/oauth-authorization-server` },
    'start-up logs the issuer and audience it signs with')
  t.notOk(vouch.output().includes('PUBLIC_URL'), 'no warning on a loopback address')
})
