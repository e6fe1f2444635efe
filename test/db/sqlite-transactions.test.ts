/**
 * The embedded SQLite database has one connection. A statement issued by
 * another request while a transaction is open must not run inside that
 * transaction: if the transaction rolls back, the other request's write
 * (already reported as done) would silently vanish with it. And no statement
 * waits for that connection without bound (the revocation feed counts on it).
 * Several processes share one file (the cluster's workers): a transaction that
 * reads before it writes must not fail because another process wrote between.
 */
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { DEFAULT_POOL } from '../../src/db/adapter.js'
import { createDb, prepareDatabase } from '../../src/db/client.js'
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

/**
 * Another process's write to the file, in a child (better-sqlite3, as the
 * server's adapter uses it, waiting up to 5 s for the lock). Resolves once
 * the child has started; `done` resolves with its exit code once it wrote.
 */
async function writeFromAnotherProcess (file: string, sql: string): Promise<{ done: Promise<number | null> }> {
  const script = `const db = new (require('better-sqlite3'))(${JSON.stringify(file)}, { timeout: 5000 }); process.stdout.write('open\\n'); db.prepare(${JSON.stringify(sql)}).run(); db.close()`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const done = new Promise<number | null>((resolve) => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`the writing process exited (${code}) before it opened the file`)))
  })
  return { done }
}

t.test('a transaction that reads, then writes, commits though another process wrote to the file in between (cluster workers on SQLite)', async (t) => {
  const scratch = await createScratchDatabase('sqlite')
  t.teardown(() => scratch.drop())
  await prepareDatabase(scratch.url) // write-ahead logging, as every start sets it
  await applyMigrations(scratch.url)
  const db = createDb(scratch.url)
  t.teardown(() => db.$disconnect())
  const [mine, theirs] = await Promise.all(['mine@example.com', 'theirs@example.com'].map((email) => db.user.create({ data: { email, passwordHash: 'x' } })))

  let other: Promise<number | null> | undefined
  const committed = db.$transaction(async (tx) => {
    // Read first (as a password reset reads its request), so this transaction has its snapshot ...
    const before = await tx.user.findUniqueOrThrow({ where: { id: mine!.id } })
    // ... then another worker writes another row of the file ...
    const { done } = await writeFromAnotherProcess(scratch.url.slice('file:'.length),
      `UPDATE users SET tokenVersion = tokenVersion + 1 WHERE id = '${theirs!.id}'`)
    other = done
    await Promise.race([done, sleep(300)])
    // ... and this transaction writes: with a plain BEGIN its snapshot is stale and SQLite refuses (SQLITE_BUSY_SNAPSHOT).
    return tx.user.update({ where: { id: mine!.id }, data: { tokenVersion: before.tokenVersion + 1 } })
  }).then(() => 'committed', (err: unknown) => `failed: ${String(err)}`)

  t.equal(await committed, 'committed')
  t.equal(await other, 0, "the other process's write went through too (after this transaction)")
  const versions = await db.user.findMany({ select: { email: true, tokenVersion: true }, orderBy: { email: 'asc' } })
  t.same(versions, [{ email: 'mine@example.com', tokenVersion: 1 }, { email: 'theirs@example.com', tokenVersion: 1 }], 'both writes are kept')
})
