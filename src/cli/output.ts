/**
 * What every `vouch` command shares: its exit codes, how a result is printed
 * (text for people, `--json` for scripts: one JSON document on stdout), and
 * how a failure is reported (one line on stderr, never a stack trace or a
 * secret; with `--json` the same as `{"error": {"code", "message"}}` on
 * stdout too, so that a script can branch on the code). A usage error that
 * commander finds is such a failure too when `--json` is on the command line
 * (main.ts); without it commander's own text stays.
 */
import { CommanderError } from 'commander'
import { ConfigError } from '../config.js'
import { DomainError } from '../errors.js'

/**
 * The exit codes, part of the CLI's contract (README, "Command line"):
 * a script may branch on them.
 */
export const EXIT = Object.freeze({
  ok: 0,
  /** Anything that went wrong at run time: configuration, database, key file. */
  failure: 1,
  /** The command line itself is wrong: unknown command or option, missing argument, missing --yes. */
  usage: 2,
  /** The user named by <email|id> does not exist (or its account was deleted). */
  unknownUser: 3,
  /** The API client named by <id> is not stored (`vouch clients remove`): the same code, "no such thing". */
  unknownClient: 3,
})

/** A failure the CLI reports as it is: `code` names it in --json output, `exitCode` ends the process. */
export class CliError extends Error {
  override name = 'CliError'
  constructor (readonly code: string, message: string, readonly exitCode: number = EXIT.failure) {
    super(message)
  }
}

export interface OutputOptions {
  json?: boolean
}

/** Prints a command's result: `text()` for people, `value` as JSON with --json. */
export function print (options: OutputOptions, value: unknown, text: () => string): void {
  process.stdout.write(options.json === true ? JSON.stringify(value, null, 2) + '\n' : text() + '\n')
}

/** Reports `err` and returns the exit code to end with. */
export function report (err: unknown, json: boolean): number {
  const failure = describe(err)
  if (json) process.stdout.write(JSON.stringify({ error: { code: failure.code, message: failure.message } }, null, 2) + '\n')
  process.stderr.write(`vouch: ${failure.message}\n`)
  return failure.exitCode
}

/**
 * The code of a usage error in --json output, by commander's code (its
 * message says the rest). Anything else commander refuses is `usage`.
 */
const USAGE_CODES: Readonly<Record<string, string>> = {
  'commander.unknownCommand': 'unknown_command',
  'commander.unknownOption': 'unknown_option',
  'commander.missingArgument': 'missing_argument',
  'commander.excessArguments': 'excess_arguments',
  'commander.missingMandatoryOptionValue': 'missing_option',
  'commander.optionMissingArgument': 'missing_option_value',
  'commander.invalidArgument': 'invalid_argument',
  'commander.conflictingOption': 'conflicting_option',
  // The help shown as the error, for `vouch help <no such command>`.
  'commander.help': 'unknown_command',
}

function describe (err: unknown): { code: string, message: string, exitCode: number } {
  if (err instanceof CliError) return { code: err.code, message: err.message, exitCode: err.exitCode }
  if (err instanceof CommanderError) {
    // Commander's words without its "error: ", on one line (a suggestion follows on a line of its own);
    // the help shown as an error has none of its own.
    const message = err.code === 'commander.help'
      ? 'no such command: vouch --help lists the commands'
      : err.message.replace(/^error: /, '').replaceAll('\n', ' ')
    return { code: USAGE_CODES[err.code] ?? 'usage', message, exitCode: EXIT.usage }
  }
  if (err instanceof ConfigError) return { code: 'config_invalid', message: err.message, exitCode: EXIT.failure }
  if (err instanceof DomainError) {
    return { code: err.code, message: err.message, exitCode: err.code === 'validation_failed' ? EXIT.usage : EXIT.failure }
  }
  // Database and file-system errors: their message says what failed (a
  // connection refused, a missing folder) without carrying a secret; the
  // stack is for a debugger, not for the operator.
  const message = err instanceof Error ? err.message.trim().split('\n').at(-1) ?? err.name : String(err)
  return { code: 'failed', message, exitCode: EXIT.failure }
}
