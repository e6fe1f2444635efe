/**
 * The two providers cannot drift apart: both schemas come from one model, and
 * each provider's committed migrations, applied to an empty database, give
 * exactly that model (the schema engine finds nothing left to change).
 */
import { readdir } from 'node:fs/promises'
import t from 'tap'
import { applyMigrations, diffAgainstSchema } from '../../src/db/migrate.js'
import { PROVIDERS, migrationsDirOf, schemaFor } from '../../src/db/schema.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { requirePostgres } from '../helpers/services.js'

const migrationNames = async (provider: string) =>
  (await readdir(migrationsDirOf(provider as never), { withFileTypes: true }))
    .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()

t.test('the PostgreSQL schema is the SQLite one with only the provider and client output swapped', async (t) => {
  const sqlite = schemaFor('sqlite').split('\n')
  const postgres = schemaFor('postgresql').split('\n')
  t.equal(postgres.length, sqlite.length)
  const changed = sqlite.flatMap((line, i) => line === postgres[i] ? [] : [[line.trim(), postgres[i]!.trim()]])
  t.same(changed, [
    ['output              = "../src/db/generated/sqlite"', 'output              = "../src/db/generated/postgresql"'],
    ['provider = "sqlite"', 'provider = "postgresql"'],
  ])
})

t.test('every provider has the same migrations, by name', async (t) => {
  const [first, ...others] = await Promise.all(PROVIDERS.map(migrationNames))
  t.ok(first!.length > 0)
  for (const names of others) t.same(names, first)
})

for (const provider of PROVIDERS) {
  t.test(`${provider}: the committed migrations produce exactly the data model`, async (t) => {
    if (provider === 'postgresql' && !await requirePostgres(t)) return
    const scratch = await createScratchDatabase(provider)
    t.teardown(() => scratch.drop())
    t.ok((await applyMigrations(scratch.url)).length > 0, 'migrations applied to an empty database')
    t.same(await applyMigrations(scratch.url), [], 'applying again does nothing')
    const remaining = await diffAgainstSchema(scratch.url)
    t.match(remaining.trim(), /^(-- This is an empty migration\.)?$/, 'nothing left to change')
  })
}
