/**
 * Sessions and the tokens bound to them. The invariants this module guards:
 *
 * - A token is honoured only while its session is active: not revoked, not
 *   past its absolute expiry or idle limit, and created (or re-keyed) under
 *   the user's current tokenVersion. Bumping the user's version is therefore
 *   one UPDATE of one row that ends every session and token of the user; no
 *   session row is read or written by it.
 * - A refresh token names its session and its generation (see
 *   refresh-tokens.ts); only a hash is stored and lookups are by primary key.
 *   Every refresh rotates it, deterministically, so concurrent refreshes with
 *   one token all get the same new token (no second chain).
 * - The previous token stays usable for the grace window only as a duplicate
 *   of the rotation that already happened, and only from the client the
 *   session belongs to (same user agent); the live successor is handed back
 *   and the duplicate is reported. Any superseded token presented otherwise
 *   (later, from another client, or any number of rotations back) is a
 *   replay: the session is revoked (committed before answering) and the
 *   caller gets `refresh_token_reused`.
 * - Keeping one device while ending the others (password change,
 *   revoke-others) bumps the version and re-keys the kept session in one
 *   transaction, conditional on the caller's token still being current.
 */
import { randomUUID } from 'node:crypto'
import { DomainError } from '../errors.js'
import type { Db } from '../db/client.js'
import { isUuid, sameHash } from '../crypto/secrets.js'
import type { AccessClaims, AccessTokens } from './access-tokens.js'
import type { Clock } from './clock.js'
import type { SessionCache, SessionState, UserProfile } from './session-cache.js'
import { createRefreshTokens, parseRefreshToken } from './refresh-tokens.js'
import type { ClientInfo, SecurityEvents } from './security-events.js'
import type { TokenVersions, Tx } from './token-version.js'
import { lockUser, revokeBeyondLimit } from './session-limit.js'

export interface TokenPair {
  tokenType: 'Bearer'
  accessToken: string
  /** Seconds. */
  expiresIn: number
  refreshToken: string
  /** Seconds until the refresh token lapses (absolute expiry or idle limit, whichever is first). */
  refreshExpiresIn: number
  sessionId: string
}

/** Who a verified access token speaks for. */
export interface Principal {
  readonly userId: string
  readonly sessionId: string
  readonly version: number
}

export interface DeviceInfo {
  deviceName?: string | null | undefined
  userAgent?: string | null | undefined
  ip?: string | null | undefined
}

export interface SessionView {
  id: string
  deviceName: string | null
  userAgent: string | null
  ip: string | null
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  current: boolean
}

export interface SessionSettings {
  /** Absolute lifetime, seconds. */
  readonly lifetime: number
  /** Seconds; 0 = no idle limit. */
  readonly idleTimeout: number
  /** Seconds. */
  readonly reuseGraceWindow: number
  /** Most active sessions a user may have; a sign-in beyond it revokes the least recently used (session-limit.ts). 0 = no limit. */
  readonly maxPerUser: number
}

/** A password change that rides on `keepOnly`'s transaction. */
export interface PasswordUpdate {
  readonly passwordHash: string
  /** The hash the caller's current password was verified against. */
  readonly verifiedHash: string
}

export type RevokedReason = 'logout' | 'revoked_by_user' | 'refresh_token_reused' | 'session_limit'

export interface Sessions {
  start (user: { id: string, tokenVersion: number }, device: DeviceInfo): Promise<TokenPair>
  /** Rotates the token; `client` is who presents it (a grace-window duplicate must come from the session's own client). */
  refresh (refreshToken: string, client: ClientInfo): Promise<TokenPair>
  /** Verifies an access token and that its version and session are live. */
  authenticate (accessToken: string): Promise<Principal>
  /**
   * The caller's profile, from the state its token check just read: cached
   * with it and dropped with it on every change to the user, so GET
   * /auth/me costs no query while the cache holds the session.
   */
  profile (principal: Principal): Promise<UserProfile>
  /** The claims of an access token vouch would accept, or null (introspection). */
  inspect (accessToken: string): Promise<AccessClaims | null>
  /** Ends the caller's session. */
  end (principal: Principal): Promise<void>
  /** Ends every session and token of the user: one atomic increment. */
  endAll (userId: string): Promise<void>
  /** Ends every other session and token; the caller's session gets a new version and refresh token. */
  keepOnly (principal: Principal, passwordUpdate?: PasswordUpdate): Promise<TokenPair>
  list (principal: Principal): Promise<SessionView[]>
  /** Revokes one of the caller's sessions; `not_found` for anyone else's. */
  revoke (principal: Principal, sessionId: string): Promise<void>
  /**
   * Token revocation (RFC 7009): ends the session, like logout, of an access
   * token vouch would accept, or of a refresh token that is its session's
   * current one or a superseded one (whoever holds either could end the
   * session anyway, through logout or a replay). Anything else (unknown,
   * malformed, expired, already revoked) changes nothing. True if a session ended.
   */
  revokeByToken (token: string): Promise<boolean>
}

