import { mkdir } from 'node:fs/promises'
import Database from 'better-sqlite3'
import path from 'node:path'
import { PrismaClient } from './generated/sqlite/client.js'
import { PrismaClient as PostgresPrismaClient } from './generated/postgresql/client.js'
import { adapterFor, DEFAULT_POOL, type PoolSettings } from './adapter.js'
import { providerOf } from './schema.js'

/**
 * The database client. Both providers' clients are generated from one model
 * (src/db/schema.ts), so they have the same API; the SQLite one names it.
 */
export type Db = PrismaClient

export interface DbOptions {
  pool?: PoolSettings
  /** Called with every SQL statement sent (tests count them). */
  onQuery?: (sql: string) => void
}

export function createDb (databaseUrl: string, options: DbOptions = {}): Db {
  const pool = options.pool ?? DEFAULT_POOL
  const adapter = adapterFor(databaseUrl, pool)
  const log = options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : []
  // A transaction waits for its connection and runs no longer than a statement
  // may: the bound the revocation feed's overlap is derived from.
  const transactionOptions = { maxWait: pool.connectTimeout, timeout: pool.statementTimeout }
  const client = providerOf(databaseUrl) === 'sqlite'
    ? new PrismaClient({ adapter, log, transactionOptions })
    : new PostgresPrismaClient({ adapter, log, transactionOptions }) as unknown as PrismaClient
  if (options.onQuery) {
    const onQuery = options.onQuery
    ;(client as PrismaClient<'query'>).$on('query', (event) => onQuery(event.query))
  }
  return client
}

/**
 * Readies an embedded SQLite database: creates its folder (SQLite creates
 * the file, not the folder) and switches it to write-ahead logging, so that
 * several worker processes can share it (readers never wait for the writer).
 * The setting lives in the file. Nothing to do for PostgreSQL.
 */
export async function prepareDatabase (databaseUrl: string): Promise<void> {
  if (providerOf(databaseUrl) !== 'sqlite') return
  const file = databaseUrl.slice('file:'.length)
  if (file === ':memory:') return
  await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 })
  const sqlite = new Database(file)
  try {
    sqlite.pragma('journal_mode = WAL')
  } finally {
    sqlite.close()
  }
}
