/**
 * Accounts: registration, sign-in and password changes. Sign-in answers
 * `invalid_credentials` for an unknown email and a wrong password alike and
 * pays for one argon2 verification either way. Hashes made with weaker
 * parameters than the configured ones are replaced on the next sign-in.
 */
import { DomainError } from '../errors.js'
import type { Db } from '../db/client.js'
import type { PasswordHasher } from '../crypto/passwords.js'
import { isUniqueViolation } from '../db/errors.js'
import type { LoginThrottle } from '../limits/login-throttle.js'
import { normalizeEmail } from './email.js'
import { checkNewPassword, type PasswordPolicy } from './password-policy.js'
import type { Principal, Sessions, TokenPair } from './sessions.js'

export interface Profile {
  id: string
  email: string
  createdAt: Date
}

export interface Accounts {
  register (email: string, password: string): Promise<Profile & { tokenVersion: number }>
  /**
   * The user behind an email and password; `invalid_credentials` otherwise,
   * or `rate_limited` after too many failures (see limits/login-throttle.ts).
   */
  signIn (email: string, password: string, from: { ip: string }): Promise<{ id: string, tokenVersion: number }>
  /** Changes the password and keeps only the caller's session (re-keyed). */
  changePassword (principal: Principal, currentPassword: string, newPassword: string): Promise<TokenPair>
  profile (userId: string): Promise<Profile>
}

export interface AccountDeps {
  db: Db
  passwords: PasswordHasher
  sessions: Sessions
  policy: PasswordPolicy
  throttle: LoginThrottle
}

export function createAccounts ({ db, passwords, sessions, policy, throttle }: AccountDeps): Accounts {
  const checkStrength = (password: string) => checkNewPassword(policy, password)

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

    async signIn (rawEmail, password, { ip }) {
      const email = normalizeEmail(rawEmail)
      await throttle.check(email, ip, async () => await db.session.count({ where: { ip, user: { email } } }) > 0)
      const user = await db.user.findUnique({ where: { email }, select: { id: true, tokenVersion: true, passwordHash: true } })
      if (!await passwords.verify(user?.passwordHash, password) || user === null) {
        await throttle.failed(email, ip)
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

    async changePassword (principal, currentPassword, newPassword) {
      checkStrength(newPassword)
      const user = await db.user.findUnique({ where: { id: principal.userId }, select: { passwordHash: true } })
      if (user === null) throw new DomainError('token_revoked')
      if (!await passwords.verify(user.passwordHash, currentPassword)) throw new DomainError('invalid_credentials')
      return sessions.keepOnly(principal, {
        passwordHash: await passwords.hash(newPassword),
        verifiedHash: user.passwordHash,
      })
    },

    async profile (userId) {
      const user = await db.user.findUnique({ where: { id: userId }, select: { id: true, email: true, createdAt: true } })
      if (user === null) throw new DomainError('token_revoked')
      return user
    },
  }
}
