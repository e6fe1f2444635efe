/**
 * Accounts: registration, sign-in, password changes and deletion. Sign-in
 * answers `invalid_credentials` for an unknown email and a wrong password
 * alike and pays for one argon2 verification either way. Hashes made with
 * weaker parameters than the configured ones are replaced on the next sign-in.
 *
 * Deleting an account keeps its row as a tombstone, because the row is how
 * revocations travel (the session cache's invalidations, and the revocation
 * feed that reads users' tokenVersion and updatedAt): in one transaction the
 * version is bumped (every token dies at once), the sessions and a pending
 * reset are deleted, the email becomes a placeholder no sign-in or
 * registration can ever name (it has no "@") and the hash becomes a marker
 * no password verifies (not an argon2 hash). The email is free again at once.
 */
import { DomainError } from '../errors.js'
import type { Db } from '../db/client.js'
import type { PasswordHasher } from '../crypto/passwords.js'
import { isUniqueViolation } from '../db/errors.js'
import type { LoginThrottle } from '../limits/login-throttle.js'
import { normalizeEmail } from './email.js'
import { checkNewPassword, type PasswordPolicy } from './password-policy.js'
import type { UserProfile } from './session-cache.js'
import type { Principal, Sessions, TokenPair } from './sessions.js'
import { ANONYMOUS, type ClientInfo, type PasswordCheckAction, type SecurityEvents } from './security-events.js'
import type { Bump, BumpConditions, TokenVersions, Tx } from './token-version.js'

/** What a deleted account's password hash becomes: not an argon2 hash, so no password verifies against it. */
export const DELETED_PASSWORD_HASH = '!deleted'

/**
 * What a deleted account's email becomes: unique (the user id), naming no
 * one, and without an "@", so normalizeEmail refuses it and no sign-in,
 * reset request or registration can ever look it up or take it.
 */
export function deletedEmail (userId: string): string {
  return `deleted:${userId}`
}

export interface Accounts {
  register (email: string, password: string): Promise<UserProfile & { tokenVersion: number }>
  /**
   * The user behind an email and password; `invalid_credentials` otherwise,
   * or `rate_limited` after too many failures (see limits/login-throttle.ts).
   */
  signIn (email: string, password: string, from: ClientInfo & { ip: string }): Promise<{ id: string, tokenVersion: number }>
  /**
   * Changes the password and keeps only the caller's session (re-keyed).
   * The current password is checked like the deletion's (see below).
   */
  changePassword (principal: Principal, currentPassword: string, newPassword: string, from: ClientInfo & { ip: string }): Promise<TokenPair>
  /**
   * Deletes the caller's account after checking its password (counted by
   * the sign-in throttle like a sign-in): every token dies at once, here,
   * on other instances and at resource servers; personal data is erased.
   * `invalid_credentials` for a wrong password (nothing changes),
   * `token_revoked` when the caller's token went stale meanwhile.
   */
  deleteAccount (principal: Principal, password: string, from: ClientInfo & { ip: string }): Promise<void>
}

export interface AccountDeps {
  db: Db
  passwords: PasswordHasher
  sessions: Sessions
  policy: PasswordPolicy
  throttle: LoginThrottle
  /** Ends every token of a deleted account, and tells this instance, the others and the revocation feed once it committed. */
  versions: TokenVersions
  /** Failed and throttled sign-ins and password checks are recorded here. */
  events: SecurityEvents
}

/**
 * Erases an account inside `tx` (the one home of deletion, for the user's
 * own DELETE /auth/account, the admin API and the CLI): the pending reset
 * first (rows are locked in the order a completing reset locks them, its
 * reset then the user, so the two cannot deadlock), then one conditional
 * version bump that also writes the tombstone's email and hash, then the
 * sessions (device names, user agents and addresses) and the addresses,
 * user agents and device names of the account's past security events (but
 * an administrator's own, on the events of their actions). Null (nothing
 * changed) when the user is unknown or a condition did not hold.
 */
export async function eraseAccount (tx: Tx, bump: Bump, userId: string, conditions: Omit<BumpConditions, 'data'> = {}): Promise<number | null> {
  await tx.passwordReset.deleteMany({ where: { userId } })
  const erased = await bump(userId, {
    ...conditions,
    where: { ...conditions.where, NOT: { passwordHash: DELETED_PASSWORD_HASH } },
    data: { email: deletedEmail(userId), passwordHash: DELETED_PASSWORD_HASH },
  })
  if (erased === null) return null
  await tx.session.deleteMany({ where: { userId } })
  // An administrator's address and user agent are the administrator's, not the user's: they stay.
  await tx.securityEvent.updateMany({ where: { userId, NOT: { actor: 'admin' } }, data: { ip: null, userAgent: null } })
  // A new device's name ("Alice's phone") is as personal as the sessions' device names.
  await tx.securityEvent.updateMany({ where: { userId, type: 'new_device' }, data: { detail: null } })
  return erased
}

