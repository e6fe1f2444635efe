// `npm run db:migrate`: applies pending migrations to DATABASE_URL.
import { loadConfig } from '../config.js'
import { prepareDatabase } from './client.js'
import { applyMigrations } from './migrate.js'

const config = loadConfig(process.env)
await prepareDatabase(config.databaseUrl)
const applied = await applyMigrations(config.databaseUrl)
console.log(applied.length === 0 ? 'database is up to date' : `applied: ${applied.join(', ')}`)
