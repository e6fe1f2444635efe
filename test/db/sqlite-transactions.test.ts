/**
 * The embedded SQLite database has one connection. A statement issued by
 * another request while a transaction is open must not run inside that
 * transaction: if the transaction rolls back, the other request's write
 * (already reported as done) would silently vanish with it. And no statement
 * waits for that connection without bound (the revocation feed counts on it).
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DEFAULT_POOL } from '../../src/db/adapter.js'
import { createDb } from '../../src/db/client.js'
import { isDatabaseUnavailable } from '../../src/db/errors.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { createTestDatabase } from '../helpers/app.js'

t.test("a write made while another request's transaction is open survives that transaction's rollback", async (t) => {
  const { db } = await createTestDatabase(t)
  const other = await db.user.create({ data: { email: 'other@example.com', passwordHash: 'x' } })
  const rolledBack = db.$transaction(async (tx) => {
    await tx.user.create({ data: { email: 'inside@example.com', passwordHash: 'x' } })
    await sleep(50)
    throw new Error('abort')
  })
  await sleep(10)
  const created = db.user.create({ data: { email: 'outside@example.com', passwordHash: 'x' } })
  const bumped = db.user.updateMany({ where: { id: other.id }, data: { tokenVersion: { increment: 1 } } })

  await t.rejects(rolledBack, /abort/)
  await Promise.all([created, bumped])
  t.equal(await db.user.count({ where: { email: 'inside@example.com' } }), 0, 'the transaction rolled back')
  t.equal(await db.user.count({ where: { email: 'outside@example.com' } }), 1, 'the other insert is kept')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: other.id } })).tokenVersion, 1, 'the other update is kept')
})

t.test('a read made while a transaction is open does not see its uncommitted writes', async (t) => {
  const { db } = await createTestDatabase(t)
  let seen = -1
  const tx = db.$transaction(async (tx) => {
    await tx.user.create({ data: { email: 'pending@example.com', passwordHash: 'x' } })
    await sleep(50)
    throw new Error('abort')
  })
  await sleep(10)
  const read = db.user.count().then((count) => { seen = count })
  await t.rejects(tx)
  await read
  t.equal(seen, 0)
})

t.test('a statement waits for the one SQLite connection no longer than DB_CONNECT_TIMEOUT_MS, then fails as unavailable and never runs', async (t) => {
  const scratch = await createScratchDatabase('sqlite')
  t.teardown(() => scratch.drop())
  await applyMigrations(scratch.url)
  const db = createDb(scratch.url, { pool: { ...DEFAULT_POOL, connectTimeout: 200 } })
  t.teardown(() => db.$disconnect())
  const user = await db.user.create({ data: { email: 'waiting@example.com', passwordHash: 'x' } })
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const transaction = db.$transaction(async (tx) => {
    await tx.user.count()
    await held
  })
  await sleep(20)
  const started = performance.now()
  const error = await db.user.updateMany({ where: { id: user.id }, data: { tokenVersion: { increment: 1 } } }).then(() => undefined, (err: unknown) => err)
  const waited = performance.now() - started
  release()
  await transaction
  t.ok(isDatabaseUnavailable(error), `a timeout the HTTP layer answers with 503 (${String(error)})`)
  t.ok(waited < 2000, `gave up after ${waited.toFixed(0)} ms (bound 200 ms)`)
  await sleep(50)
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.id } })).tokenVersion, 0, 'the statement that gave up never ran')
})
