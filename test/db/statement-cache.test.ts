/**
 * The SQLite connection keeps its prepared statements (src/db/serialized-sqlite.ts):
 * a query vouch runs again is not compiled again, and reusing a statement
 * never mixes up one call's arguments, results or failures with another's.
 */
import Database from 'better-sqlite3'
import t from 'tap'
import { createDb } from '../../src/db/client.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'

t.test('a repeated query is prepared once, and each call gets its own arguments and results', async (t) => {
  const scratch = await createScratchDatabase('sqlite')
  await applyMigrations(scratch.url)
  const prepared: string[] = []
  const original = Database.prototype.prepare
  Database.prototype.prepare = function (this: Database.Database, sql: string) {
    prepared.push(sql)
    return original.call(this, sql)
  } as typeof original
  const db = createDb(scratch.url)
  t.teardown(async () => {
    Database.prototype.prepare = original
    await db.$disconnect()
    await scratch.drop()
  })

  const alice = await db.user.create({ data: { email: 'alice@example.com', passwordHash: 'a' } })
  const bob = await db.user.create({ data: { email: 'bob@example.com', passwordHash: 'b' } })
  const before = prepared.length
  for (let i = 0; i < 50; i++) {
    const [a, b, none] = await Promise.all([
      db.user.findUnique({ where: { id: alice.id }, select: { email: true } }),
      db.user.findUnique({ where: { id: bob.id }, select: { email: true } }),
      db.user.findUnique({ where: { id: 'nobody' }, select: { email: true } }),
    ])
    t.same([a, b, none], [{ email: 'alice@example.com' }, { email: 'bob@example.com' }, null])
  }
  t.ok(prepared.length - before <= 1, `150 lookups prepared ${prepared.length - before} statement(s)`)

  // A failing use (a unique violation) leaves the statement usable for the next call.
  await t.rejects(db.user.create({ data: { email: 'alice@example.com', passwordHash: 'x' } }))
  const carol = await db.user.create({ data: { email: 'carol@example.com', passwordHash: 'c' } })
  t.equal(carol.email, 'carol@example.com')

  // Transactions (BEGIN/COMMIT/ROLLBACK reuse cached statements too) still commit and roll back.
  await db.$transaction(async (tx) => {
    await tx.user.update({ where: { id: alice.id }, data: { tokenVersion: { increment: 1 } } })
  })
  await t.rejects(db.$transaction(async (tx) => {
    await tx.user.update({ where: { id: bob.id }, data: { tokenVersion: { increment: 1 } } })
    throw new Error('abort')
  }), /abort/)
  const versions = await db.user.findMany({ where: { id: { in: [alice.id, bob.id] } }, select: { email: true, tokenVersion: true }, orderBy: { email: 'asc' } })
  t.same(versions, [{ email: 'alice@example.com', tokenVersion: 1 }, { email: 'bob@example.com', tokenVersion: 0 }])
})
