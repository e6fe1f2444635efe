/**
 * Password reset by email. Invariants:
 *
 * - `request` answers the same way, in the same time, whether or not the
 *   email has an account: it only checks the rate limits, then does the
 *   lookup, the token and the mail in the background.
 * - A reset token is `<resetId>.<secret>`, 256 random bits, stored only as
 *   SHA-256, valid for `ttl` seconds, single use; each user has at most one
 *   pending reset, so a newer request replaces it, and a password change or
 *   a completed reset deletes it.
 * - A completed reset changes the password and bumps tokenVersion in one
 *   transaction: every session and token of the user dies. It signs the
 *   caller in only if configured to.
 */
import { DomainError } from '../errors.js'
import type { Db } from '../db/client.js'
import type { PasswordHasher } from '../crypto/passwords.js'
import { hashSecret, parseIdToken, randomSecret, sameHash } from '../crypto/secrets.js'
import type { Counters } from '../limits/counters.js'
import type { Clock } from './clock.js'
import { DELETED_PASSWORD_HASH } from './accounts.js'
import { normalizeEmail } from './email.js'
import { checkNewPassword, type PasswordPolicy } from './password-policy.js'
import type { DeviceInfo, Sessions, TokenPair } from './sessions.js'
import { ANONYMOUS, type ClientInfo } from './security-events.js'
import type { TokenVersions } from './token-version.js'

/** Delivers reset links (src/mail/). */
export interface ResetNotifier {
  sendResetLink (to: string, token: string, expiresAt: Date): Promise<void>
}

export interface PasswordResetSettings {
  /** Seconds a reset token is valid. */
  readonly ttl: number
  /** Sign the caller in (a new session) after a successful reset. */
  readonly signIn: boolean
  /** Requests per email, and per IP, per window. */
  readonly perEmail: number
  readonly perIp: number
  /** Seconds. */
  readonly window: number
}

export interface PasswordResets {
  /** Starts a reset; the same answer whatever the email. `rate_limited` past the limits. */
  request (email: string, from: ClientInfo & { ip: string }): Promise<void>
  /** Completes a reset: the pair when configured to sign in, else undefined. */
  reset (token: string, newPassword: string, device: DeviceInfo): Promise<TokenPair | undefined>
  /** Resolves when background work started so far has finished (tests, shutdown). */
  idle (): Promise<void>
}

export interface PasswordResetDeps {
  db: Db
  clock: Clock
  passwords: PasswordHasher
  policy: PasswordPolicy
  sessions: Sessions
  /** Ends every token of the user whose password was reset (announced once it committed). */
  versions: TokenVersions
  notifier: ResetNotifier
  counters: Counters
  settings: PasswordResetSettings
  onBackgroundError: (err: unknown) => void
}

export function createPasswordResets (deps: PasswordResetDeps): PasswordResets {
  const { db, clock, passwords, policy, sessions, versions, notifier, counters, settings } = deps
  const pending = new Set<Promise<void>>()
  const windowMs = settings.window * 1000

  const limit = async (key: string, max: number) => {
    const { count, resetInMs } = await counters.increment(key, windowMs)
    if (count > max) {
      throw new DomainError('rate_limited', 'Too many reset requests; retry later.', { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) })
    }
  }

  const issue = async (email: string, client: ClientInfo) => {
    const user = await db.user.findUnique({ where: { email }, select: { id: true, email: true, disabledAt: true } })
    // A disabled account cannot sign in, so it is offered no way to (an administrator enables it first).
    if (user === null || user.disabledAt !== null) return
    const secret = randomSecret()
    const now = clock.now()
    const expiresAt = new Date(now.getTime() + settings.ttl * 1000)
    const data = { tokenHash: hashSecret(secret), createdAt: now, expiresAt }
    // A fresh id too: tokens of the replaced request stop matching any row.
    const { id } = await versions.transaction(async (tx, _bump, record) => {
      // Anyone may ask for a reset of any email: the request is no proof of being the user.
      record({ type: 'password_reset_requested', userId: user.id, client, actor: ANONYMOUS })
      return tx.passwordReset.upsert({
        where: { userId: user.id },
        create: { userId: user.id, ...data },
        update: { id: crypto.randomUUID(), ...data },
        select: { id: true },
      })
    })
    await notifier.sendResetLink(user.email, `${id}.${secret}`, expiresAt)
  }

  return {
    async request (rawEmail, client) {
      const { ip } = client
      const email = normalizeEmail(rawEmail)
      await limit(`reset-ip:${ip}`, settings.perIp)
      await limit(`reset-email:${email}`, settings.perEmail)
      const job: Promise<void> = issue(email, { ip, userAgent: client.userAgent }).catch(deps.onBackgroundError).finally(() => pending.delete(job))
      pending.add(job)
    },

    async reset (token, newPassword, device) {
      const parsed = parseIdToken(token)
      if (parsed === undefined) throw new DomainError('reset_token_invalid')
      const { id, secret } = parsed
      checkNewPassword(policy, newPassword)
      const passwordHash = await passwords.hash(newPassword)
      const now = clock.now()

      const user = await versions.transaction(async (tx, bump, record) => {
        const row = await tx.passwordReset.findUnique({ where: { id }, select: { userId: true, tokenHash: true, expiresAt: true } })
        if (row === null || !sameHash(row.tokenHash, hashSecret(secret)) || row.expiresAt <= now) {
          throw new DomainError('reset_token_invalid')
        }
        // Single use: of simultaneous resets with one token, only one deletes the row.
        const used = await tx.passwordReset.deleteMany({ where: { id, tokenHash: row.tokenHash } })
        if (used.count !== 1) throw new DomainError('reset_token_invalid')
        // A reset stored as its account was being deleted (the lookup just before, the write just after) opens nothing.
        // Nor does one of an account disabled since the link was sent.
        const owner = await tx.user.findUnique({ where: { id: row.userId }, select: { passwordHash: true, disabledAt: true } })
        if (owner === null || owner.passwordHash === DELETED_PASSWORD_HASH || owner.disabledAt !== null) throw new DomainError('reset_token_invalid')
        const tokenVersion = await bump(row.userId, { data: { passwordHash } })
        if (tokenVersion === null) throw new DomainError('reset_token_invalid')
        record({ type: 'password_reset_completed', userId: row.userId, client: { ip: device.ip, userAgent: device.userAgent } })
        return { id: row.userId, tokenVersion }
      })
      return settings.signIn ? sessions.start(user, device, 'password_reset') : undefined
    },

    async idle () {
      while (pending.size > 0) await Promise.all([...pending])
    },
  }
}
