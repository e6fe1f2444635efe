/**
 * One SQLite connection serves every request, and SQLite transactions belong
 * to the connection. Prisma's better-sqlite3 adapter serialises transactions
 * among themselves but not against plain statements, so a statement from
 * another request could run *inside* an open transaction: it would see
 * uncommitted writes, and its own write would vanish if that transaction
 * rolled back. This wrapper puts every top-level statement and every whole
 * transaction (BEGIN to COMMIT/ROLLBACK) behind one lock, so each runs alone.
 *
 * No statement waits for the lock longer than `maxWaitMs` (DB_CONNECT_TIMEOUT_MS,
 * as PostgreSQL waits for a pool connection): past it, it fails as a timeout
 * (503) and never runs. The revocation feed relies on that bound: a write's
 * timestamp never precedes its commit by more than the database's waits.
 *
 * Its transactions begin IMMEDIATE, taking the file's write lock at BEGIN
 * (waiting for it as any write does, up to the connection's timeout): with
 * several processes on one file (cluster workers), a transaction that read
 * before it wrote would otherwise fail when another process had written in
 * between (SQLITE_BUSY_SNAPSHOT), since its snapshot could no longer be
 * written from. Within one process the lock already runs transactions one at
 * a time, so this costs nothing there.
 *
 * It also keeps the connection's prepared statements: the adapter prepares
 * every query afresh (`prepare(sql).bind(args)`), which cost more than
 * running it; here the statements vouch runs over and over are compiled once
 * (see cacheStatements).
 */
import type { Database, Statement } from 'better-sqlite3'
import {
  DriverAdapterError,
  type SqlDriverAdapter, type SqlMigrationAwareDriverAdapterFactory, type SqlQuery, type Transaction,
} from '@prisma/driver-adapter-utils'

/**
 * A FIFO lock: `acquire` resolves with the function that releases it, or
 * rejects after `maxWaitMs` (and then gives its turn away unused).
 */
class Lock {
  #tail: Promise<void> = Promise.resolve()

  constructor (private readonly maxWaitMs: number) {}

  acquire (): Promise<() => void> {
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    const turn = this.#tail
    this.#tail = this.#tail.then(() => released)
    return new Promise((resolve, reject) => {
      let waiting = true
      const timer = setTimeout(() => {
        waiting = false
        reject(new DriverAdapterError({ kind: 'SocketTimeout' }))
      }, this.maxWaitMs)
      void turn.then(() => {
        clearTimeout(timer)
        if (waiting) resolve(release)
        else release()
      })
    })
  }

  async run<T> (work: () => Promise<T>): Promise<T> {
    const release = await this.acquire()
    try {
      return await work()
    } finally {
      release()
    }
  }
}

/** Distinct SQL texts kept prepared per connection (vouch runs a few dozen; Prisma's texts are parameterised). */
export const STATEMENT_CACHE_SIZE = 256

/** What the adapter does with a prepared statement (index.mjs of @prisma/adapter-better-sqlite3). */
interface StatementUse {
  readonly reader: boolean
  bind (args: unknown[]): StatementUse
  columns (): ReturnType<Statement['columns']>
  raw (): { all (): unknown[] }
  run (): ReturnType<Statement['run']>
}

/**
 * A use of a cached statement with its own arguments. better-sqlite3's
 * `bind` fixes a statement's arguments for good, so the cached statement is
 * never bound: the arguments are passed to each `run`/`all` instead. All of
 * this runs synchronously under the connection's lock, one use at a time.
 */
function use (statement: Statement, args: unknown[] = []): StatementUse {
  return {
    reader: statement.reader,
    bind: (bound) => use(statement, bound),
    columns: () => statement.columns(),
    raw: () => ({ all: () => statement.raw(true).all(...args) }),
    run: () => statement.run(...args),
  }
}

/**
 * Makes `database.prepare` answer from a least-recently-used cache of
 * compiled statements (SQLite recompiles a cached statement by itself if the
 * schema changes under it). Only the adapter uses this connection.
 */
function cacheStatements (database: Database): void {
  const prepare = database.prepare.bind(database)
  const statements = new Map<string, Statement>()
  const cached = (sql: string): StatementUse => {
    let statement = statements.get(sql)
    if (statement === undefined) {
      statement = prepare(sql)
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value as string)
    } else {
      statements.delete(sql)
    }
    statements.set(sql, statement)
    return use(statement)
  }
  database.prepare = cached as unknown as Database['prepare']
}

/** The adapter begins every transaction with a plain BEGIN (index.mjs, startTransaction): made BEGIN IMMEDIATE here. */
function beginImmediate (database: Database): void {
  const prepare = database.prepare.bind(database)
  database.prepare = ((sql: string) => prepare(sql === 'BEGIN' ? 'BEGIN IMMEDIATE' : sql)) as Database['prepare']
}

/** The better-sqlite3 connection inside Prisma's adapter (its `client`), if it is where 7.x keeps it. */
function databaseOf (connection: SqlDriverAdapter): Database | undefined {
  const client = (connection as { client?: Partial<Database> }).client
  return typeof client?.prepare === 'function' && typeof client.exec === 'function' ? client as Database : undefined
}

function serializeConnection (connection: SqlDriverAdapter, maxWaitMs: number): SqlDriverAdapter {
  const lock = new Lock(maxWaitMs)
  const database = databaseOf(connection)
  if (database !== undefined) {
    cacheStatements(database)
    beginImmediate(database)
  }
  const wrapTransaction = (tx: Transaction, release: () => void): Transaction => {
    let open = true
    const end = async (finish: () => Promise<void>) => {
      try {
        await finish()
      } finally {
        if (open) { open = false; release() }
      }
    }
    return Object.assign(Object.create(tx) as Transaction, {
      queryRaw: (query: SqlQuery) => tx.queryRaw(query),
      executeRaw: (query: SqlQuery) => tx.executeRaw(query),
      commit: () => end(() => tx.commit()),
      rollback: () => end(() => tx.rollback()),
    })
  }
  return Object.assign(Object.create(connection) as SqlDriverAdapter, {
    queryRaw: (query: SqlQuery) => lock.run(() => connection.queryRaw(query)),
    executeRaw: (query: SqlQuery) => lock.run(() => connection.executeRaw(query)),
    executeScript: (script: string) => lock.run(() => connection.executeScript(script)),
    async startTransaction (...args: Parameters<SqlDriverAdapter['startTransaction']>) {
      const release = await lock.acquire()
      try {
        return wrapTransaction(await connection.startTransaction(...args), release)
      } catch (err) {
        release()
        throw err
      }
    },
    dispose: () => connection.dispose(),
  })
}

export function serializeSqlite (factory: SqlMigrationAwareDriverAdapterFactory, maxWaitMs: number): SqlMigrationAwareDriverAdapterFactory {
  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => serializeConnection(await factory.connect(), maxWaitMs),
    connectToShadowDb: async () => serializeConnection(await factory.connectToShadowDb(), maxWaitMs),
  }
}
