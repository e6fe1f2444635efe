import { readdir } from 'node:fs/promises'
import t from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { migrationsDirOf } from '../../src/db/schema.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

t.test('vouch migrate applies every migration to a new database, then finds it up to date', async (t) => {
  const scratch = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => scratch.drop())
  const env = { DATABASE_URL: scratch.url }
  const migrations = (await readdir(migrationsDirOf(TEST_PROVIDER), { withFileTypes: true }))
    .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()

  const first = await runCli(['migrate', '--json'], env)
  t.equal(first.code, 0, first.stderr)
  t.same(JSON.parse(first.stdout), { applied: migrations })

  const again = await runCli(['migrate'], env)
  t.equal(again.code, 0, again.stderr)
  t.equal(again.stdout.trim(), 'database is up to date')
})

t.test('vouch migrate with an unusable DATABASE_URL fails with the variable named and exit code 1', async (t) => {
  const run = await runCli(['migrate', '--json'], { DATABASE_URL: 'mysql://nowhere/vouch' })
  t.equal(run.code, 1)
  t.match(run.stderr, /^vouch: DATABASE_URL: /)
  t.equal(JSON.parse(run.stdout).error.code, 'config_invalid')
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace')
})

t.test('vouch --help and vouch migrate --help describe the commands and exit 0; an unknown command exits 2', async (t) => {
  const help = await runCli(['--help'], {})
  t.equal(help.code, 0)
  for (const command of ['migrate', 'keys']) t.match(help.stdout, new RegExp(`\\n  ${command}\\b`))
  const migrateHelp = await runCli(['migrate', '--help'], {})
  t.equal(migrateHelp.code, 0)
  t.match(migrateHelp.stdout, /Usage: vouch migrate/)
  t.match(migrateHelp.stdout, /--json/)

  const unknown = await runCli(['migrat'], {})
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown command 'migrat'/)
  const badOption = await runCli(['migrate', '--jsno'], {})
  t.equal(badOption.code, 2)
  t.match(badOption.stderr, /unknown option '--jsno'/)
})
