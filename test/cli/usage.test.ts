import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import t from 'tap'
import { createCliContext } from '../../src/cli/context.js'
import { createProgram } from '../../src/cli/program.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

// No command here reaches a database: each fails or prints help before its action runs, so no environment is given.

interface Node { path: string[], command: Command }

/** Every command of vouch's own tree (as main.ts builds it), as the names that reach it: [] is vouch itself. */
function commandsOf (command: Command, path: string[] = []): Node[] {
  return [{ path, command }, ...command.commands.flatMap((sub) => commandsOf(sub, [...path, sub.name()]))]
}
const tree = commandsOf(createProgram(createCliContext({}), { json: false }))
const usageLine = (path: string[]) => new RegExp(`^Usage: vouch${path.map((name) => ` ${name}`).join('')} `)

t.test('every command of the tree prints its help on stdout and exits 0, with --help and through the help command', async (t) => {
  t.ok(tree.length > 10, `the tree has the commands (${tree.map((node) => node.path.join(' ') || 'vouch').join(', ')})`)
  const helpOf = new Map<Command, string>()
  for (const { path, command } of tree) {
    const run = await runCli([...path, '--help'], {})
    t.equal(run.code, 0, `${path.join(' ')} --help: ${run.stderr}`)
    t.match(run.stdout, usageLine(path))
    t.equal(run.stderr, '')
    helpOf.set(command, run.stdout)
  }
  // `vouch help`, `vouch help users`, `vouch users help`, `vouch users help show`, …: the same help, exit 0.
  for (const { path, command } of tree.filter((node) => node.command.commands.length > 0)) {
    for (const sub of [undefined, ...command.commands]) {
      const args = [...path, 'help', ...sub === undefined ? [] : [sub.name()]]
      const run = await runCli(args, {})
      t.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
      t.equal(run.stdout, helpOf.get(sub ?? command), `${args.join(' ')} prints the help of --help`)
      t.equal(run.stderr, '')
    }
  }
})

t.test('vouch --version and -V print the server package\'s version on stdout and exit 0', async (t) => {
  const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-V']) {
    const run = await runCli([flag], {})
    t.equal(run.code, 0, `${flag}: ${run.stderr}`)
    t.equal(run.stdout, `${version}\n`, flag)
    t.equal(run.stderr, '')
  }
})

t.test('every command that does something takes --json', async (t) => {
  for (const { path, command } of tree.filter((node) => node.command.commands.length === 0)) {
    t.ok(command.options.some((option) => option.long === '--json'), path.join(' '))
  }
})

t.test('help asked for with --json is still help: text on stdout, exit 0', async (t) => {
  for (const args of [['clients', 'add', '--help', '--json'], ['help', 'users', '--json'], ['users', '--help', '--json']]) {
    const run = await runCli(args, {})
    t.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`)
    t.match(run.stdout, /^Usage: vouch /)
  }
})

interface UsageError {
  args: string[]
  /** Where --json may go in args and stay a flag of the command (not the value of an option that takes one). */
  jsonAt: number[]
  /** The code --json reports. */
  code: string
  message: RegExp
}

const usageErrors: UsageError[] = [
  { args: ['clients', 'add', 'x1'], jsonAt: [3, 2], code: 'missing_option', message: /^required option '--kind <kind>' not specified$/ },
  {
    args: ['clients', 'add', 'x1', '--kind', 'superuser'], jsonAt: [5, 3], code: 'invalid_argument',
    message: /^option '--kind <kind>' argument 'superuser' is invalid\. Allowed choices are admin, resource\.$/,
  },
  { args: ['events', 'ada@example.com', '--limit'], jsonAt: [2, 1], code: 'missing_option_value', message: /^option '--limit <n>' argument missing$/ },
  { args: ['migrate', '--jsno'], jsonAt: [2, 1], code: 'unknown_option', message: /^unknown option '--jsno' \(Did you mean --json\?\)$/ },
  { args: ['users', 'show'], jsonAt: [2], code: 'missing_argument', message: /^missing required argument 'email\|id'$/ },
  {
    args: ['users', 'show', 'a@example.com', 'b@example.com'], jsonAt: [4, 2], code: 'excess_arguments',
    message: /^too many arguments for 'show'\. Expected 1 argument but got 2\.$/,
  },
  { args: ['migrat'], jsonAt: [1], code: 'unknown_command', message: /^unknown command 'migrat' \(Did you mean migrate\?\)$/ },
]

t.test('a usage error with --json anywhere prints {"error": {"code", "message"}} on stdout, the message on stderr, and exits 2', async (t) => {
  const cases: Array<[string[], string, RegExp]> = [
    ...usageErrors.flatMap(({ args, jsonAt, code, message }) =>
      jsonAt.map((at): [string[], string, RegExp] => [[...args.slice(0, at), '--json', ...args.slice(at)], code, message])),
    // Commands that group others take no --json of their own; vouch itself neither.
    [['users', '--json'], 'unknown_option', /^unknown option '--json'$/],
    [['--json', 'migrate'], 'unknown_option', /^unknown option '--json'$/],
    // `help` of no such command shows vouch's help as an error.
    [['help', 'nope', '--json'], 'unknown_command', /^no such command: vouch --help lists the commands$/],
  ]
  for (const [args, code, message] of cases) {
    const run = await runCli(args, {})
    const name = args.join(' ')
    t.equal(run.code, 2, name)
    const printed = JSON.parse(run.stdout || 'null')
    t.same(printed, { error: { code, message: printed?.error?.message } }, `${name}: one JSON object, the shape of every failure`)
    t.match(printed?.error?.message, message, name)
    t.equal(run.stderr, `vouch: ${printed?.error?.message}\n`, `${name}: stderr has the message, as for every failure`)
  }
})

t.test("a usage error without --json prints commander's text on stderr, nothing on stdout, and exits 2", async (t) => {
  for (const { args, message } of usageErrors) {
    const run = await runCli(args, {})
    t.equal(run.code, 2, args.join(' '))
    t.equal(run.stdout, '')
    const [first, ...more] = run.stderr.split('\n')
    t.match(first, /^error: /, args.join(' '))
    t.match(`${first!.slice('error: '.length)}${more.slice(0, -2).map((line) => ` ${line}`).join('')}`, message)
    t.equal(more.at(-2), '(add --help for usage)')
  }
  // Without a command (or of a group, without one of its commands) the help is the answer, on stderr.
  for (const args of [[], ['users'], ['help', 'nope']]) {
    const run = await runCli(args, {})
    t.equal(run.code, 2, args.join(' ') || 'vouch')
    t.equal(run.stdout, '')
    t.match(run.stderr, /^Usage: vouch /)
  }
})
