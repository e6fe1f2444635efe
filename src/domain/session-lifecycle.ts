/**
 * Session lifecycle: starting a session (within the per-user limit,
 * session-limit.ts), listing, and ending sessions: one (logout, a device
 * revoked, token revocation), all (one version bump, token-version.ts), or
 * all but the caller's (re-keyed under the new version in the same
 * transaction, conditional on the caller's token still being current).
 */
import { randomUUID } from 'node:crypto'
import { DomainError } from '../errors.js'
import { isUuid } from '../crypto/secrets.js'
import { parseRefreshToken } from './refresh-tokens.js'
import { lockUser, revokeBeyondLimit } from './session-limit.js'
import { deviceKey, isNewDevice } from './devices.js'
import { SYSTEM, type SecurityEvent } from './security-events.js'
import { activeSessionsOf, type SessionKit } from './session-kit.js'
import type { SessionLiveness } from './session-liveness.js'
import type { Sessions } from './sessions.js'

export type SessionLifecycle = Omit<Sessions, 'refresh' | 'authenticate' | 'profile' | 'inspect'>

export function createSessionLifecycle (kit: SessionKit, { inspect }: Pick<SessionLiveness, 'inspect'>): SessionLifecycle {
  const { db, clock, cache, versions, settings, idleMs, refreshTokens, isActive, tokenPair, revokeSession, loadForRefresh } = kit
  return {
    async start (user, device, method = 'password') {
      const now = clock.now()
      const id = randomUUID()
      const refreshToken = refreshTokens.fresh(id, user.tokenVersion, 0)
      const key = deviceKey(device)
      const client = { ip: device.ip, userAgent: device.userAgent }
      const { session, revoked } = await versions.transaction(async (tx, _bump, record) => {
        // The user's row is written first: concurrent sign-ins of one user queue on it (session-limit.ts),
        // so each counts the sessions, and knows the devices, of the ones before it (devices.ts).
        const version = await lockUser(tx, user.id)
        const newDevice = await isNewDevice(tx, user.id, key)
        const session = await tx.session.create({
          data: {
            id,
            userId: user.id,
            tokenVersion: user.tokenVersion,
            refreshTokenHash: refreshToken.hash,
            refreshGeneration: 0,
            deviceName: device.deviceName ?? null,
            userAgent: device.userAgent ?? null,
            ip: device.ip ?? null,
            deviceKey: key,
            createdAt: now,
            lastUsedAt: now,
            expiresAt: new Date(now.getTime() + settings.lifetime * 1000),
          },
          select: { id: true, userId: true, expiresAt: true },
        })
        record({ type: 'sign_in_succeeded', userId: user.id, sessionId: id, method, client })
        if (newDevice) {
          record({ type: 'new_device', userId: user.id, sessionId: id, deviceName: device.deviceName ?? null, client })
        }
        const revoked = settings.maxPerUser === 0 || version === null
          ? []
          : await revokeBeyondLimit(tx, version, { userId: user.id, keep: id, limit: settings.maxPerUser, now, idleMs })
        for (const sessionId of revoked) {
          record({ type: 'session_revoked', reason: 'session_limit', userId: user.id, sessionId, actor: SYSTEM, client })
        }
        return { session, revoked }
      })
      // As after DELETE /auth/sessions/:id: this instance, the others and the revocation feed.
      for (const sessionId of revoked) cache.sessionChanged(sessionId)
      return tokenPair(session, user.tokenVersion, refreshToken.token, now)
    },

    async end (principal) {
      await revokeSession({ id: principal.sessionId, userId: principal.userId }, 'logout', clock.now(), (userId) =>
        ({ type: 'session_revoked', reason: 'logout', userId, sessionId: principal.sessionId, client: principal.client }))
    },

    async endAll (userId, client) {
      await versions.transaction(async (_tx, bump, record) => {
        if (await bump(userId) !== null) record({ type: 'signed_out_everywhere', userId, client })
      })
    },

    async keepOnly (principal, passwordUpdate) {
      const now = clock.now()
      const version = principal.version + 1
      // Announced (cache, other instances, revocation feed) once this commits.
      const session = await versions.transaction(async (tx, bump, record) => {
        const bumped = await bump(principal.userId, {
          expectedVersion: principal.version,
          ...(passwordUpdate && { where: { passwordHash: passwordUpdate.verifiedHash }, data: { passwordHash: passwordUpdate.passwordHash } }),
        })
        if (bumped === null) {
          // Either the caller's token went stale meanwhile, or the password changed under us.
          const user = await tx.user.findUnique({ where: { id: principal.userId }, select: { tokenVersion: true } })
          throw new DomainError(user?.tokenVersion === principal.version ? 'invalid_credentials' : 'token_revoked')
        }
        // A pending password reset must not outlive a password change.
        if (passwordUpdate) await tx.passwordReset.deleteMany({ where: { userId: principal.userId } })
        // Re-keyed under the new version: every earlier refresh token of this
        // session is merely invalid now (its tag names the old version).
        const kept = await tx.session.findFirst({
          where: { id: principal.sessionId, userId: principal.userId, revokedAt: null, tokenVersion: principal.version },
          select: { refreshGeneration: true, expiresAt: true },
        })
        if (kept === null) throw new DomainError('token_revoked')
        const refreshToken = refreshTokens.fresh(principal.sessionId, version, kept.refreshGeneration + 1)
        const rekeyed = await tx.session.updateMany({
          where: { id: principal.sessionId, revokedAt: null, tokenVersion: principal.version, refreshGeneration: kept.refreshGeneration },
          data: {
            tokenVersion: version, refreshTokenHash: refreshToken.hash, refreshGeneration: kept.refreshGeneration + 1,
            previousRefreshTokenHash: null, rotatedAt: null, lastUsedAt: now,
          },
        })
        if (rekeyed.count === 0) throw new DomainError('token_revoked')
        record(passwordUpdate
          ? { type: 'password_changed', userId: principal.userId, sessionId: principal.sessionId, client: principal.client }
          : { type: 'signed_out_everywhere', userId: principal.userId, keptSessionId: principal.sessionId, client: principal.client })
        return { id: principal.sessionId, userId: principal.userId, expiresAt: kept.expiresAt, refreshToken: refreshToken.token }
      })
      return tokenPair(session, version, session.refreshToken, now)
    },

    async list (principal) {
      const now = clock.now()
      const sessions = await db.session.findMany({
        where: activeSessionsOf(principal.userId, principal.version, now, idleMs),
        orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
        select: { id: true, deviceName: true, userAgent: true, ip: true, createdAt: true, lastUsedAt: true, expiresAt: true },
      })
      return sessions.map((session) => ({ ...session, current: session.id === principal.sessionId }))
    },

    async revoke (principal, sessionId) {
      // Session ids are UUIDs; anything else is no one's session (and never reaches the database).
      if (!isUuid(sessionId)) throw new DomainError('not_found')
      const revoked = await revokeSession({ id: sessionId, userId: principal.userId }, 'revoked_by_user', clock.now(), (userId) =>
        ({ type: 'session_revoked', reason: 'revoked_by_user', userId, sessionId, client: principal.client }))
      if (revoked === 1) return
      const own = await db.session.count({ where: { id: sessionId, userId: principal.userId } })
      if (own === 0) throw new DomainError('not_found')
    },

    async revokeByToken (token, client, reason = 'token_revocation') {
      const now = clock.now()
      const event = (sessionId: string) => (userId: string): SecurityEvent =>
        ({ type: 'session_revoked', reason, userId, sessionId, client })
      const presented = parseRefreshToken(token)
      if (presented === undefined) {
        const claims = await inspect(token)
        if (claims === null) return false
        return await revokeSession({ id: claims.sid, userId: claims.sub }, 'logout', now, event(claims.sid)) > 0
      }
      const session = await loadForRefresh(presented.sessionId)
      if (session === null || !isActive(session, session.user.tokenVersion, now)) return false
      if (!refreshTokens.isCurrent(session, presented) && !refreshTokens.isSuperseded(session, presented)) return false
      return await revokeSession({ id: session.id }, 'logout', now, event(session.id)) > 0
    },
  }
}
