/**
 * Sign-out everywhere, in one home. A token is honoured only while the
 * tokenVersion it was issued under is its user's current one (sessions.ts),
 * so raising the version by one, with one UPDATE of one user row, ends
 * every session and token of the user at once, however many there are.
 * Every flow that must end them all (logout-all, revoke-others and a
 * password change, a completed reset, account deletion) does it here, so
 * the two halves of the invariant cannot drift apart:
 *
 * - The bump is one statement on the user row, conditional where the caller
 *   needs it (its token still current, its password still the one it
 *   verified), riding in the caller's transaction with whatever else must
 *   change with it (a new password hash, an erased email). It writes no
 *   session row.
 * - A user whose version was raised is announced only once the change has
 *   committed, and never if it rolled back: this instance's session cache
 *   drops the user's entries at once (before the response is sent), the
 *   other instances hear it through the invalidation bus, and the revocation
 *   feed reads the row back and pushes the new version to resource servers.
 *   Announced earlier, a concurrent read could cache the old state again
 *   from the not yet committed row.
 */
import type { Db } from '../db/client.js'
import type { Prisma } from '../db/generated/sqlite/client.js'
import type { SecurityEvent, SecurityEvents } from './security-events.js'
import type { SessionCache } from './session-cache.js'

/** A transaction's client (`db.$transaction(async (tx) => ...)`). */
export type Tx = Prisma.TransactionClient

export interface BumpConditions {
  /** Bump only if this is still the user's version (the caller's token is current). */
  readonly expectedVersion?: number
  /** Further conditions on the user's row, all of which must hold. */
  readonly where?: Prisma.UserWhereInput
  /** Other columns the same UPDATE writes. */
  readonly data?: Prisma.UserUpdateManyMutationInput
}

/** Raises a user's version by one; the new version, or null when the user is unknown or a condition did not hold. */
export type Bump = (userId: string, conditions?: BumpConditions) => Promise<number | null>

/** Records a security event of the change under way: written in its transaction, published after the commit. */
export type RecordEvent = (event: SecurityEvent) => void

export interface TokenVersions {
  /** Ends every token of the user now: one UPDATE of one row (no transaction, no event), announced. */
  bump: Bump
  /**
   * Runs the work of one change in one transaction. The `bump` it is given
   * raises a version inside that transaction; the `record` writes security
   * events in it (security-events.ts). After the commit each user bumped is
   * announced, in the order bumped, then the events are published; neither
   * if `work` throws or the commit fails.
   */
  transaction<T> (work: (tx: Tx, bump: Bump, record: RecordEvent) => Promise<T>): Promise<T>
}

export interface TokenVersionDeps {
  db: Db
  /** Told of every bump that committed: drops this instance's entries, tells the other instances and the revocation feed. */
  cache: SessionCache
  /** Where the events of a change are written (in its transaction) and published (after). */
  events: SecurityEvents
}

/** The one statement: raises the version of `userId` by one in `client` (a transaction's or the database's). */
async function raise (client: Tx, userId: string, { expectedVersion, where, data }: BumpConditions = {}): Promise<number | null> {
  const [row] = await client.user.updateManyAndReturn({
    where: { ...where, id: userId, ...(expectedVersion !== undefined && { tokenVersion: expectedVersion }) },
    data: { ...data, tokenVersion: { increment: 1 } },
    select: { tokenVersion: true },
  })
  return row?.tokenVersion ?? null
}

export function createTokenVersions ({ db, cache, events }: TokenVersionDeps): TokenVersions {
  return {
    async bump (userId, conditions) {
      const version = await raise(db, userId, conditions)
      if (version !== null) cache.userChanged(userId)
      return version
    },

    async transaction (work) {
      const bumped = new Set<string>()
      const recorded: SecurityEvent[] = []
      const result = await db.$transaction(async (tx) => {
        const result = await work(tx, async (userId, conditions) => {
          const version = await raise(tx, userId, conditions)
          if (version !== null) bumped.add(userId)
          return version
        }, (event) => { recorded.push(event) })
        await events.write(tx, recorded)
        return result
      })
      for (const userId of bumped) cache.userChanged(userId)
      for (const event of recorded) events.publish(event)
      return result
    },
  }
}
