/**
 * isDatabaseUnavailable, on the errors Prisma 7 and @prisma/adapter-pg really
 * produce: each is provoked against a real PostgreSQL (a backend terminated
 * as a shutdown does, a statement timeout, a connection cut mid-transaction)
 * or against a loopback front that answers like a PostgreSQL that is
 * stopping (57P03) or full (53300). Unavailable means 503: the request may
 * succeed later, unchanged. Anything that says the request itself is wrong
 * (a constraint, bad SQL, bad input) is not unavailable, and stays a 500 or
 * its own code.
 */
import { createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import t, { type Test } from 'tap'
import { createDb, type Db } from '../../src/db/client.js'
import { isDatabaseUnavailable, isUniqueViolation } from '../../src/db/errors.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { freePort } from '../helpers/process.js'
import { createPostgresFront, type PostgresFront } from '../helpers/postgres-front.js'
import { requirePostgres } from '../helpers/services.js'

const POOL = { poolSize: 4, statementTimeout: 30_000, connectTimeout: 2000 }

async function failureOf (work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work()
  } catch (err) {
    return err
  }
  throw new Error('expected the database call to fail')
}

/** The SQLSTATE an error carries, wherever Prisma put it (for the assertion messages). */
function sqlState (err: unknown): string | undefined {
  const cause = (err as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta?.driverAdapterError?.cause
  return cause?.originalCode
}

interface Fixture {
  url: string
  front: PostgresFront
  /** A client whose connections go through `front`. */
  db: Db
  admin: pg.Client
  userId: string
}

async function fixture (t: Test, pool = POOL): Promise<Fixture> {
  const database = await createScratchDatabase('postgresql')
  t.teardown(() => database.drop())
  await applyMigrations(database.url)
  const real = new URL(database.url)
  const front = await createPostgresFront(t, { host: real.hostname, port: Number(real.port || 5432) })
  const db = createDb(front.urlFor(database.url), { pool })
  const admin = new pg.Client({ connectionString: database.url })
  await admin.connect()
  t.teardown(async () => {
    await admin.end()
    await db.$disconnect()
  })
  const { id } = await db.user.create({ data: { email: `u${Date.now()}@example.com`, passwordHash: 'x' }, select: { id: true } })
  return { url: database.url, front, db, admin, userId: id }
}

/** The pid of a backend of this database that is waiting on a lock (the admin holds it), within 10 s. */
async function waitingBackend (admin: pg.Client): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`)
    if (rows[0] !== undefined) return rows[0].pid
    await sleep(50)
  }
  throw new Error('no backend started waiting for the lock')
}

/** The pid of a backend of this database running `pg_sleep`, within 10 s. */
async function sleepingBackend (admin: pg.Client): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep%' AND state = 'active'`)
    if (rows[0] !== undefined) return rows[0].pid
    await sleep(50)
  }
  throw new Error('no backend started sleeping')
}

/** Runs `work` while the admin holds the user's row lock, so that its UPDATE waits inside its transaction. */
async function blockedOnUserRow (f: Fixture, work: () => Promise<unknown>, meanwhile: (pid: number) => Promise<void>): Promise<unknown> {
  await f.admin.query('BEGIN')
  await f.admin.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [f.userId])
  try {
    const failure = failureOf(work)
    await meanwhile(await waitingBackend(f.admin))
    return await failure
  } finally {
    await f.admin.query('ROLLBACK')
  }
}

const bumpInTransaction = (db: Db, userId: string) => () => db.$transaction(async (tx) => {
  await tx.user.update({ where: { id: userId }, data: { tokenVersion: { increment: 1 } } })
})

t.test('a backend terminated in the middle of a transaction (57P01 admin_shutdown, as a fast shutdown sends) is unavailable', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t)
  const err = await blockedOnUserRow(f, bumpInTransaction(f.db, f.userId), async (pid) => {
    await f.admin.query('SELECT pg_terminate_backend($1)', [pid])
  })
  t.equal((err as { code?: string }).code, 'P2039', 'Prisma wraps it as P2039')
  t.equal(sqlState(err), '57P01')
  t.ok(isDatabaseUnavailable(err), 'unavailable')

  const raw = failureOf(() => f.db.$queryRaw`SELECT pg_sleep(20)`)
  await f.admin.query('SELECT pg_terminate_backend($1)', [await sleepingBackend(f.admin)])
  const rawErr = await raw
  t.equal((rawErr as { code?: string }).code, 'P2010', 'a raw query wraps it as P2010')
  t.equal(sqlState(rawErr), '57P01')
  t.ok(isDatabaseUnavailable(rawErr), 'unavailable from a raw query too')
})

t.test('a server that is shutting down (57P03 cannot_connect_now) is unavailable, for queries and transactions alike', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t)
  // Every pooled connection goes, as in a shutdown; new ones are refused.
  await f.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
  f.front.shutDown()
  const failures = {
    query: await failureOf(() => f.db.user.findUnique({ where: { id: f.userId } })),
    'raw query': await failureOf(() => f.db.$queryRaw`SELECT 1`),
    transaction: await failureOf(bumpInTransaction(f.db, f.userId)),
  }
  for (const [name, err] of Object.entries(failures)) {
    t.ok(isDatabaseUnavailable(err), `${name}: unavailable (${(err as Error).message.split('\n').at(-1)})`)
  }
  t.ok(Object.values(failures).some((err) => sqlState(err) === '57P03'), 'the server said 57P03')
  f.front.restart()
  t.ok(await f.db.user.findUnique({ where: { id: f.userId } }), 'and the same client works once the server is back')
})

