/**
 * Throw-away databases, for the tests, the benchmarks and the migration
 * differ: a SQLite file in a temp folder, or a fresh database on a
 * PostgreSQL server (created from its maintenance database, dropped after).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import pg from 'pg'
import type { Provider } from './schema.js'

export interface ScratchDatabase {
  url: string
  /** Drops the database (or deletes the folder). */
  drop (): Promise<void>
}

/** The server throw-away PostgreSQL databases are made on. */
export const DEFAULT_POSTGRES_ADMIN_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'

export async function createScratchDatabase (provider: Provider, adminUrl = DEFAULT_POSTGRES_ADMIN_URL): Promise<ScratchDatabase> {
  if (provider === 'sqlite') {
    const dir = await mkdtemp(path.join(tmpdir(), 'vouch-db-'))
    return { url: `file:${path.join(dir, 'vouch.db')}`, drop: () => rm(dir, { recursive: true, force: true }) }
  }
  const name = `vouch_scratch_${process.pid}_${randomBytes(4).toString('hex')}`
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  }
}

async function withAdmin<T> (adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}
