/**
 * What the session modules share (sessions.ts composes them): the settings
 * in milliseconds, the one rule for an active session, the token pair a
 * session is answered with, and the one way a single session is revoked
 * (telling the session cache, hence the other instances and the revocation
 * feed, once the revocation is written).
 */
import type { SecurityEvent } from './security-events.js'
import type { SessionDeps, RevokedReason, TokenPair } from './sessions.js'
import { createRefreshTokens } from './refresh-tokens.js'

/** The columns the activity rule reads. */
export interface SessionActivity {
  tokenVersion: number
  revokedAt: Date | null
  expiresAt: Date
  lastUsedAt: Date
}

/**
 * The sessions whose tokens still work, as a query: the user's, under the
 * user's current version, not revoked, not expired, not idle past `idleMs`
 * (0 = no idle limit). What GET /auth/sessions lists, what the admin API
 * lists and what MAX_SESSIONS_PER_USER counts.
 */
export function activeSessionsOf (userId: string, tokenVersion: number, now: Date, idleMs: number) {
  return {
    userId,
    tokenVersion,
    revokedAt: null,
    expiresAt: { gt: now },
    ...(idleMs > 0 && { lastUsedAt: { gt: new Date(now.getTime() - idleMs) } }),
  }
}

export type SessionKit = ReturnType<typeof createSessionKit>

export function createSessionKit (deps: SessionDeps) {
  const { db, accessTokens, refreshKey, settings, cache, versions } = deps
  const idleMs = settings.idleTimeout * 1000
  const graceMs = settings.reuseGraceWindow * 1000

  /** Not revoked, under the user's current version, not expired, not idle. */
  const isActive = (session: SessionActivity, userVersion: number, now: Date): boolean =>
    session.revokedAt === null &&
    session.tokenVersion === userVersion &&
    session.expiresAt > now &&
    (idleMs === 0 || now.getTime() - session.lastUsedAt.getTime() < idleMs)

  const tokenPair = async (
    session: { id: string, userId: string, expiresAt: Date },
    version: number, refreshToken: string, now: Date,
  ): Promise<TokenPair> => {
    const untilExpiry = session.expiresAt.getTime() - now.getTime()
    const refreshMs = idleMs === 0 ? untilExpiry : Math.min(untilExpiry, idleMs)
    return {
      tokenType: 'Bearer',
      accessToken: await accessTokens.issue({ userId: session.userId, sessionId: session.id, version }),
      expiresIn: accessTokens.ttl,
      refreshToken,
      refreshExpiresIn: Math.max(0, Math.floor(refreshMs / 1000)),
      sessionId: session.id,
    }
  }

  /** Revokes one session and records `event(userId)` in the same transaction; the number revoked (0 or 1). */
  const revokeSession = async (
    where: { id: string, userId?: string }, reason: RevokedReason, now: Date, event: (userId: string) => SecurityEvent,
  ): Promise<number> => {
    const revoked = await versions.transaction(async (tx, _bump, record) => {
      const rows = await tx.session.updateManyAndReturn({
        where: { ...where, revokedAt: null }, data: { revokedAt: now, revokedReason: reason }, select: { userId: true },
      })
      for (const row of rows) record(event(row.userId))
      return rows.length
    })
    if (revoked > 0) cache.sessionChanged(where.id)
    return revoked
  }

  /** A session with its user's current version (rotation, token revocation). */
  const loadForRefresh = (sessionId: string) => db.session.findUnique({
    where: { id: sessionId },
    include: { user: { select: { tokenVersion: true } } },
  })

  return { ...deps, idleMs, graceMs, refreshTokens: createRefreshTokens(refreshKey), isActive, tokenPair, revokeSession, loadForRefresh }
}
