/**
 * `vouch users show|disable|enable|revoke-sessions|delete <email|id>`: a
 * user's account, acted on directly in DATABASE_URL through the domain's
 * administration service (domain/administration.ts) on the CLI's authority,
 * with the invariants of the HTTP flows and the same security events
 * (actor `cli`).
 *
 * - revoke-sessions is the O(1) sign-out-everywhere of logout-all (one
 *   UPDATE bumping tokenVersion, whatever the number of sessions).
 * - disable sets disabledAt and bumps the version in the same UPDATE: every
 *   token dies at once and sign-in is refused until `enable`, which revives
 *   no token. Disabling a disabled account (or enabling an enabled one)
 *   changes nothing and records nothing.
 * - delete is the erasure of DELETE /auth/account without the password (the
 *   operator has the database anyway): the one home of erasure,
 *   domain/accounts.ts `eraseAccount` (which says why a row stays).
 *
 * Running servers hear of a bump through src/cli/announce.ts at once
 * (Redis, PostgreSQL NOTIFY); without a bus (SQLite) within
 * REVOCATION_CACHE_TTL at each server and the revocation feed's next poll at
 * resource servers. A deleted account is an unknown user to every command.
 */
import type { Command } from 'commander'
import { deletedEmail } from '../domain/accounts.js'
import { CLI } from '../domain/security-events.js'
import { normalizeEmail } from '../domain/email.js'
import { activeSessionsOf } from '../domain/session-kit.js'
import { DomainError } from '../errors.js'
import { createAnnouncer } from './announce.js'
import type { CliContext } from './context.js'
import { announce, domainOf } from './domain.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'

export interface UserSummary {
  id: string
  email: string
  createdAt: string
  /** When the account was disabled; null while it is enabled. */
  disabledAt: string | null
  tokenVersion: number
  activeSessions: number
}

export interface Found { id: string, email: string, createdAt: Date, disabledAt: Date | null, tokenVersion: number }

const unknownUser = (emailOrId: string) => new CliError('unknown_user', `no user ${emailOrId}`, EXIT.unknownUser)

/** How a command's <email|id> names its user: an email is anything with an "@", the rest is a user id. */
export const namesEmail = (emailOrId: string): boolean => emailOrId.includes('@')

/** The user named by an email or an id (namesEmail); unknown users (and deleted accounts) exit with EXIT.unknownUser. */
export async function findUser (context: CliContext, emailOrId: string): Promise<Found> {
  const where = namesEmail(emailOrId) ? { email: normalizeEmail(emailOrId) } : { id: emailOrId }
  const user = await context.db().user.findUnique({
    where, select: { id: true, email: true, createdAt: true, disabledAt: true, tokenVersion: true },
  })
  if (user === null || user.email === deletedEmail(user.id)) throw unknownUser(emailOrId)
  return user
}

/** `action` on a found user; the account deleted meanwhile (the domain's not_found) is the unknown user it now is. */
export async function onUser<T> (emailOrId: string, action: Promise<T>): Promise<T> {
  try {
    return await action
  } catch (err) {
    if (err instanceof DomainError && err.code === 'not_found') throw unknownUser(emailOrId)
    throw err
  }
}

/** Sessions whose tokens still work: the ones GET /auth/sessions lists (the one query, domain/session-kit.ts). */
async function activeSessions (context: CliContext, user: Found): Promise<number> {
  const idleMs = context.config().sessions.idleTimeout * 1000
  return context.db().session.count({ where: activeSessionsOf(user.id, user.tokenVersion, new Date(), idleMs) })
}

const summaryText = (user: UserSummary) => [
  `id              ${user.id}`,
  `email           ${user.email}`,
  `createdAt       ${user.createdAt}`,
  `disabledAt      ${user.disabledAt ?? '-'}`,
  `tokenVersion    ${user.tokenVersion}`,
  `activeSessions  ${user.activeSessions}`,
].join('\n')

/** What `users disable` and `users enable` print: the account's state after the command. */
export interface AccessChange {
  id: string
  email: string
  /** Null once enabled. */
  disabledAt: string | null
  tokenVersion: number
  /** False when the account already was in that state: nothing changed and nothing was recorded. */
  changed: boolean
  announced: 'redis' | 'postgres' | 'none'
}

const accessChangeText = (change: AccessChange, action: 'disable' | 'enable') => {
  if (!change.changed) {
    return action === 'disable'
      ? `${change.email} was already disabled (disabledAt ${change.disabledAt}); nothing changed`
      : `${change.email} is not disabled; nothing changed`
  }
  return action === 'disable'
    ? `disabled ${change.email} (disabledAt ${change.disabledAt}; tokenVersion ${change.tokenVersion}: every session ended; ` +
      `sign-in refused until enabled; servers told: ${change.announced})`
    : `enabled ${change.email}: it can sign in again (its old sessions stay ended)`
}

