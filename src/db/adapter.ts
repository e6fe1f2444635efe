import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { PrismaPg } from '@prisma/adapter-pg'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import type { Config } from '../config.js'
import { providerOf } from './schema.js'
import { serializeSqlite } from './serialized-sqlite.js'

export type PoolSettings = Config['database']

export const DEFAULT_POOL: PoolSettings = { poolSize: 10, statementTimeout: 5000, connectTimeout: 5000 }

/** The Prisma driver adapter for a database URL: `file:` is SQLite, `postgresql:` PostgreSQL. */
export function adapterFor (databaseUrl: string, pool: PoolSettings = DEFAULT_POOL): SqlMigrationAwareDriverAdapterFactory {
  if (providerOf(databaseUrl) === 'sqlite') {
    return serializeSqlite(new PrismaBetterSqlite3({ url: databaseUrl, timeout: pool.connectTimeout }), pool.connectTimeout)
  }
  return new PrismaPg({
    connectionString: databaseUrl,
    max: pool.poolSize,
    statement_timeout: pool.statementTimeout,
    connectionTimeoutMillis: pool.connectTimeout,
  })
}
