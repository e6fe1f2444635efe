/**
 * `vouch users show|revoke-sessions|delete <email|id>`: a user's account,
 * acted on directly in DATABASE_URL, with the invariants of the HTTP flows.
 *
 * - revoke-sessions is the O(1) sign-out-everywhere of logout-all
 *   (`sessions.endAll`: one UPDATE bumping tokenVersion, whatever the
 *   number of sessions).
 * - delete is the erasure of DELETE /auth/account without the password (the
 *   operator has the database anyway): in one transaction the version is
 *   bumped (through domain/token-version.ts, like every bump), the sessions and a pending reset deleted, the email and hash
 *   replaced by the tombstone's (domain/accounts.ts says why a row stays).
 *
 * Running servers hear of either change through src/cli/announce.ts at
 * once (Redis, PostgreSQL NOTIFY); without a bus (SQLite) within
 * REVOCATION_CACHE_TTL at each server and the revocation feed's next poll at
 * resource servers. A deleted account is an unknown user to every command.
 */
import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import type { Config } from '../config.js'
import { buildKeySet, generatePrivateJwk, toSigningKey } from '../crypto/keys.js'
import { deletedEmail } from '../domain/accounts.js'
import { CLI } from '../domain/security-events.js'
import { normalizeEmail } from '../domain/email.js'
import { createDomain, type Domain } from '../domain/index.js'
import { createAnnouncer, type Announcer } from './announce.js'
import type { CliContext } from './context.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'

export interface UserSummary {
  id: string
  email: string
  createdAt: string
  tokenVersion: number
  activeSessions: number
}

interface Found { id: string, email: string, createdAt: Date, tokenVersion: number }

/** The user named by an email (anything with an "@") or an id; unknown users (and deleted accounts) exit with EXIT.unknownUser. */
async function findUser (context: CliContext, emailOrId: string): Promise<Found> {
  const where = emailOrId.includes('@') ? { email: normalizeEmail(emailOrId) } : { id: emailOrId }
  const user = await context.db().user.findUnique({ where, select: { id: true, email: true, createdAt: true, tokenVersion: true } })
  if (user === null || user.email === deletedEmail(user.id)) throw new CliError('unknown_user', `no user ${emailOrId}`, EXIT.unknownUser)
  return user
}

/** Sessions whose tokens still work: the ones GET /auth/sessions lists. */
async function activeSessions (context: CliContext, user: Found): Promise<number> {
  const now = Date.now()
  const idleMs = context.config().sessions.idleTimeout * 1000
  return context.db().session.count({
    where: {
      userId: user.id,
      tokenVersion: user.tokenVersion,
      revokedAt: null,
      expiresAt: { gt: new Date(now) },
      ...(idleMs > 0 && { lastUsedAt: { gt: new Date(now - idleMs) } }),
    },
  })
}

/**
 * The domain on the CLI's database, telling running servers through
 * `announcer`. The CLI issues no token, so its domain signs with a key made
 * for this process and forgotten with it: a command never needs (or creates)
 * the server's key material.
 */
async function domainOf (context: CliContext, announcer: Announcer): Promise<Domain> {
  const config: Config = context.config()
  const { algorithm } = config.tokens
  const keys = buildKeySet(algorithm, [await toSigningKey(await generatePrivateJwk(algorithm), algorithm)])
  return createDomain({
    config, db: context.db(), keys, refreshKey: randomBytes(32), bus: announcer,
    notifier: { sendResetLink: async () => { throw new Error('the CLI sends no mail') } },
  })
}

/** What the servers were told, for the output: which transport, or that they find out by themselves. */
async function announce (announcer: Announcer): Promise<string> {
  await announcer.flush()
  return announcer.kind === 'redis' || announcer.kind === 'postgres' ? announcer.kind : 'none'
}

const summaryText = (user: UserSummary) => [
  `id              ${user.id}`,
  `email           ${user.email}`,
  `createdAt       ${user.createdAt}`,
  `tokenVersion    ${user.tokenVersion}`,
  `activeSessions  ${user.activeSessions}`,
].join('\n')

export function registerUsers (program: Command, context: CliContext): void {
  const users = program.command('users').description("look up a user, end a user's sessions, delete an account")
  const userArgument = ['<email|id>', 'the user: an email (anything with "@") or a user id'] as const

  users.command('show')
    .description('show a user: id, email, createdAt, tokenVersion and the number of active sessions')
    .argument(...userArgument)
    .option('--json', 'print the user as JSON')
    .action(async (emailOrId: string, options: OutputOptions) => {
      const user = await findUser(context, emailOrId)
      const summary: UserSummary = {
        id: user.id, email: user.email, createdAt: user.createdAt.toISOString(), tokenVersion: user.tokenVersion,
        activeSessions: await activeSessions(context, user),
      }
      print(options, summary, () => summaryText(summary))
    })

  users.command('revoke-sessions')
    .description("end every session of a user at once (one tokenVersion bump, as logout-all): each access and refresh token dies; " +
      'running servers are told over Redis or PostgreSQL NOTIFY, else see it within REVOCATION_CACHE_TTL')
    .argument(...userArgument)
    .option('--json', 'print the result as JSON')
    .action(async (emailOrId: string, options: OutputOptions) => {
      const user = await findUser(context, emailOrId)
      const sessions = await activeSessions(context, user)
      const announcer = createAnnouncer(context.config())
      await (await domainOf(context, announcer)).administration.revokeSessions(user.id, { actor: CLI })
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
      await domain.administration.delete(user.id, { actor: CLI })
      const result = { id: user.id, deleted: true, announced: await announce(announcer) }
      print(options, result, () => `deleted ${user.email} (${user.id}; servers told: ${result.announced})`)
    })
}
