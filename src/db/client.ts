import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { PrismaClient } from './generated/client.js'
import { adapterFor } from './adapter.js'

export type Db = PrismaClient

export function createDb (databaseUrl: string): Db {
  return new PrismaClient({ adapter: adapterFor(databaseUrl) })
}

/** SQLite creates the database file but not its folder. */
export async function ensureDatabaseDir (databaseUrl: string): Promise<void> {
  if (!databaseUrl.startsWith('file:')) return
  const file = databaseUrl.slice('file:'.length)
  if (file !== ':memory:') await mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 })
}
