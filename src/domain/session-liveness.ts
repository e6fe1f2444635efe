/**
 * Token liveness: whether an access token vouch issued is still honoured.
 * Its signature and claims are checked (access-tokens.ts), then its
 * version must be its user's current one and its session active, read
 * through the session cache so the authenticated hot path costs no query
 * while the cache holds the session (session-cache.ts says when it may).
 */
import { DomainError, refusal } from '../errors.js'
import type { AccessClaims } from './access-tokens.js'
import type { SessionState } from './session-cache.js'
import type { SessionKit } from './session-kit.js'
import type { Sessions } from './sessions.js'

export type SessionLiveness = Pick<Sessions, 'authenticate' | 'profile' | 'inspect'>

export function createSessionLiveness ({ db, clock, accessTokens, cache, isActive }: SessionKit): SessionLiveness {
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
      throw refusal('token_revoked', { sessionId: claims.sid, userId: claims.sub })
    }
    return session
  }

  return {
    async inspect (accessToken: string): Promise<AccessClaims | null> {
      try {
        const claims = await accessTokens.verify(accessToken)
        await checkLive(claims)
        return claims
      } catch (err) {
        if (err instanceof DomainError) return null
        throw err
      }
    },

    async authenticate (accessToken) {
      const claims = await accessTokens.verify(accessToken)
      await checkLive(claims)
      return { userId: claims.sub, sessionId: claims.sid, version: claims.ver }
    },

    async profile (principal) {
      const { user } = await checkLive({ sub: principal.userId, sid: principal.sessionId, ver: principal.version })
      return user
    },

  }
}
