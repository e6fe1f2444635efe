/**
 * Refresh-token rotation. A refresh token names its session and its
 * generation (refresh-tokens.ts); only a hash is stored and lookups are by
 * primary key. Every refresh rotates it, deterministically, so concurrent
 * refreshes with one token all get the same new token (no second chain).
 * The previous token stays usable for the grace window only as a duplicate
 * of the rotation that already happened, and only from the client the
 * session belongs to (same user agent); the live successor is handed back
 * and the duplicate is reported. Any superseded token presented otherwise
 * (later, from another client, or any number of rotations back) is a
 * replay: the session is revoked (committed before answering) and the
 * caller gets `refresh_token_reused`.
 */
import { DomainError, refusal } from '../errors.js'
import { sameHash } from '../crypto/secrets.js'
import { parseRefreshToken } from './refresh-tokens.js'
import type { SessionKit } from './session-kit.js'
import type { Sessions } from './sessions.js'

export type SessionRotation = Pick<Sessions, 'refresh'>

export function createSessionRotation ({ db, clock, cache, events, refreshTokens, graceMs, isActive, tokenPair, revokeSession, loadForRefresh }: SessionKit): SessionRotation {
  return {
    async refresh (refreshToken, client) {
      const presented = parseRefreshToken(refreshToken)
      if (presented === undefined) throw new DomainError('refresh_token_invalid')

      // Two passes at most: if a concurrent refresh rotates the token between
      // our read and our conditional write, read again and take the grace path.
      for (let attempt = 0; attempt < 2; attempt++) {
        const now = clock.now()
        const session = await loadForRefresh(presented.sessionId)
        if (session === null || !isActive(session, session.user.tokenVersion, now)) {
          throw refusal('refresh_token_invalid', { sessionId: presented.sessionId, userId: session?.userId, why: session === null ? 'unknown session' : 'session not active' })
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

        if (!refreshTokens.isSuperseded(session, presented)) {
          throw refusal('refresh_token_invalid', { sessionId: session.id, userId: session.userId, why: 'not a token of this session' })
        }

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
        await revokeSession({ id: session.id }, 'refresh_token_reused', now, (userId) => ({
          type: 'refresh_token_reused', userId, sessionId: session.id, client,
          generationsBehind: presented.generation === undefined ? undefined : session.refreshGeneration - presented.generation,
        }))
        throw refusal('refresh_token_reused', { sessionId: session.id, userId: session.userId })
      }
      throw new DomainError('refresh_token_invalid')
    },

  }
}

/** A grace-window duplicate must come from the client the session was started by (compared as stored). */
function sameClient (sessionUserAgent: string | null, userAgent: string | null | undefined): boolean {
  return sessionUserAgent === (userAgent ?? null)
}