export interface SessionDeps {
  db: Db
  clock: Clock
  accessTokens: AccessTokens
  /** Key that rotated refresh secrets are derived under. */
  refreshKey: Uint8Array
  settings: SessionSettings
  /** Keeps the access-token check off the database; told of every write here. */
  cache: SessionCache
  events: SecurityEvents
  /** Where every session of a user ends at once (logout-all, revoke-others). */
  versions: TokenVersions
}

interface SessionActivity {
  tokenVersion: number
  revokedAt: Date | null
  expiresAt: Date
  lastUsedAt: Date
}

export function createSessions ({ db, clock, accessTokens, refreshKey, settings, cache, events, versions }: SessionDeps): Sessions {
  const idleMs = settings.idleTimeout * 1000
  const graceMs = settings.reuseGraceWindow * 1000

  const isActive = (session: SessionActivity, userVersion: number, now: Date): boolean =>
    session.revokedAt === null &&
    session.tokenVersion === userVersion &&
    session.expiresAt > now &&
    (idleMs === 0 || now.getTime() - session.lastUsedAt.getTime() < idleMs)

  const refreshTokens = createRefreshTokens(refreshKey)

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

  const revokeSession = async (where: { id: string, userId?: string }, reason: RevokedReason, now: Date) => {
    const revoked = await db.session.updateMany({ where: { ...where, revokedAt: null }, data: { revokedAt: now, revokedReason: reason } })
    if (revoked.count > 0) cache.sessionChanged(where.id)
    return revoked
  }

  const loadState = async (sessionId: string): Promise<SessionState | null> => {
    const row = await db.session.findUnique({
      where: { id: sessionId },
      select: {
        userId: true, tokenVersion: true, revokedAt: true, expiresAt: true, lastUsedAt: true,
        user: { select: { id: true, email: true, createdAt: true, tokenVersion: true } },
      },
    })
    if (row === null) return null
    const { user: { tokenVersion: userVersion, ...user }, ...session } = row
    return { ...session, userVersion, user }
  }

  /** The token's version is the user's current one and its session is active; `token_revoked` otherwise. */
  const checkLive = async (claims: { sub: string, sid: string, ver: number }): Promise<SessionState> => {
    const session = await cache.read(claims.sid, () => loadState(claims.sid))
    if (session === null || session.userId !== claims.sub || claims.ver !== session.userVersion ||
        !isActive(session, session.userVersion, clock.now())) {
      throw new DomainError('token_revoked')
    }
    return session
  }

  const inspect = async (accessToken: string): Promise<AccessClaims | null> => {
    try {
      const claims = await accessTokens.verify(accessToken)
      await checkLive(claims)
      return claims
    } catch (err) {
      if (err instanceof DomainError) return null
      throw err
    }
  }

  const loadForRefresh = (sessionId: string) => db.session.findUnique({
    where: { id: sessionId },
    include: { user: { select: { tokenVersion: true } } },
  })

  return {
    async start (user, device) {
      const now = clock.now()
      const id = randomUUID()
      const refreshToken = refreshTokens.fresh(id, user.tokenVersion, 0)
      const insert = (client: Tx) => client.session.create({
        data: {
          id,
          userId: user.id,
          tokenVersion: user.tokenVersion,
          refreshTokenHash: refreshToken.hash,
          refreshGeneration: 0,
          deviceName: device.deviceName ?? null,
          userAgent: device.userAgent ?? null,
          ip: device.ip ?? null,
          createdAt: now,
          lastUsedAt: now,
          expiresAt: new Date(now.getTime() + settings.lifetime * 1000),
        },
        select: { id: true, userId: true, expiresAt: true },
      })
      if (settings.maxPerUser === 0) return tokenPair(await insert(db), user.tokenVersion, refreshToken.token, now)

      const limit = { userId: user.id, keep: id, limit: settings.maxPerUser, now, idleMs }
      const { session, revoked } = await db.$transaction(async (tx) => {
        const version = await lockUser(tx, user.id)
        const session = await insert(tx)
        return { session, revoked: version === null ? [] : await revokeBeyondLimit(tx, version, limit) }
      })
      // As after DELETE /auth/sessions/:id: this instance, the others and the revocation feed.
      for (const sessionId of revoked) {
        cache.sessionChanged(sessionId)
        events.publish({ type: 'session_revoked', reason: 'session_limit', userId: user.id, sessionId, client: { ip: device.ip, userAgent: device.userAgent } })
      }
      return tokenPair(session, user.tokenVersion, refreshToken.token, now)
    },

    async refresh (refreshToken, client) {
      const presented = parseRefreshToken(refreshToken)
      if (presented === undefined) throw new DomainError('refresh_token_invalid')

      // Two passes at most: if a concurrent refresh rotates the token between
      // our read and our conditional write, read again and take the grace path.
      for (let attempt = 0; attempt < 2; attempt++) {
        const now = clock.now()
        const session = await loadForRefresh(presented.sessionId)
        if (session === null || !isActive(session, session.user.tokenVersion, now)) {
          throw new DomainError('refresh_token_invalid')
        }
        if (refreshTokens.isCurrent(session, presented)) {
          const generation = session.refreshGeneration + 1
          const child = refreshTokens.child(session, presented, generation)
          const rotated = await db.session.updateMany({
            where: { id: session.id, refreshTokenHash: presented.hash, revokedAt: null, tokenVersion: session.tokenVersion },
            data: {
              refreshTokenHash: child.hash, refreshGeneration: generation, previousRefreshTokenHash: presented.hash,
              rotatedAt: now, lastUsedAt: now,
            },
          })
          if (rotated.count === 1) {
            cache.sessionTouched(session.id)
            return tokenPair(session, session.tokenVersion, child.token, now)
          }
          continue
        }

        if (!refreshTokens.isSuperseded(session, presented)) throw new DomainError('refresh_token_invalid')

        // A duplicate of the last rotation, in time and from the session's own
        // client: hand back the token that rotation produced (the child of the
        // previous token is the current one exactly when nothing rotated since).
        const inGrace = refreshTokens.isPrevious(session, presented) && session.rotatedAt !== null &&
          now.getTime() - session.rotatedAt.getTime() <= graceMs
        const successor = refreshTokens.child(session, presented, session.refreshGeneration)
        if (inGrace && sameHash(successor.hash, session.refreshTokenHash) && sameClient(session.userAgent, client.userAgent)) {
          events.publish({ type: 'refresh_duplicate_in_grace', userId: session.userId, sessionId: session.id, client })
          return tokenPair(session, session.tokenVersion, successor.token, now)
        }
        await revokeSession({ id: session.id }, 'refresh_token_reused', now)
        events.publish({
          type: 'refresh_token_reused', userId: session.userId, sessionId: session.id, client,
          generationsBehind: presented.generation === undefined ? undefined : session.refreshGeneration - presented.generation,
        })
        throw new DomainError('refresh_token_reused')
      }
      throw new DomainError('refresh_token_invalid')
    },

    inspect,

    async authenticate (accessToken) {
      const claims = await accessTokens.verify(accessToken)
      await checkLive(claims)
      return { userId: claims.sub, sessionId: claims.sid, version: claims.ver }
    },

    async profile (principal) {
      const { user } = await checkLive({ sub: principal.userId, sid: principal.sessionId, ver: principal.version })
      return user
    },

    async end (principal) {
      await revokeSession({ id: principal.sessionId, userId: principal.userId }, 'logout', clock.now())
    },

    async endAll (userId) {
      await versions.bump(userId)
    },

    async keepOnly (principal, passwordUpdate) {
      const now = clock.now()
      const version = principal.version + 1
      // Announced (cache, other instances, revocation feed) once this commits.
      const session = await versions.transaction(async (tx, bump) => {
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
        return { id: principal.sessionId, userId: principal.userId, expiresAt: kept.expiresAt, refreshToken: refreshToken.token }
      })
      return tokenPair(session, version, session.refreshToken, now)
    },

    async list (principal) {
      const now = clock.now()
      const sessions = await db.session.findMany({
        where: {
          userId: principal.userId,
          tokenVersion: principal.version,
          revokedAt: null,
          expiresAt: { gt: now },
          ...(idleMs > 0 && { lastUsedAt: { gt: new Date(now.getTime() - idleMs) } }),
        },
        orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
        select: { id: true, deviceName: true, userAgent: true, ip: true, createdAt: true, lastUsedAt: true, expiresAt: true },
      })
      return sessions.map((session) => ({ ...session, current: session.id === principal.sessionId }))
    },

    async revoke (principal, sessionId) {
      // Session ids are UUIDs; anything else is no one's session (and never reaches the database).
      if (!isUuid(sessionId)) throw new DomainError('not_found')
      const revoked = await revokeSession({ id: sessionId, userId: principal.userId }, 'revoked_by_user', clock.now())
      if (revoked.count === 1) return
      const own = await db.session.count({ where: { id: sessionId, userId: principal.userId } })
      if (own === 0) throw new DomainError('not_found')
    },

    async revokeByToken (token) {
      const now = clock.now()
      const presented = parseRefreshToken(token)
      if (presented === undefined) {
        const claims = await inspect(token)
        if (claims === null) return false
        return (await revokeSession({ id: claims.sid, userId: claims.sub }, 'logout', now)).count > 0
      }
      const session = await loadForRefresh(presented.sessionId)
      if (session === null || !isActive(session, session.user.tokenVersion, now)) return false
      if (!refreshTokens.isCurrent(session, presented) && !refreshTokens.isSuperseded(session, presented)) return false
      return (await revokeSession({ id: session.id }, 'logout', now)).count > 0
    },
  }
}

/** A grace-window duplicate must come from the client the session was started by (compared as stored). */
function sameClient (sessionUserAgent: string | null, userAgent: string | null | undefined): boolean {
  return sessionUserAgent === (userAgent ?? null)
}