t.test('other refusals at connection time: connection exceptions (class 08), too many connections (53300), idle session timeout (57P05)', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t)
  // A client of its own, with no pooled connection: each query connects anew.
  const db = createDb(f.front.urlFor(f.url), { pool: POOL })
  t.teardown(() => db.$disconnect())
  for (const refusal of [
    { code: '08006', message: 'connection failure' },
    { code: '08P01', message: 'invalid startup packet layout' },
    { code: '53300', message: 'sorry, too many clients already' },
    { code: '57P02', message: 'terminating connection because of crash of another server process' },
    { code: '57P05', message: 'terminating connection due to idle-session timeout' },
  ]) {
    f.front.shutDown(refusal)
    const err = await failureOf(() => db.user.findUnique({ where: { id: f.userId } }))
    t.equal(sqlState(err), refusal.code, `${refusal.code} reaches the classifier`)
    t.ok(isDatabaseUnavailable(err), `${refusal.code}: unavailable`)
  }
})

t.test('a statement cancelled by statement_timeout (57014) is unavailable: the database is too slow right now', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t, { ...POOL, statementTimeout: 300 })
  const err = await blockedOnUserRow(f, () => f.db.user.update({ where: { id: f.userId }, data: { tokenVersion: { increment: 1 } } }), async () => {})
  t.equal(sqlState(err), '57014')
  t.ok(isDatabaseUnavailable(err), 'a model query')
  const raw = await failureOf(() => f.db.$queryRaw`SELECT pg_sleep(5)`)
  t.equal(sqlState(raw), '57014')
  t.ok(isDatabaseUnavailable(raw), 'a raw query')
})

t.test('a connection cut in the middle of a query or a transaction is unavailable', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t)
  const txErr = await blockedOnUserRow(f, bumpInTransaction(f.db, f.userId), async () => { f.front.dropAll() })
  t.ok(isDatabaseUnavailable(txErr), `inside a transaction (${(txErr as Error).message})`)

  const outside = failureOf(() => f.db.$queryRaw`SELECT pg_sleep(20)`)
  await sleepingBackend(f.admin)
  f.front.dropAll()
  const err = await outside
  t.ok(isDatabaseUnavailable(err), `a lone query (${(err as Error).message})`)
})

t.test('a refused connection and a server that never answers are unavailable', async (t) => {
  const nobody = createDb(`postgresql://postgres@127.0.0.1:${await freePort()}/vouch`, { pool: { ...POOL, connectTimeout: 300 } })
  t.teardown(() => nobody.$disconnect())
  t.ok(isDatabaseUnavailable(await failureOf(() => nobody.user.count())), 'ECONNREFUSED')

  // Accepts connections and never says a word.
  const held = new Set<Socket>()
  const silent = createServer((socket) => { held.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const socket of held) socket.destroy()
    silent.close(() => resolve())
  }))
  const hung = createDb(`postgresql://postgres@127.0.0.1:${(silent.address() as { port: number }).port}/vouch`, { pool: { ...POOL, connectTimeout: 300 } })
  t.teardown(() => hung.$disconnect())
  t.ok(isDatabaseUnavailable(await failureOf(() => hung.user.count())), 'connection timeout')
  t.ok(isDatabaseUnavailable(await failureOf(() => hung.$transaction(async (tx) => tx.user.count()))), 'connection timeout starting a transaction')
})

t.test('errors that say the request itself is wrong are not unavailable', async (t) => {
  if (!await requirePostgres(t)) return
  const f = await fixture(t)
  const email = (await f.db.user.findUniqueOrThrow({ where: { id: f.userId } })).email
  const duplicate = await failureOf(() => f.db.user.create({ data: { email, passwordHash: 'x' } }))
  t.ok(isUniqueViolation(duplicate), 'a unique violation is recognised as such')
  t.notOk(isDatabaseUnavailable(duplicate), 'unique violation')
  t.notOk(isDatabaseUnavailable(await failureOf(() => f.db.$queryRawUnsafe('SELEC 1'))), 'a syntax error (42601)')
  t.notOk(isDatabaseUnavailable(await failureOf(() => f.db.$queryRaw`SELECT 'not a uuid'::uuid`)), 'invalid input (22P02)')
  t.notOk(isDatabaseUnavailable(await failureOf(() => f.db.$queryRaw`SELECT 1 / 0`)), 'division by zero (22012)')
  t.notOk(isDatabaseUnavailable(await failureOf(() =>
    f.db.user.update({ where: { id: '00000000-0000-0000-0000-000000000000' }, data: { tokenVersion: 1 } }))), 'record not found (P2025)')
  t.notOk(isDatabaseUnavailable(new Error('boom')), 'a plain bug')
  t.notOk(isDatabaseUnavailable(new TypeError('x is undefined')), 'a TypeError')
  t.notOk(isDatabaseUnavailable(undefined), 'nothing')
})
