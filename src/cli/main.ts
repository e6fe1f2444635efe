#!/usr/bin/env node
/**
 * `vouch`, the operator's command line: works directly on DATABASE_URL and
 * the key material (configured as the server is, src/config.ts), so no
 * server needs to run. Every command has --help and --json; exit codes are
 * in src/cli/output.ts (EXIT).
 */
import { Command, CommanderError } from 'commander'
import { registerClients } from './clients.js'
import { createCliContext } from './context.js'
import { registerEvents } from './events.js'
import { registerKeys } from './keys.js'
import { registerMigrate } from './migrate.js'
import { EXIT, report } from './output.js'
import { registerUsers } from './users.js'

const context = createCliContext(process.env)
const program = new Command('vouch')
  .description('vouch administration: migrations, signing keys, users, security events, API clients ' +
    '(configured by the same environment as the server)')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride()

registerMigrate(program, context.config)
registerKeys(program, context)
registerUsers(program, context)
registerEvents(program, context)
registerClients(program, context)

let exitCode: number = EXIT.ok
try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed the help or the problem already.
    exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.ok : EXIT.usage
  } else {
    exitCode = report(err, process.argv.includes('--json'))
  }
} finally {
  await context.close()
}
process.exitCode = exitCode
