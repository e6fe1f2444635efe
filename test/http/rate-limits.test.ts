/** Rate limits: per IP on /auth routes, and the stricter failed sign-in throttle. */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER, createTestApp } from '../helpers/app.js'
import { PASSWORD, codeOf, register, uniqueEmail } from '../helpers/client.js'
import { call, startVouch } from '../helpers/process.js'
import { REDIS_URL, requireRedis } from '../helpers/services.js'

function signIn (app: FastifyInstance, email: string, password: string, ip = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip })
}

t.test('repeated failures for one account from one IP are throttled, with Retry-After', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '3' } })
  const victim = await register(app)
  const bystander = await register(app)
  for (let i = 0; i < 3; i++) t.equal(codeOf(await signIn(app, victim.email, 'wrong password')), 'invalid_credentials')

  const limited = await signIn(app, victim.email, 'wrong password')
  t.equal(limited.statusCode, 429)
  t.same(Object.keys(limited.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.equal(codeOf(limited), 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0, `Retry-After: ${limited.headers['retry-after']}`)
  t.equal(codeOf(await signIn(app, victim.email, PASSWORD)), 'rate_limited', 'even the right password is not tried from that IP')

  t.equal((await signIn(app, bystander.email, PASSWORD)).statusCode, 200, 'other users are unaffected')
  t.equal((await signIn(app, victim.email, PASSWORD, '10.0.0.7')).statusCode, 200, 'the owner signs in from another IP')
})

t.test('the throttle ends with its window', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '2', LOGIN_FAILURE_WINDOW: '1' } })
  const user = await register(app)
  await signIn(app, user.email, 'wrong password')
  await signIn(app, user.email, 'wrong password')
  t.equal(codeOf(await signIn(app, user.email, PASSWORD)), 'rate_limited')
  await sleep(1100)
  t.equal((await signIn(app, user.email, PASSWORD)).statusCode, 200)
})

t.test('a successful sign-in clears the count for its IP', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '3' } })
  const user = await register(app)
  for (let round = 0; round < 3; round++) {
    await signIn(app, user.email, 'wrong password')
    await signIn(app, user.email, 'wrong password')
    t.equal((await signIn(app, user.email, PASSWORD)).statusCode, 200, `round ${round}`)
  }
})

t.test('unknown emails are throttled exactly like known ones', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '2' } })
  const ghost = uniqueEmail('ghost')
  t.equal(codeOf(await signIn(app, ghost, 'x-password')), 'invalid_credentials')
  t.equal(codeOf(await signIn(app, ghost, 'x-password')), 'invalid_credentials')
  t.equal(codeOf(await signIn(app, ghost, 'x-password')), 'rate_limited')
})

t.test('a distributed guess locks the account for new IPs, never for an IP its owner signed in from', async (t) => {
  const { app } = await createTestApp(t, { env: { LOGIN_MAX_FAILURES: '100', LOGIN_MAX_ACCOUNT_FAILURES: '5' } })
  const owner = await register(app)
  t.equal((await signIn(app, owner.email, PASSWORD, '192.0.2.10')).statusCode, 200, 'the owner signs in at home')
  for (let i = 0; i < 5; i++) t.equal(codeOf(await signIn(app, owner.email, 'guess', `198.51.100.${i}`)), 'invalid_credentials')
  t.equal(codeOf(await signIn(app, owner.email, 'guess', '198.51.100.99')), 'rate_limited', 'a new IP is refused')
  t.equal(codeOf(await signIn(app, owner.email, PASSWORD, '198.51.100.98')), 'rate_limited', 'even with the right password')
  t.equal((await signIn(app, owner.email, PASSWORD, '192.0.2.10')).statusCode, 200, 'the owner is not locked out at home')
})

t.test('each IP has a request budget on /auth routes; health and JWKS are not limited', async (t) => {
  const { app } = await createTestApp(t, { env: { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW: '60' } })
  const get = (url: string, ip = '203.0.113.1') => app.inject({ method: 'GET', url, remoteAddress: ip })
  for (let i = 0; i < 5; i++) t.equal(codeOf(await get('/auth/me')), 'invalid_token')
  const limited = await get('/auth/me')
  t.equal(limited.statusCode, 429)
  t.equal(codeOf(limited), 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0)
  t.equal(codeOf(await get('/auth/me', '203.0.113.2')), 'invalid_token', 'another IP has its own budget')
  for (let i = 0; i < 10; i++) {
    t.equal((await get('/health/live')).statusCode, 200)
    t.equal((await get('/.well-known/jwks.json')).statusCode, 200)
  }
})

t.test('with Redis, limits hold across two instances', async (t) => {
  if (!await requireRedis(t)) return
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const shared = {
    DATABASE_URL: database.url,
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    REDIS_URL,
    REDIS_KEY_PREFIX: `vouch-test-${randomBytes(6).toString('hex')}:`,
    LOG_LEVEL: 'warn',
    LOGIN_MAX_FAILURES: '4',
    RATE_LIMIT_MAX: '40',
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-limits-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const a = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'a') })
  const b = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'b') })
  const email = uniqueEmail('shared')
  t.equal((await call(a.base, '/auth/register', { body: { email, password: PASSWORD } })).status, 201)

  const wrong = { body: { email, password: 'wrong password' } }
  t.equal((await call(a.base, '/auth/login', wrong)).status, 401)
  t.equal((await call(b.base, '/auth/login', wrong)).status, 401)
  t.equal((await call(a.base, '/auth/login', wrong)).status, 401)
  t.equal((await call(b.base, '/auth/login', wrong)).status, 401)
  const limitedOnA = await call(a.base, '/auth/login', { body: { email, password: PASSWORD } })
  t.equal(limitedOnA.status, 429, 'the failures counted on both instances together')
  t.equal(limitedOnA.body.code, 'rate_limited')
  t.ok(Number(limitedOnA.headers.get('retry-after')) > 0)

  // The per-IP budget (40) is shared too: 6 requests were made above.
  const statuses: number[] = []
  for (let i = 0; i < 40; i++) statuses.push((await call(i % 2 ? a.base : b.base, '/auth/me')).status)
  const firstLimited = statuses.indexOf(429)
  t.equal(firstLimited, 40 - 6, `the ${40 - 6 + 1}th request of the shared budget is the first refused, on either instance`)
  t.ok(statuses.slice(firstLimited).every((status) => status === 429))
})
