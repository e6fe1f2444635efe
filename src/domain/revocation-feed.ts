/**
 * The revocation feed that resource servers follow (GET /auth/revocations),
 * so their verifiers can reject revoked tokens without calling vouch per
 * request. It needs no table of its own, so a version bump stays one UPDATE:
 * the changes are read back from the rows that revocations already write,
 *
 * - users whose row changed (`updatedAt`; a bump always changes it): their
 *   current tokenVersion, below which every token is dead;
 * - sessions revoked (`revokedAt`).
 *
 * Why no revocation can be missed, however long its transaction waited:
 *
 * 1. Pushed after commit. Every revocation, on this instance or another,
 *    reaches this instance as an invalidation once its transaction has
 *    committed (this instance's own writes directly; others' through the
 *    invalidation bus). The feed then reads that one row by primary key and
 *    pushes what it finds to every connected stream. Timestamps play no part,
 *    so a statement that waited seconds on a lock is pushed the moment it
 *    commits.
 * 2. Polled as the safety net, for a push that never came (an instance that
 *    died between its commit and its publish, a bus outage: while the bus is
 *    down, every 250 ms instead of every heartbeat). Timestamps are
 *    assigned before the statement commits, but never longer before than the
 *    database lets a write wait: a pool connection within DB_CONNECT_TIMEOUT_MS,
 *    then a statement or transaction within DB_STATEMENT_TIMEOUT_MS (enforced
 *    by the database and by Prisma's transaction timeout). Each poll re-reads
 *    `overlapMs` before its cursor, at least that bound plus clock skew between
 *    instances, so a row committed after one poll has a timestamp the next
 *    poll still reads.
 * 3. Cursors only ever come from polls, so a verifier that reconnects with
 *    its cursor is sent everything committed since, by the same argument.
 *
 * Work is per instance, not per stream: one poll per heartbeat and one read
 * per revocation, fanned out to every stream, so the database statements a
 * revocation costs do not grow with the number of connected verifiers. Only
 * the last `maxTokenAge` seconds matter (no older token can still be valid),
 * so a verifier's memory is bounded by recent revocations, not by the number
 * of users. Events are idempotent: a stream may see one twice.
 *
 * Streams are counted and capped (`maxStreams` per process): past the cap a
 * new one is refused with `service_unavailable` before it costs anything, so
 * verifiers cannot take the connections that sign-ins need; a verifier given
 * several vouch URLs moves on to the next.
 *
 * In-process consumers that fan out on their own (the session watch of web
 * pages, src/domain/session-watch.ts) `follow` the feed instead: one
 * subscriber each, not counted against `maxStreams`, sent first what was
 * revoked since a given time (as a stream gets its backlog: read after
 * subscribing, so nothing falls between the two).
 */
import type { Db } from '../db/client.js'
import { DomainError } from '../errors.js'
import type { Clock } from './clock.js'
import type { RevocationBatch } from '@vouch/verifier/protocol'
import type { Invalidation, InvalidationBus, SessionCache } from './session-cache.js'

/** The feed's batch shape is a wire contract: it lives with the verifier that reads it. */
export type { RevocationBatch }

/** A connected stream, as the feed sees it. */
export interface FeedSubscriber {
  revocations (batch: RevocationBatch): void
  heartbeat (): void
  /** The feed cannot read the database: the stream should end (its verifier reconnects with its cursor). */
  failed (err: unknown): void
}

export interface RevocationFeed {
  /** Seconds after which an event no longer matters (the longest an access token lives). */
  readonly maxTokenAge: number
  /** Milliseconds between heartbeats (and safety-net polls). */
  readonly heartbeatMs: number
  /** Everything revoked since `since` (re-read with the overlap), and the cursor to resume from. */
  changesSince (since: number): Promise<RevocationBatch>
  /**
   * Follows every revocation from now on; returns the unsubscribe. Throws
   * `service_unavailable` (with a Retry-After) when `maxStreams` streams
   * are already subscribed.
   */
  subscribe (subscriber: FeedSubscriber): () => void
  /**
   * Follows every revocation like a stream, but is not counted against
   * `maxStreams`; the subscriber is first sent everything revoked since
   * `since` (`failed` if that cannot be read). Returns the unfollow.
   */
  follow (subscriber: FeedSubscriber, since: number): () => void
  /** Streams subscribed now (at most `maxStreams`; followers not counted). */
  readonly subscribers: number
  readonly maxStreams: number
}

export interface RevocationFeedSettings {
  maxTokenAge: number
  heartbeatMs: number
  /** How far before its cursor each poll re-reads: the longest a write's timestamp can precede its commit, plus clock skew. */
  overlapMs: number
  /** Most streams subscribed at once; further ones are refused. */
  maxStreams: number
}

/** Seconds a verifier refused for want of a stream is asked to wait (one with another vouch URL tries that at once). */
export const FEED_FULL_RETRY_AFTER_S = 5

export interface RevocationFeedDeps {
  db: Db
  clock: Clock
  cache: SessionCache
  bus: InvalidationBus
  settings: RevocationFeedSettings
  onError?: (message: string, err: unknown) => void
}

/** Milliseconds between polls while the invalidation bus is down (other instances' pushes cannot arrive). */
const BUS_DOWN_POLL_MS = 250
/** A tick this close to a heartbeat's due time counts as due (timers fire a little late or early). */
const TICK_SLACK_MS = 20

