/**
 * The per-user session limit (MAX_SESSIONS_PER_USER). Invariants:
 *
 * - A sign-in that would leave more than `limit` active sessions revokes
 *   the user's least recently used ones (oldest lastUsedAt, i.e. last
 *   refreshed or started longest ago), in the same transaction that inserts
 *   the new session: the new session is never the one revoked, and no
 *   committed state ever has more than `limit` active sessions.
 * - Concurrent sign-ins of one user are serialized on the user's row: the
 *   transaction first writes it (a no-op UPDATE, which takes PostgreSQL's
 *   row lock, and SQLite's write lock across processes), so each counts the
 *   sessions that the ones before it committed. A no-op write in raw SQL,
 *   so that `updatedAt` does not move and the revocation feed sees nothing.
 * - Sessions revoked here are revoked as DELETE /auth/sessions/:id revokes
 *   one (revokedAt set, reason `session_limit`); the caller announces each
 *   to the session cache after the commit, which reaches the other
 *   instances and the revocation feed.
 */
import { activeSessionsOf } from './session-kit.js'
import type { Tx } from './token-version.js'

export interface LimitScope {
  readonly userId: string
  /** The session just inserted: kept, and counted as one of the `limit`. */
  readonly keep: string
  /** At least 1. */
  readonly limit: number
  readonly now: Date
  /** Milliseconds without use after which a session lapses; 0 = no idle limit. */
  readonly idleMs: number
}

/**
 * Locks the user's row for the rest of `tx` and returns the user's current
 * tokenVersion (null for an unknown user). Must be `tx`'s first statement.
 */
export async function lockUser (tx: Tx, userId: string): Promise<number | null> {
  const rows = await tx.$queryRaw<Array<{ tokenVersion: number | bigint }>>`
    UPDATE users SET "tokenVersion" = "tokenVersion" WHERE id = ${userId} RETURNING "tokenVersion"`
  return rows.length === 0 ? null : Number(rows[0]!.tokenVersion)
}

/** Revokes the user's least recently used active sessions beyond the limit; their ids (announce them after the commit). */
export async function revokeBeyondLimit (tx: Tx, version: number, { userId, keep, limit, now, idleMs }: LimitScope): Promise<string[]> {
  const others = await tx.session.findMany({
    where: { ...activeSessionsOf(userId, version, now, idleMs), id: { not: keep } },
    orderBy: [{ lastUsedAt: 'desc' }, { createdAt: 'desc' }, { id: 'desc' }],
    // The `limit - 1` most recently used stay (with the new one); only the rest is read.
    skip: limit - 1,
    select: { id: true },
  })
  const excess = others.map((session) => session.id)
  if (excess.length === 0) return []
  await tx.session.updateMany({
    where: { id: { in: excess }, revokedAt: null },
    data: { revokedAt: now, revokedReason: 'session_limit' },
  })
  return excess
}
