import { mkdir } from 'node:fs/promises'
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
  const adapter = adapterFor(databaseUrl, options.pool ?? DEFAULT_POOL)
  const log = options.onQuery ? [{ emit: 'event' as const, level: 'query' as const }] : []
  const client = providerOf(databaseUrl) === 'sqlite'
    ? new PrismaClient({ adapter, log })
    : new PostgresPrismaClient({ adapter, log }) as unknown as PrismaClient
  if (options.onQuery) {
    const onQuery = options.onQuery
    ;(client as PrismaClient<'query'>).$on('query', (event) => onQuery(event.query))
  }
  return client
}

/** SQLite creates the database file but not its folder. */
export async function ensureDatabaseDir (databaseUrl: string): Promise<void> {
  if (providerOf(databaseUrl) !== 'sqlite') return
  const file = databaseUrl.slice('file:'.length)
  if (file !== ':memory:') await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 })
}
