/**
 * The real entry point (src/server.ts) as its own process on a loopback
 * port: it migrates a fresh SQLite file, creates its keys, serves real HTTP,
 * and shuts down cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'

const root = fileURLToPath(new URL('../../', import.meta.url))

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function startServer (env: Record<string, string>): Promise<{ child: ChildProcess, output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/server.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => { output += chunk })
  child.stderr!.on('data', (chunk) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000)
    const check = () => {
      if (output.includes('Server listening')) { clearTimeout(timer); resolve() }
    }
    child.stdout!.on('data', check)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${output}`)) })
  })
  return { child, output: () => output }
}

t.test('a listening server migrates, creates its key, serves the whole flow and stops on SIGTERM', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-server-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const { child, output } = await startServer({
    PORT: String(port),
    DATA_DIR: dir,
    DATABASE_URL: database.url,
    JWT_ISSUER: base,
    ARGON2_MEMORY_KIB: '19456',
  })
  t.teardown(() => { child.kill('SIGKILL') })

  const keyFile = await stat(path.join(dir, 'signing-keys.json'))
  t.equal(keyFile.mode & 0o777, 0o600, 'the generated key file is private')

  const json = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${url}`, {
      ...init,
      headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers as Record<string, string> },
    })
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
  }

  t.equal((await json('/health/live')).status, 200)
  t.equal((await json('/health/ready')).status, 200)

  const jwks = await json('/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.match(jwks.headers.get('cache-control'), /max-age/)

  const registered = await json('/auth/register', { method: 'POST', body: JSON.stringify({ email: 'Live@Example.com', password: 'a long enough password' }) })
  t.equal(registered.status, 201)
  t.equal(registered.headers.get('cache-control'), 'no-store')

  // A resource server verifies the access token with nothing but the published JWKS.
  const { payload, protectedHeader } = await jwtVerify(registered.body.accessToken, createLocalJWKSet(jwks.body), {
    issuer: base, audience: 'vouch', typ: 'at+jwt', algorithms: ['EdDSA'],
  })
  t.equal(protectedHeader.kid, jwks.body.keys[0].kid)
  t.equal(payload.sub, registered.body.user.id)
  t.equal(payload.sid, registered.body.sessionId)
  t.equal(payload.ver, 0)
  t.type(payload.jti, 'string')

  const auth = (token: string) => ({ authorization: `Bearer ${token}` })
  t.equal((await json('/auth/me', { headers: auth(registered.body.accessToken) })).body.email, 'live@example.com')

  const refreshed = await json('/auth/refresh', { method: 'POST', body: JSON.stringify({ refreshToken: registered.body.refreshToken }) })
  t.equal(refreshed.status, 200)
  const loggedOutAll = await json('/auth/logout-all', { method: 'POST', headers: auth(refreshed.body.accessToken) })
  t.equal(loggedOutAll.status, 204)
  const denied = await json('/auth/me', { headers: auth(refreshed.body.accessToken) })
  t.equal(denied.status, 401)
  t.equal(denied.body.code, 'token_revoked')
  t.equal(denied.headers.get('www-authenticate'), 'Bearer error="invalid_token"')

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exits cleanly on SIGTERM')
  t.notMatch(output(), /a long enough password|refreshToken|\$argon2/, 'no password, hash or token in the logs')
  t.notMatch(output(), new RegExp(registered.body.accessToken.split('.')[2]), 'no access token in the logs')
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
