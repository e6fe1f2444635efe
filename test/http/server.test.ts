/**
 * The real entry point (src/server.ts) as its own process on a loopback
 * port: it migrates a fresh database, creates its keys, serves real HTTP,
 * and shuts down cleanly on SIGTERM.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { call, root, startVouch } from '../helpers/process.js'

t.test('a listening server migrates, creates its key, serves the whole flow and stops on SIGTERM', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-server-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const vouch = await startVouch(t, {
    DATA_DIR: dir,
    DATABASE_URL: database.url,
    JWT_ISSUER: 'http://vouch.test',
  })
  const { base } = vouch

  const masterKey = await stat(path.join(dir, 'master-key'))
  t.equal(masterKey.mode & 0o777, 0o600, 'the generated master key is private')

  t.equal((await call(base, '/health/live')).status, 200)
  t.equal((await call(base, '/health/ready')).status, 200)

  const jwks = await call(base, '/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.match(jwks.headers.get('cache-control'), /max-age/)

  const registered = await call(base, '/auth/register', { body: { email: 'Live@Example.com', password: 'a long enough password' } })
  t.equal(registered.status, 201)
  t.equal(registered.headers.get('cache-control'), 'no-store')

  // A resource server verifies the access token with nothing but the published JWKS.
  const { payload, protectedHeader } = await jwtVerify(registered.body.accessToken, createLocalJWKSet(jwks.body), {
    issuer: 'http://vouch.test', audience: 'vouch', typ: 'at+jwt', algorithms: ['EdDSA'],
  })
  t.equal(protectedHeader.kid, jwks.body.keys[0].kid)
  t.equal(payload.sub, registered.body.user.id)
  t.equal(payload.sid, registered.body.sessionId)
  t.equal(payload.ver, 0)
  t.type(payload.jti, 'string')

  t.equal((await call(base, '/auth/me', { token: registered.body.accessToken })).body.email, 'live@example.com')

  const refreshed = await call(base, '/auth/refresh', { body: { refreshToken: registered.body.refreshToken } })
  t.equal(refreshed.status, 200)
  t.equal((await call(base, '/auth/logout-all', { method: 'POST', token: refreshed.body.accessToken })).status, 204)
  const denied = await call(base, '/auth/me', { token: refreshed.body.accessToken })
  t.equal(denied.status, 401)
  t.equal(denied.body.code, 'token_revoked')
  t.equal(denied.headers.get('www-authenticate'), 'Bearer error="invalid_token"')

  t.equal(await vouch.stop(), 0, 'exits cleanly on SIGTERM')
  t.notMatch(vouch.output(), /a long enough password|refreshToken|\$argon2/, 'no password, hash or token in the logs')
  t.notMatch(vouch.output(), new RegExp(registered.body.accessToken.split('.')[2]), 'no access token in the logs')
})

t.test('a bad configuration value stops start-up with a message naming the variable', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/server.ts')], {
    cwd: root, env: { PATH: process.env.PATH ?? '', PORT: 'eighty' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(stderr, /PORT/)
})