export function createAccounts ({ db, passwords, sessions, policy, throttle, versions, events }: AccountDeps): Accounts {
  const checkStrength = (password: string) => checkNewPassword(policy, password)
  const hasSignedInFrom = (email: string, ip: string) => async () => await db.session.count({ where: { ip, user: { email } } }) > 0

  /**
   * The signed-in caller proves the account's password again before a
   * change that needs it. A stolen access token must not buy unlimited
   * guesses: the attempts count against the account exactly as sign-ins do,
   * and each failure (or refusal past the limit) is recorded on the
   * account's timeline, as the user's own doing.
   */
  const confirmPassword = async (principal: Principal, user: { email: string, passwordHash: string }, password: string, action: PasswordCheckAction, client: ClientInfo & { ip: string }) => {
    const failure = async (reason: 'wrong_password' | 'throttled') =>
      await events.record({ type: 'password_check_failed', action, reason, userId: principal.userId, sessionId: principal.sessionId, client })
    try {
      await throttle.check(user.email, client.ip, hasSignedInFrom(user.email, client.ip))
    } catch (err) {
      await failure('throttled')
      throw err
    }
    if (!await passwords.verify(user.passwordHash, password)) {
      await throttle.failed(user.email, client.ip)
      await failure('wrong_password')
      throw new DomainError('invalid_credentials')
    }
    // Proven, as by a sign-in (and done before the change, so that a
    // failure here cannot fail a change that committed).
    await throttle.succeeded(user.email, client.ip)
  }

  return {
    async register (rawEmail, password) {
      const email = normalizeEmail(rawEmail)
      checkStrength(password)
      if (await db.user.count({ where: { email } }) > 0) throw new DomainError('email_taken')
      const passwordHash = await passwords.hash(password)
      try {
        return await db.user.create({
          data: { email, passwordHash },
          select: { id: true, email: true, createdAt: true, tokenVersion: true },
        })
      } catch (err) {
        if (isUniqueViolation(err)) throw new DomainError('email_taken')
        throw err
      }
    },

    async signIn (rawEmail, password, client) {
      const { ip } = client
      const email = normalizeEmail(rawEmail)
      try {
        await throttle.check(email, ip, hasSignedInFrom(email, ip))
      } catch (err) {
        // Anonymous: the caller proved nothing (the user's timeline must not show it as the user's own doing).
        const named = await db.user.findUnique({ where: { email }, select: { id: true } })
        await events.record({ type: 'sign_in_throttled', userId: named?.id, client, actor: ANONYMOUS })
        throw err
      }
      // Read after the throttle's verdict: a refused attempt never reads a hash.
      const user = await db.user.findUnique({ where: { email }, select: { id: true, tokenVersion: true, passwordHash: true, disabledAt: true } })
      const verified = await passwords.verify(user?.passwordHash, password)
      if (!verified || user === null || user.disabledAt !== null) {
        // The reason is for the timeline and the logs; the caller hears invalid_credentials whatever it was.
        const reason = user === null ? 'unknown_email' : verified ? 'account_disabled' : 'wrong_password'
        await throttle.failed(email, ip)
        await events.record({ type: 'sign_in_failed', reason, userId: user?.id, client, actor: ANONYMOUS })
        throw new DomainError('invalid_credentials')
      }
      await throttle.succeeded(email, ip)
      if (passwords.needsRehash(user.passwordHash)) {
        await db.user.updateMany({
          where: { id: user.id, passwordHash: user.passwordHash },
          data: { passwordHash: await passwords.hash(password) },
        })
      }
      return { id: user.id, tokenVersion: user.tokenVersion }
    },

    async changePassword (principal, currentPassword, newPassword, client) {
      checkStrength(newPassword)
      const user = await db.user.findUnique({ where: { id: principal.userId }, select: { email: true, passwordHash: true, tokenVersion: true } })
      // Stale since it was checked: refused as any stale token, before a guess is counted.
      if (user === null || user.tokenVersion !== principal.version) throw new DomainError('token_revoked')
      await confirmPassword(principal, user, currentPassword, 'password_change', client)
      return sessions.keepOnly(principal, {
        passwordHash: await passwords.hash(newPassword),
        verifiedHash: user.passwordHash,
      })
    },

    async deleteAccount (principal, password, client) {
      const user = await db.user.findUnique({ where: { id: principal.userId }, select: { email: true, passwordHash: true, tokenVersion: true } })
      // Stale since it was checked (another deletion, a logout-all): refused as any stale token, before a guess is counted.
      if (user === null || user.tokenVersion !== principal.version) throw new DomainError('token_revoked')
      await confirmPassword(principal, user, password, 'account_deletion', client)
      await versions.transaction(async (tx, bump, record) => {
        // Conditional on the caller's token still being current and the
        // password still being the one just verified: of two concurrent
        // deletions (or a deletion and a password change) only one wins;
        // a reset that got there first wins too, and the deletion is
        // refused below (the reset made the caller's token stale).
        const erased = await eraseAccount(tx, bump, principal.userId, {
          expectedVersion: principal.version, where: { passwordHash: user.passwordHash },
        })
        if (erased === null) {
          const current = await tx.user.findUnique({ where: { id: principal.userId }, select: { tokenVersion: true } })
          throw new DomainError(current?.tokenVersion === principal.version ? 'invalid_credentials' : 'token_revoked')
        }
        record({ type: 'account_deleted', userId: principal.userId, sessionId: principal.sessionId })
      })
    },
  }
}
