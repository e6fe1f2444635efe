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
 */
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

function serializeConnection (connection: SqlDriverAdapter, maxWaitMs: number): SqlDriverAdapter {
  const lock = new Lock(maxWaitMs)
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
