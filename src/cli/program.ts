/**
 * The `vouch` command tree, built once for a run (main.ts) and walked by the
 * tests, so that a check over "every command" covers the commands there are.
 */
import { Command } from 'commander'
import { registerClients } from './clients.js'
import type { CliContext } from './context.js'
import { registerEvents } from './events.js'
import { registerKeys } from './keys.js'
import { registerMigrate } from './migrate.js'
import { registerUsers } from './users.js'
import { VERSION } from '../version.js'

export interface ProgramOptions {
  /**
   * `--json` is on the command line: a usage error is then reported as every
   * failure is (output.ts `report`, by main.ts), so commander writes none of
   * its own text for it (the message, "add --help", the help shown as an
   * error). Help asked for still goes to stdout.
   */
  json: boolean
}

export function createProgram (context: CliContext, options: ProgramOptions): Command {
  const program = new Command('vouch')
    .description('vouch administration: migrations, signing keys, users, security events, API clients ' +
      '(configured by the same environment as the server)')
    .version(VERSION, '-V, --version', 'print vouch\'s version')
    .showHelpAfterError('(add --help for usage)')
    // Every exit becomes a CommanderError for main.ts to end with. Set before any command is added: each inherits these.
    .exitOverride()
  if (options.json) program.configureOutput({ writeErr: () => {} })

  registerMigrate(program, context.config)
  registerKeys(program, context)
  registerUsers(program, context)
  registerEvents(program, context)
  registerClients(program, context)
  return program
}
