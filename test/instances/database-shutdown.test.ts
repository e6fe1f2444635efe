/**
 * PostgreSQL shutting down under a running instance: the backends are
 * terminated (57P01, what a fast shutdown sends, here in the middle of a
 * request's transaction) and new connections are refused with 57P03 ("the
 * database system is shutting down"), as a real stopping server does. Every
 * request answers 503 service_unavailable, never 500, and the instance
 * recovers by itself when the server is back. Runs on PostgreSQL whatever
 * the suite's database, like database-outage.test.ts: it is about the
 * PostgreSQL driver.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { createDb } from '../../src/db/client.js'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, post, register } from '../helpers/client.js'
import { createPostgresFront } from '../helpers/postgres-front.js'
import { requirePostgres } from '../helpers/services.js'

t.test('a PostgreSQL shutdown in the middle of a transaction answers 503, never 500, and the instance recovers', async (t) => {
  if (!await requirePostgres(t)) return
  const database = await createScratchDatabase('postgresql')
  t.teardown(() => database.drop())
  await applyMigrations(database.url)
  const real = new URL(database.url)
  const front = await createPostgresFront(t, { host: real.hostname, port: Number(real.port || 5432) })
  // A generous statement timeout, so that the blocked UPDATE below can only end by the shutdown.
  const db = createDb(front.urlFor(database.url), { pool: { poolSize: 4, statementTimeout: 60_000, connectTimeout: 2000 } })
  const admin = new pg.Client({ connectionString: database.url })
  await admin.connect()
  t.teardown(async () => { await admin.end(); await db.$disconnect() })
  // No revocation cache: every authenticated request reads the database.
  const { app } = await createTestApp(t, { db, env: { REVOCATION_CACHE_TTL: '0' } })

  const user = await register(app)
  const backends = async () => (await admin.query<{ pid: number, waiting: boolean }>(
    `SELECT pid, wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)).rows

  // Hold the user's row, so that revoke-others' transaction waits on it after its first statement began.
  await admin.query('BEGIN')
  await admin.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [user.user.id])
  const pending = post(app, '/auth/sessions/revoke-others', undefined, bearer(user.accessToken))
  let waiting = false
  for (let i = 0; i < 200 && !waiting; i++) {
    waiting = (await backends()).some((backend) => backend.waiting)
    if (!waiting) await sleep(50)
  }
  t.ok(waiting, 'the request is inside its transaction, waiting for the row')

  // The shutdown: new connections refused (57P03), every backend terminated (57P01).
  front.shutDown()
  for (const { pid } of await backends()) await admin.query('SELECT pg_terminate_backend($1)', [pid])
  const interrupted = await pending
  t.equal(interrupted.statusCode, 503, `the interrupted transaction: ${interrupted.body}`)
  t.equal(interrupted.json().code, 'service_unavailable')
  await admin.query('ROLLBACK')

  const during: Record<string, number[]> = { me: [], login: [], refresh: [], ready: [] }
  for (let i = 0; i < 5; i++) {
    during.me!.push((await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.accessToken) })).statusCode)
    during.login!.push((await post(app, '/auth/login', { email: user.email, password: PASSWORD })).statusCode)
    during.refresh!.push((await post(app, '/auth/refresh', { refreshToken: user.refreshToken })).statusCode)
    during.ready!.push((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode)
  }
  for (const [name, statuses] of Object.entries(during)) {
    t.same([...new Set(statuses)], [503], `${name}: 503 while the server is shutting down`)
  }

  front.restart()
  let recovered = false
  for (let attempt = 0; attempt < 100 && !recovered; attempt++) {
    const res = await app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.accessToken) })
    t.not(res.statusCode, 500, 'never a 500 while recovering')
    recovered = res.statusCode === 200
    if (!recovered) await sleep(50)
  }
  t.ok(recovered, 'authenticated requests succeed again once the server is back, without a restart')
  const retried = await post(app, '/auth/sessions/revoke-others', undefined, bearer(user.accessToken))
  t.equal(retried.statusCode, 200, 'the interrupted request, retried, succeeds: nothing was half-done')
})
