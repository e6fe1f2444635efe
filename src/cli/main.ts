#!/usr/bin/env node
/**
 * `vouch`, the operator's command line: works directly on DATABASE_URL and
 * the key material (configured as the server is, src/config.ts), so no
 * server needs to run. Every command has --help and --json; exit codes are
 * in src/cli/output.ts (EXIT).
 */
import { CommanderError } from 'commander'
import { createCliContext } from './context.js'
import { EXIT, report } from './output.js'
import { createProgram } from './program.js'

// --json anywhere on the command line, read here: a usage error stops
// commander before it has parsed the command's own --json.
const json = process.argv.slice(2).includes('--json')
const context = createCliContext(process.env)
const program = createProgram(context, { json })

let exitCode: number = EXIT.ok
try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError && err.exitCode === 0) {
    // Help asked for (--help, `vouch help [command]`): printed on stdout.
    exitCode = EXIT.ok
  } else if (err instanceof CommanderError && !json) {
    // A usage error, which commander has described on stderr (the help, for a missing command).
    exitCode = EXIT.usage
  } else {
    exitCode = report(err, json)
  }
} finally {
  await context.close()
}
process.exitCode = exitCode
