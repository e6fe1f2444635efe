import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import { serializeSqlite } from './serialized-sqlite.js'

/**
 * The Prisma driver adapter for a database URL. `file:` URLs are the
 * embedded SQLite database; the file's folder must exist.
 */
export function adapterFor (databaseUrl: string): SqlMigrationAwareDriverAdapterFactory {
  if (databaseUrl.startsWith('file:')) {
    return serializeSqlite(new PrismaBetterSqlite3({ url: databaseUrl, timeout: 5000 }))
  }
  throw new TypeError(`unsupported database URL scheme: ${databaseUrl.split(':')[0]}`)
}