export function registerUsers (program: Command, context: CliContext): void {
  const users = program.command('users').description("look up, disable or enable a user, end a user's sessions, delete an account")
  const userArgument = ['<email|id>', 'the user: an email (anything with "@") or a user id'] as const

  users.command('show')
    .description('show a user: id, email, createdAt, disabledAt, tokenVersion and the number of active sessions')
    .argument(...userArgument)
    .option('--json', 'print the user as JSON')
    .action(async (emailOrId: string, options: OutputOptions) => {
      const user = await findUser(context, emailOrId)
      const summary: UserSummary = {
        id: user.id, email: user.email, createdAt: user.createdAt.toISOString(),
        disabledAt: user.disabledAt?.toISOString() ?? null, tokenVersion: user.tokenVersion,
        activeSessions: await activeSessions(context, user),
      }
      print(options, summary, () => summaryText(summary))
    })

  for (const action of ['disable', 'enable'] as const) {
    users.command(action)
      .description(action === 'disable'
        ? 'disable an account: every access and refresh token dies at once (one tokenVersion bump) and sign-in and password ' +
          'reset are refused until it is enabled; running servers are told over Redis or PostgreSQL NOTIFY, ' +
          'else see it within REVOCATION_CACHE_TTL. Disabling a disabled account changes nothing'
        : 'enable a disabled account: the user can sign in again; no token it had revives. Enabling an enabled account changes nothing')
      .argument(...userArgument)
      .option('--json', 'print the new state as JSON')
      .action(async (emailOrId: string, options: OutputOptions) => {
        const before = await findUser(context, emailOrId)
        const announcer = createAnnouncer(context.config())
        await onUser(emailOrId, (await domainOf(context, announcer)).administration[action](before.id, { actor: CLI }))
        const after = await context.db().user.findUniqueOrThrow({ where: { id: before.id }, select: { disabledAt: true, tokenVersion: true } })
        const change: AccessChange = {
          id: before.id,
          email: before.email,
          disabledAt: after.disabledAt?.toISOString() ?? null,
          tokenVersion: after.tokenVersion,
          changed: (before.disabledAt === null) !== (after.disabledAt === null),
          announced: await announce(announcer),
        }
        print(options, change, () => accessChangeText(change, action))
      })
  }

  users.command('revoke-sessions')
    .description("end every session of a user at once (one tokenVersion bump, as logout-all): each access and refresh token dies; " +
      'running servers are told over Redis or PostgreSQL NOTIFY, else see it within REVOCATION_CACHE_TTL')
    .argument(...userArgument)
    .option('--json', 'print the result as JSON')
    .action(async (emailOrId: string, options: OutputOptions) => {
      const user = await findUser(context, emailOrId)
      const sessions = await activeSessions(context, user)
      const announcer = createAnnouncer(context.config())
      await onUser(emailOrId, (await domainOf(context, announcer)).administration.revokeSessions(user.id, { actor: CLI }))
      const after = await context.db().user.findUniqueOrThrow({ where: { id: user.id }, select: { tokenVersion: true } })
      const result = { id: user.id, tokenVersion: after.tokenVersion, revokedSessions: sessions, announced: await announce(announcer) }
      print(options, result, () => `revoked ${sessions} active session(s) of ${user.email} (tokenVersion ${after.tokenVersion}; servers told: ${result.announced})`)
    })

  users.command('delete')
    .description('delete an account as DELETE /auth/account does, without the password: every token dies at once, ' +
      'the sessions and the email are erased; the user id stays as a tombstone')
    .argument(...userArgument)
    .option('--yes', 'confirm the deletion (required: it cannot be undone)')
    .option('--json', 'print the result as JSON')
    .action(async (emailOrId: string, options: OutputOptions & { yes?: boolean }) => {
      if (options.yes !== true) {
        throw new CliError('confirmation_required', `deleting ${emailOrId} cannot be undone: add --yes to confirm`, EXIT.usage)
      }
      const user = await findUser(context, emailOrId)
      const announcer = createAnnouncer(context.config())
      const domain = await domainOf(context, announcer)
      // The one home of deletion (domain/accounts.ts eraseAccount, through domain/administration.ts), as DELETE /auth/account.
      await onUser(emailOrId, domain.administration.delete(user.id, { actor: CLI }))
      const result = { id: user.id, deleted: true, announced: await announce(announcer) }
      print(options, result, () => `deleted ${user.email} (${user.id}; servers told: ${result.announced})`)
    })
}
