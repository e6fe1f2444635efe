/**
 * What a command runs on, made on first use and closed once at the end: the
 * configuration (loadConfig(process.env), so `--help` works without any) and
 * one database client on DATABASE_URL.
 */
import { loadConfig, type Config } from '../config.js'
import { createDb, type Db } from '../db/client.js'

export interface CliContext {
  config (): Config
  db (): Db
  close (): Promise<void>
}

export function createCliContext (env: NodeJS.ProcessEnv): CliContext {
  let config: Config | undefined
  let db: Db | undefined
  const context: CliContext = {
    config: () => (config ??= loadConfig(env)),
    db: () => (db ??= createDb(context.config().databaseUrl, { pool: { ...context.config().database, poolSize: 2 } })),
    async close () { await db?.$disconnect() },
  }
  return context
}
