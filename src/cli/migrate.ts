/**
 * `vouch migrate`: applies the pending migrations of prisma/migrations to
 * DATABASE_URL, as every start does (src/start.ts); idempotent. For a
 * deployment that migrates in a step of its own before the servers start.
 */
import type { Command } from 'commander'
import type { Config } from '../config.js'
import { prepareDatabase } from '../db/client.js'
import { applyMigrations } from '../db/migrate.js'
import { print, type OutputOptions } from './output.js'

export function registerMigrate (program: Command, config: () => Config): void {
  program.command('migrate')
    .description('apply pending database migrations to DATABASE_URL (idempotent)')
    .option('--json', 'print {"applied": [names]} as JSON')
    .action(async (options: OutputOptions) => {
      const { databaseUrl } = config()
      await prepareDatabase(databaseUrl)
      const applied = await applyMigrations(databaseUrl)
      print(options, { applied }, () => applied.length === 0 ? 'database is up to date' : `applied: ${applied.join(', ')}`)
    })
}
