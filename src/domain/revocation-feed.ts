/**
 * The revocation feed that resource servers follow (GET /auth/revocations),
 * so their verifiers can reject revoked tokens without calling vouch per
 * request. It needs no table of its own, so a version bump stays one UPDATE:
 * the changes are read back from the rows that revocations already write,
 *
 * - users whose row changed (`updatedAt`; a bump always changes it): their
 *   current tokenVersion, below which every token is dead;
 * - sessions revoked (`revokedAt`),
 *
 * since a cursor (epoch ms). Only the last `maxTokenAge` seconds matter (no
 * older token can still be valid), so a verifier's memory is bounded by
 * recent revocations, not by the number of users. Cursors are re-read with an
 * overlap to cover clock skew between instances; events are idempotent.
 */
import type { Db } from '../db/client.js'
import type { Clock } from './clock.js'
import type { SessionCache } from './session-cache.js'

export interface RevocationBatch {
  /** Users and the lowest tokenVersion still valid for each. */
  users: Array<{ id: string, minVersion: number }>
  /** Revoked session ids. */
  sessions: string[]
  /** Pass back as `since` to get what came after. */
  cursor: number
}

export interface RevocationFeed {
  /** Seconds after which an event no longer matters (the longest an access token lives). */
  readonly maxTokenAge: number
  changesSince (since: number): Promise<RevocationBatch>
  /** Calls `listener` whenever something may have been revoked (here or on another instance); returns the unsubscribe. */
  watch (listener: () => void): () => void
}

/** Re-read this much before a cursor: clocks of instances may differ a little. */
const OVERLAP_MS = 2000

export function createRevocationFeed ({ db, clock, cache, maxTokenAge }: { db: Db, clock: Clock, cache: SessionCache, maxTokenAge: number }): RevocationFeed {
  const listeners = new Set<() => void>()
  cache.onInvalidation(() => { for (const listener of listeners) listener() })

  return {
    maxTokenAge,
    async changesSince (since) {
      const now = clock.now().getTime()
      const from = new Date(Math.max(since - OVERLAP_MS, now - maxTokenAge * 1000))
      const [users, sessions] = await Promise.all([
        db.user.findMany({ where: { updatedAt: { gt: from }, tokenVersion: { gt: 0 } }, select: { id: true, tokenVersion: true } }),
        db.session.findMany({ where: { revokedAt: { gt: from } }, select: { id: true } }),
      ])
      return {
        users: users.map((user) => ({ id: user.id, minVersion: user.tokenVersion })),
        sessions: sessions.map((session) => session.id),
        cursor: now,
      }
    },
    watch (listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
