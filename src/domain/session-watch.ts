/**
 * Session watch: tells a web page, within a second, that the session its
 * access token belongs to has ended elsewhere (another device signed it out,
 * logout-all, a password change or reset, revoke-others, account deletion),
 * or that the token itself has expired, so the page need not poll.
 *
 * Everything arrives through the revocation feed (src/domain/revocation-feed.ts),
 * which this module follows as one in-process subscriber while any page
 * watches: revocations committed on this instance or another, pushed after
 * commit, with the feed's safety-net poll behind the push. Work is per
 * instance, not per page: each revocation is looked up in two indexes (by
 * session, by user) and reaches only the watchers it ends.
 *
 * Invariants:
 *
 * - No revocation committed after the token was checked is missed. The check
 *   (request authentication) comes before `watch`; a revocation that reached
 *   this module in between is remembered for `recentMs` (at least the
 *   feed's dedup window, in which it is not sent again, and the session
 *   cache's TTL, the longest the check can have read stale state), and a new
 *   watcher is compared with what is remembered. When nothing was watched
 *   (the feed not followed), the feed's backlog since `recentMs` ago is read
 *   as following starts, after the new watcher is indexed.
 * - A watcher ends once: `ended` is called at most one time, after which it
 *   is forgotten. `watch` never calls back before it has returned.
 * - Memory and timers are bounded: at most `maxWatchers` per process (past
 *   it `service_unavailable`, so pages cannot take the connections that
 *   sign-ins need), at most `maxPerUser` per user (past it `rate_limited`,
 *   so one account cannot take them all); a single timer for all of them, and
 *   expiries kept by second (at most an access token's lifetime of distinct
 *   seconds).
 * - Time is the injected clock's for expiry, so tests move time instead of
 *   sleeping; heartbeats follow real time (they keep connections alive).
 */
import { DomainError } from '../errors.js'
import type { Clock } from './clock.js'
import type { RevocationBatch, RevocationFeed } from './revocation-feed.js'

/** The access token a page watches with, as checked. */
export interface WatchedToken {
  readonly userId: string
  readonly sessionId: string
  /** The token's `ver`: tokens below the user's current tokenVersion are dead. */
  readonly version: number
  /** The token's `exp`, in seconds since the epoch. */
  readonly expiresAt: number
}

/** Why a watch ended. */
export type WatchEnd =
  | { reason: 'revoked', sessionId: string }
  | { reason: 'revoked', minVersion: number }
  | { reason: 'expired' }
  /** The feed cannot read the database: nothing can be promised, the page should reconnect. */
  | { reason: 'failed', err: unknown }

export interface SessionWatcher {
  ended (end: WatchEnd): void
  heartbeat (): void
}

export interface SessionWatch {
  /**
   * Watches `token`'s session until it ends; returns the cancel. Throws
   * `service_unavailable` past `maxWatchers` and `rate_limited` past
   * `maxPerUser`, both with a Retry-After, before anything is kept.
   */
  watch (token: WatchedToken, watcher: SessionWatcher): () => void
  /** Watchers now. */
  readonly size: number
  readonly maxWatchers: number
}

export interface SessionWatchSettings {
  /** Most watchers per process. */
  maxWatchers: number
  /** Most watchers per user. */
  maxPerUser: number
  /** Milliseconds between heartbeats. */
  heartbeatMs: number
  /** Milliseconds a revocation is remembered for watchers that come after it (see the header). */
  recentMs: number
}

/** Milliseconds between heartbeats, unless the connections' idle timeout asks for less. */
export const WATCH_HEARTBEAT_MS = 25_000
/** Watchers per user: one per browser is the SDK's way (one tab watches for all), a few without Web Locks. */
export const MAX_WATCHES_PER_USER = 16
/** Seconds a page refused for want of room is asked to wait (its SDK checks the session meanwhile). */
export const WATCH_FULL_RETRY_AFTER_S = 30
/** Milliseconds between checks for expired tokens: `expired` comes at most this late. */
const TICK_MS = 250
/** A tick this close to a heartbeat's due time counts as due. */
const TICK_SLACK_MS = 20

interface Watch {
  token: WatchedToken
  watcher: SessionWatcher
}

export interface SessionWatchDeps {
  feed: RevocationFeed
  clock: Clock
  settings: SessionWatchSettings
}

