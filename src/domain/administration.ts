/**
 * What an administrator may do to an account, for the admin API (/admin)
 * and the CLI alike, with the invariants of the user's own flows:
 *
 * - Revoking every session is the O(1) sign-out-everywhere: one version
 *   bump of one row, whatever the number of sessions.
 * - Disabling sets `disabledAt` and bumps the version in the same UPDATE:
 *   every access and refresh token dies at once (here, at other instances
 *   and at resource servers, as after logout-all), sign-in answers
 *   `invalid_credentials` and no reset link is sent or honoured until the
 *   account is enabled again. Enabling revives no token.
 * - Deleting is the erasure of DELETE /auth/account (accounts.ts,
 *   `eraseAccount`), without the password.
 * - Every action, reads included, is recorded as a security event with the
 *   actor (the admin client, or the CLI), in the transaction of the change.
 *
 * A deleted account (its tombstone row) is `not_found` to every action but
 * reading its events: an incident can be investigated after the erasure,
 * which removed the user's addresses but kept the events themselves.
 */
import { DomainError } from '../errors.js'
import { isUuid } from '../crypto/secrets.js'
import type { Db } from '../db/client.js'
import { deletedEmail, eraseAccount } from './accounts.js'
import type { Clock } from './clock.js'
import { normalizeEmail } from './email.js'
import type { Actor, ClientInfo, EventPage, SecurityEvents } from './security-events.js'
import type { SessionCache } from './session-cache.js'
import { activeSessionsOf } from './session-kit.js'
import type { SessionSettings, SessionView } from './sessions.js'
import type { TokenVersions } from './token-version.js'

export interface AdminUser {
  id: string
  email: string
  createdAt: Date
  disabledAt: Date | null
  tokenVersion: number
}

/** A session as the user's own list shows it, less the caller's "this device" marker. */
export type AdminSession = Omit<SessionView, 'current'>

/** Who acts, and from where (an admin client's request; nothing for the CLI). */
export interface Authority {
  readonly actor: Actor
  readonly client?: ClientInfo | undefined
}

export interface Administration {
  /** `not_found` for an unknown email. */
  findByEmail (email: string, by: Authority): Promise<AdminUser>
  /** `not_found` for an unknown id. */
  find (userId: string, by: Authority): Promise<AdminUser>
  /** The user's active sessions, newest first. */
  sessions (userId: string, by: Authority): Promise<AdminSession[]>
  /** Ends every session and token of the user: one version bump. */
  revokeSessions (userId: string, by: Authority): Promise<void>
  /** Ends one session of the user; `not_found` when it is not theirs. */
  revokeSession (userId: string, sessionId: string, by: Authority): Promise<void>
  disable (userId: string, by: Authority): Promise<void>
  enable (userId: string, by: Authority): Promise<void>
  delete (userId: string, by: Authority): Promise<void>
  events (userId: string, page: { before?: string | undefined, limit: number }, by: Authority): Promise<EventPage>
}

export interface AdministrationDeps {
  db: Db
  clock: Clock
  versions: TokenVersions
  events: SecurityEvents
  cache: SessionCache
  settings: Pick<SessionSettings, 'idleTimeout'>
}

const USER_FIELDS = { id: true, email: true, createdAt: true, disabledAt: true, tokenVersion: true } as const

export function createAdministration ({ db, clock, versions, events, cache, settings }: AdministrationDeps): Administration {
  const idleMs = settings.idleTimeout * 1000
  const live = (user: AdminUser | null): AdminUser => {
    if (user === null || user.email === deletedEmail(user.id)) throw new DomainError('not_found', 'No such user.')
    return user
  }
  /** The user, checked to exist (and not deleted). */
  const existing = async (userId: string): Promise<AdminUser> =>
    live(isUuid(userId) ? await db.user.findUnique({ where: { id: userId }, select: USER_FIELDS }) : null)
  /** The user, checked to exist or to have existed (a tombstone). */
  const everExisted = async (userId: string): Promise<Pick<AdminUser, 'id'>> => {
    const user = isUuid(userId) ? await db.user.findUnique({ where: { id: userId }, select: { id: true } }) : null
    if (user === null) throw new DomainError('not_found', 'No such user.')
    return user
  }
  const read = async (userId: string, what: 'user' | 'sessions' | 'events', by: Authority) =>
    events.record({ type: 'admin_read', what, userId, ...by })

  return {
    async findByEmail (email, by) {
      let normalized: string
      try {
        normalized = normalizeEmail(email)
      } catch {
        throw new DomainError('not_found', 'No such user.')
      }
      const user = live(await db.user.findUnique({ where: { email: normalized }, select: USER_FIELDS }))
      await read(user.id, 'user', by)
      return user
    },

    async find (userId, by) {
      const user = await existing(userId)
      await read(user.id, 'user', by)
      return user
    },

    async sessions (userId, by) {
      const user = await existing(userId)
      const now = clock.now()
      const sessions = await db.session.findMany({
        where: activeSessionsOf(user.id, user.tokenVersion, now, idleMs),
        orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
        select: { id: true, deviceName: true, userAgent: true, ip: true, createdAt: true, lastUsedAt: true, expiresAt: true },
      })
      await read(user.id, 'sessions', by)
      return sessions
    },

    async revokeSessions (userId, by) {
      await existing(userId)
      await versions.transaction(async (_tx, bump, record) => {
        if (await bump(userId) === null) throw new DomainError('not_found', 'No such user.')
        record({ type: 'signed_out_everywhere', userId, ...by })
      })
    },

    async revokeSession (userId, sessionId, by) {
      await existing(userId)
      if (!isUuid(sessionId)) throw new DomainError('not_found', 'No such session.')
      const revoked = await versions.transaction(async (tx, _bump, record) => {
        const { count } = await tx.session.updateMany({
          where: { id: sessionId, userId, revokedAt: null },
          data: { revokedAt: clock.now(), revokedReason: 'admin' },
        })
        if (count > 0) record({ type: 'session_revoked', reason: 'admin', userId, sessionId, ...by })
        return count
      })
      if (revoked > 0) {
        cache.sessionChanged(sessionId)
        return
      }
      // Already ended is done; someone else's (or no) session is not found.
      if (await db.session.count({ where: { id: sessionId, userId } }) === 0) throw new DomainError('not_found', 'No such session.')
    },

    async disable (userId, by) {
      await existing(userId)
      await versions.transaction(async (_tx, bump, record) => {
        // Already disabled: nothing to do, and nothing recorded.
        const bumped = await bump(userId, { where: { disabledAt: null }, data: { disabledAt: clock.now() } })
        if (bumped !== null) record({ type: 'account_disabled', userId, ...by })
      })
    },

    async enable (userId, by) {
      await existing(userId)
      await versions.transaction(async (tx, _bump, record) => {
        const { count } = await tx.user.updateMany({ where: { id: userId, disabledAt: { not: null } }, data: { disabledAt: null } })
        if (count > 0) record({ type: 'account_enabled', userId, ...by })
      })
    },

    async delete (userId, by) {
      await existing(userId)
      await versions.transaction(async (tx, bump, record) => {
        if (await eraseAccount(tx, bump, userId) === null) throw new DomainError('not_found', 'No such user.')
        // The administrator's address is theirs, not the user's: kept.
        record({ type: 'account_deleted', userId, ...by })
      })
    },

    async events (userId, page, by) {
      const user = await everExisted(userId)
      // Read before this read is recorded: the page shows what happened before the administrator looked.
      const found = await events.page(user.id, page)
      await read(user.id, 'events', by)
      return found
    },
  }
}
