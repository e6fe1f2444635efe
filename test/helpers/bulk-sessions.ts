/**
 * What the O(1) sign-out-everywhere tests share: many sessions on file for
 * one user, a fingerprint of every session row, and the check that a bump
 * wrote exactly one UPDATE of the users table and its security event, and
 * nothing to sessions.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import type { Db } from '../../src/db/client.js'

/** Inserts `count` active sessions of `userId` (1,000 per statement); returns a fingerprint of every session row. */
export async function seedSessions (db: Db, userId: string, count: number): Promise<() => Promise<string>> {
  const now = new Date()
  const rows = Array.from({ length: count }, (_, i) => ({
    id: randomUUID(),
    userId,
    tokenVersion: 0,
    refreshTokenHash: `seeded-${i}`,
    createdAt: now,
    lastUsedAt: now,
    expiresAt: new Date(now.getTime() + 86_400_000),
  }))
  for (let i = 0; i < rows.length; i += 1000) await db.session.createMany({ data: rows.slice(i, i + 1000) })
  return async () => createHash('sha256').update(JSON.stringify(await db.session.findMany({ orderBy: { id: 'asc' } }))).digest('hex')
}

/** The statements of one version bump: one UPDATE of users, one INSERT of its event, no write to sessions. */
export function assertOneBump (t: Test, statements: readonly string[]): void {
  const writes = statements.filter((sql) => /^\s*(UPDATE|INSERT|DELETE)/i.test(sql))
  t.equal(writes.length, 2, `exactly two write statements: ${JSON.stringify(writes)}`)
  t.match(writes[0], /^UPDATE\s+([`"]?\w+[`"]?\.)?[`"]?users[`"]?\s/i, 'the first updates the users table')
  t.match(writes[1], /^INSERT\s+INTO\s+([`"]?\w+[`"]?\.)?[`"]?security_events[`"]?\s/i, 'the second records the event, in the same transaction')
  t.notOk(statements.some((sql) => /UPDATE\s+\S*sessions|DELETE\s+FROM\s+\S*sessions/i.test(sql)), 'no statement writes to sessions')
}