export function createSessionWatch ({ feed, clock, settings }: SessionWatchDeps): SessionWatch {
  const { maxWatchers, maxPerUser, heartbeatMs, recentMs } = settings
  const bySession = new Map<string, Set<Watch>>()
  const byUser = new Map<string, Set<Watch>>()
  /** exp (seconds) → the watches that end then. */
  const byExpiry = new Map<number, Set<Watch>>()
  /** Recently revoked sessions → when heard (real time). */
  const revokedSessions = new Map<string, number>()
  /** Users whose version recently moved → the highest minVersion heard, and when. */
  const movedUsers = new Map<string, { minVersion: number, at: number }>()
  let size = 0
  let unfollow: (() => void) | undefined
  let timer: NodeJS.Timeout | undefined

  const index = <K>(map: Map<K, Set<Watch>>, key: K, watch: Watch) => {
    const set = map.get(key)
    if (set === undefined) map.set(key, new Set([watch]))
    else set.add(watch)
  }
  const unindex = <K>(map: Map<K, Set<Watch>>, key: K, watch: Watch) => {
    const set = map.get(key)
    set?.delete(watch)
    if (set?.size === 0) map.delete(key)
  }

  /** Forgets a watch; false if it was already forgotten. Stops following the feed after the last. */
  const remove = (watch: Watch): boolean => {
    const watches = byUser.get(watch.token.userId)
    if (watches === undefined || !watches.has(watch)) return false
    unindex(byUser, watch.token.userId, watch)
    unindex(bySession, watch.token.sessionId, watch)
    unindex(byExpiry, watch.token.expiresAt, watch)
    size -= 1
    if (size === 0) stop()
    return true
  }

  const end = (watch: Watch, reason: WatchEnd) => {
    if (remove(watch)) watch.watcher.ended(reason)
  }

  /** Both records are kept in the order heard (a key heard again moves to the end), so pruning stops at the first fresh entry. */
  const prune = (now: number) => {
    for (const [id, at] of revokedSessions) {
      if (at >= now - recentMs) break
      revokedSessions.delete(id)
    }
    for (const [id, moved] of movedUsers) {
      if (moved.at >= now - recentMs) break
      movedUsers.delete(id)
    }
  }

  const revocations = (batch: RevocationBatch) => {
    const now = Date.now()
    prune(now)
    for (const id of batch.sessions) {
      revokedSessions.delete(id)
      revokedSessions.set(id, now)
      for (const watch of [...bySession.get(id) ?? []]) end(watch, { reason: 'revoked', sessionId: id })
    }
    for (const { id, minVersion } of batch.users) {
      const highest = Math.max(minVersion, movedUsers.get(id)?.minVersion ?? 0)
      movedUsers.delete(id)
      movedUsers.set(id, { minVersion: highest, at: now })
      for (const watch of [...byUser.get(id) ?? []]) {
        if (watch.token.version < minVersion) end(watch, { reason: 'revoked', minVersion })
      }
    }
  }

  /** What ends a token at once: a revocation remembered, or its expiry. */
  const endOf = (token: WatchedToken): WatchEnd | undefined => {
    if (revokedSessions.has(token.sessionId)) return { reason: 'revoked', sessionId: token.sessionId }
    const moved = movedUsers.get(token.userId)
    if (moved !== undefined && token.version < moved.minVersion) return { reason: 'revoked', minVersion: moved.minVersion }
    if (token.expiresAt * 1000 <= clock.now().getTime()) return { reason: 'expired' }
    return undefined
  }

  const all = () => [...byUser.values()].flatMap((watches) => [...watches])

  const start = () => {
    unfollow = feed.follow({
      revocations,
      heartbeat: () => {},
      failed: (err) => { for (const watch of all()) end(watch, { reason: 'failed', err }) },
    }, clock.now().getTime() - recentMs)
    let lastBeat = Date.now()
    timer = setInterval(() => {
      const now = clock.now().getTime()
      for (const [expiresAt, watches] of byExpiry) {
        if (expiresAt * 1000 <= now) for (const watch of [...watches]) end(watch, { reason: 'expired' })
      }
      if (Date.now() - lastBeat >= heartbeatMs - TICK_SLACK_MS) {
        lastBeat = Date.now()
        for (const watch of all()) watch.watcher.heartbeat()
      }
    }, Math.min(TICK_MS, heartbeatMs))
    timer.unref()
  }

  const stop = () => {
    clearInterval(timer)
    timer = undefined
    unfollow?.()
    unfollow = undefined
  }

  return {
    watch (token, watcher) {
      if (size >= maxWatchers) {
        throw new DomainError('service_unavailable', 'This instance already serves as many session watches as it allows; retry later.',
          { retryAfter: WATCH_FULL_RETRY_AFTER_S })
      }
      if ((byUser.get(token.userId)?.size ?? 0) >= maxPerUser) {
        throw new DomainError('rate_limited', 'This account already has as many session watches open as it may; close one or retry later.',
          { retryAfter: WATCH_FULL_RETRY_AFTER_S })
      }
      const watch: Watch = { token, watcher }
      prune(Date.now())
      const endNow = endOf(token)
      index(byUser, token.userId, watch)
      index(bySession, token.sessionId, watch)
      index(byExpiry, token.expiresAt, watch)
      size += 1
      if (unfollow === undefined) start()
      if (endNow !== undefined) queueMicrotask(() => end(watch, endNow))
      return () => { remove(watch) }
    },
    get size () { return size },
    maxWatchers,
  }
}