export function createRevocationFeed ({ db, clock, cache, bus, settings, onError = () => {} }: RevocationFeedDeps): RevocationFeed {
  const { maxTokenAge, heartbeatMs, overlapMs, maxStreams } = settings
  /** Streams and followers: everything the feed fans out to. */
  const subscribers = new Set<FeedSubscriber>()
  /** Of those, the streams counted against maxStreams. */
  let streams = 0
  /** What every stream has been sent lately (`u:<id>:<version>`, `s:<id>`) → when; polls skip it. */
  const sent = new Map<string, number>()
  let cursor = 0
  let timer: NodeJS.Timeout | undefined
  let polling = false
  let pollAgain = false

  const changesSince = async (since: number): Promise<RevocationBatch> => {
    const now = clock.now().getTime()
    const from = new Date(Math.max(since - overlapMs, now - maxTokenAge * 1000))
    const [users, sessions] = await Promise.all([
      db.user.findMany({ where: { updatedAt: { gt: from }, tokenVersion: { gt: 0 } }, select: { id: true, tokenVersion: true } }),
      db.session.findMany({ where: { revokedAt: { gt: from } }, select: { id: true } }),
    ])
    return {
      users: users.map((user) => ({ id: user.id, minVersion: user.tokenVersion })),
      sessions: sessions.map((session) => session.id),
      cursor: now,
    }
  }

  /** Sends what has not been sent yet to every stream. */
  const fanOut = (batch: RevocationBatch) => {
    const now = clock.now().getTime()
    for (const [key, at] of sent) if (at < now - 2 * overlapMs) sent.delete(key)
    const fresh = (key: string) => {
      if (sent.has(key)) return false
      sent.set(key, now)
      return true
    }
    const users = batch.users.filter((user) => fresh(`u:${user.id}:${user.minVersion}`))
    const sessions = batch.sessions.filter((id) => fresh(`s:${id}`))
    if (users.length === 0 && sessions.length === 0) return
    for (const subscriber of subscribers) subscriber.revocations({ users, sessions, cursor: batch.cursor })
  }

  const fail = (message: string, err: unknown) => {
    onError(message, err)
    for (const subscriber of [...subscribers]) subscriber.failed(err)
  }

  const poll = async () => {
    if (polling) { pollAgain = true; return }
    polling = true
    try {
      do {
        pollAgain = false
        const batch = await changesSince(cursor)
        cursor = batch.cursor
        fanOut(batch)
      } while (pollAgain && subscribers.size > 0)
    } catch (err) {
      fail('revocation feed: cannot read changes; closing the streams', err)
    } finally {
      polling = false
    }
  }

  /** One committed revocation, read back by primary key and pushed at once. */
  const push = async (event: Invalidation) => {
    try {
      if (event.kind === 'user') {
        const user = await db.user.findUnique({ where: { id: event.id }, select: { tokenVersion: true } })
        if (user !== null && user.tokenVersion > 0) fanOut({ users: [{ id: event.id, minVersion: user.tokenVersion }], sessions: [], cursor })
      } else {
        const session = await db.session.findUnique({ where: { id: event.id }, select: { revokedAt: true } })
        if (session?.revokedAt != null) fanOut({ users: [], sessions: [event.id], cursor })
      }
    } catch (err) {
      fail('revocation feed: cannot read a revocation; closing the streams', err)
    }
  }

  /** Adds a subscriber, starting the heartbeat on the first; returns its removal, which stops the heartbeat after the last. */
  const add = (subscriber: FeedSubscriber): () => void => {
    subscribers.add(subscriber)
    if (timer === undefined) {
      cursor = clock.now().getTime()
      let lastBeat = Date.now()
      // Heartbeat and poll every heartbeatMs; while the bus is down, other
      // instances' revocations arrive only by polling, so poll more often.
      timer = setInterval(() => {
        if (Date.now() - lastBeat >= heartbeatMs - TICK_SLACK_MS) {
          lastBeat = Date.now()
          for (const each of subscribers) each.heartbeat()
          void poll()
        } else if (!bus.healthy) {
          void poll()
        }
      }, Math.min(heartbeatMs, BUS_DOWN_POLL_MS))
      timer.unref()
    }
    return () => {
      subscribers.delete(subscriber)
      if (subscribers.size === 0 && timer !== undefined) {
        clearInterval(timer)
        timer = undefined
        sent.clear()
      }
    }
  }

  cache.onInvalidation((event) => { if (subscribers.size > 0) void push(event) })
  // Messages may have been lost while the bus was away: poll at once.
  bus.onReconnect(() => { if (subscribers.size > 0) void poll() })

  return {
    maxTokenAge,
    heartbeatMs,
    changesSince,
    maxStreams,
    subscribe (subscriber) {
      if (streams >= maxStreams) {
        throw new DomainError('service_unavailable', 'This instance already serves as many revocation-feed streams as it allows; retry later or at another instance.',
          { retryAfter: FEED_FULL_RETRY_AFTER_S })
      }
      streams += 1
      const leave = add(subscriber)
      return () => {
        if (!subscribers.has(subscriber)) return
        streams -= 1
        leave()
      }
    },
    follow (subscriber, since) {
      const leave = add(subscriber)
      changesSince(since).then((backlog) => {
        if (subscribers.has(subscriber)) subscriber.revocations(backlog)
      }, (err) => {
        onError('revocation feed: cannot read the backlog of a follower', err)
        if (subscribers.has(subscriber)) subscriber.failed(err)
      })
      return leave
    },
    get subscribers () { return streams },
  }
}
