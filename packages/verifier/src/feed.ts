/**
 * The verifier's copy of vouch's revocation state, kept by following the
 * revocation feed (server-sent events, client credentials; the wire protocol
 * is in ./protocol.ts): for the longest an access token lives, each user's
 * lowest valid version and the revoked session ids.
 *
 * Invariant: the state is trusted only while it is known to be current.
 * - Connected (`ready` applied on the open stream): while an event or a
 *   heartbeat was heard within `maxSilenceMs`, the last resort against an
 *   instance that keeps the connection open but says nothing.
 * - Disconnected: for at most `maxDisconnectedMs` after the stream was lost,
 *   the time to reconnect, since the `ready` of the new stream replays every
 *   revocation since the cursor. A lost stream is followed up at once on the
 *   next URL (every instance of a deployment serves the same feed); it backs
 *   off only after every URL has failed in a row, by the server's `retry`
 *   when it sent one.
 * Every one of these decisions reads the injected clock.
 */
import type { Clock } from './options.js'
import { FEED_CURSOR_PARAM, FEED_EVENTS, parseFeedReady, parseRevocationBatch, type RevocationBatch } from './protocol.js'
import { createEventStreamParser } from './sse.js'

export interface FeedOptions {
  /** Feed URLs of instances of one deployment, tried in turn. */
  urls: readonly string[]
  /** Authorization header (the client credentials). */
  authorization: string
  maxSilenceMs: number
  maxDisconnectedMs: number
  clock: Clock
}

/**
 * Where the feed stands, for a resource server's health check or logs.
 *
 * @example
 * app.get('/health', () => ({ ok: verifier.feedStatus().live }))
 */
export interface FeedStatus {
  /** The revocation state may be trusted now (see `Verifier.feedLive`). */
  readonly live: boolean
  /** A stream is open and has delivered `ready`. */
  readonly connected: boolean
  /** The cursor the next connection resumes from. */
  readonly cursor: number
  /** When (clock milliseconds) the feed was last heard from: an event or a heartbeat; undefined before the first `ready`. */
  readonly lastHeardAt: number | undefined
  /** The reconnection time the server asked for with `retry`, if it did. */
  readonly retryMs: number | undefined
}

export interface FollowedFeed {
  /** True while the state may be trusted (see the invariant above). */
  readonly live: boolean
  status (): FeedStatus
  /** Whether a token of this user, session and version has been revoked, as far as the state knows. */
  revoked (sub: string, sid: string, ver: number): boolean
  /** Resolves once the feed has delivered its first state (or rejects after `timeoutMs`). */
  ready (timeoutMs: number): Promise<void>
  close (): void
}

/** An attempt that has not delivered `ready` within this long is dropped for the next URL. */
const CONNECT_TIMEOUT_MS = 2000
/** A connection that lasted less than this counts as failed, so a server that drops every stream is not hammered. */
const STABLE_MS = 1000
/** Back-off after a full round of failures: doubles from BACKOFF_MS (or the server's `retry`) up to MAX_BACKOFF_MS, with jitter. */
const BACKOFF_MS = 200
const MAX_BACKOFF_MS = 2000

/** Timers must not keep a Node process alive; elsewhere there is nothing to do. */
const unref = (timer: unknown) => { (timer as { unref?: () => void } | undefined)?.unref?.() }

export function followRevocationFeed ({ urls, authorization, maxSilenceMs, maxDisconnectedMs, clock }: FeedOptions): FollowedFeed {
  const minVersions = new Map<string, { version: number, until: number }>()
  const revokedSessions = new Map<string, number>()
  let maxTokenAgeMs = 15 * 60_000
  let cursor = 0
  /** The reconnection time the server asked for (`retry`), if it did. */
  let retryMs: number | undefined

  let synced = false
  let connected = false
  let lastHeard = 0
  let lostAt = -Infinity
  let closed = false
  let abort: AbortController | undefined
  let wake: (() => void) | undefined
  const readyWaiters: Array<() => void> = []

  const apply = (batch: RevocationBatch) => {
    const until = clock.now() + maxTokenAgeMs
    for (const { id, minVersion } of batch.users) {
      const known = minVersions.get(id)
      if (known === undefined || minVersion >= known.version) minVersions.set(id, { version: minVersion, until })
    }
    for (const id of batch.sessions) revokedSessions.set(id, until)
    cursor = Math.max(cursor, batch.cursor)
  }

  const prune = () => {
    const now = clock.now()
    for (const [id, entry] of minVersions) if (entry.until <= now) minVersions.delete(id)
    for (const [id, until] of revokedSessions) if (until <= now) revokedSessions.delete(id)
  }

  const live = () => {
    if (!synced) return false
    const now = clock.now()
    return now - lastHeard <= maxSilenceMs && (connected || now - lostAt <= maxDisconnectedMs)
  }

  /** One connection: reads events until the stream ends, fails, or stays silent. Returns how long it was ready (0 if never). */
  const follow = async (url: string): Promise<number> => {
    const controller = abort = new AbortController()
    const startedAt = clock.now()
    let readyAt: number | undefined
    const watchdog = setInterval(() => {
      const now = clock.now()
      if (readyAt === undefined ? now - startedAt > CONNECT_TIMEOUT_MS : now - lastHeard > maxSilenceMs) controller.abort()
    }, Math.max(10, Math.min(250, maxSilenceMs / 2)))
    unref(watchdog)
    // Only a complete event or comment (the heartbeat) after `ready` counts as hearing from the feed.
    const heard = () => { if (readyAt !== undefined) lastHeard = clock.now() }
    const parser = createEventStreamParser({
      onEvent: (event) => {
        if (event.type === FEED_EVENTS.ready) {
          // `ready` carries the backlog since our cursor: only once it is applied is the state current.
          const ready = parseFeedReady(event.data)
          maxTokenAgeMs = ready.maxTokenAge * 1000
          apply(ready)
          readyAt = clock.now()
          synced = true
          connected = true
          for (const resolve of readyWaiters.splice(0)) resolve()
        } else if (event.type === FEED_EVENTS.revocations) {
          apply(parseRevocationBatch(event.data))
        }
        heard()
      },
      onComment: heard,
      onRetry: (ms) => { retryMs = ms },
    })
    try {
      const res = await fetch(`${url}?${FEED_CURSOR_PARAM}=${cursor}`, {
        headers: { authorization, accept: 'text/event-stream' },
        signal: controller.signal,
      })
      if (!res.ok || res.body === null) throw new Error(`the revocation feed at ${url} answered ${res.status}`)
      const reader = res.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        parser.push(value)
        prune()
      }
      parser.end()
    } finally {
      clearInterval(watchdog)
      controller.abort()
      if (connected) {
        connected = false
        lostAt = clock.now()
      }
    }
    return readyAt === undefined ? 0 : clock.now() - readyAt
  }

  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    unref(timer)
    wake = () => { clearTimeout(timer); resolve() }
  })

  const run = async () => {
    let next = 0
    let failures = 0
    while (!closed) {
      const url = urls[next]!
      next = (next + 1) % urls.length
      let lasted = 0
      try {
        lasted = await follow(url)
      } catch {
        // The state says so: not live once the bounds pass. Try the next URL.
      }
      if (closed) break
      failures = lasted >= STABLE_MS ? 0 : failures + 1
      if (failures >= urls.length) {
        const doubling = 2 ** (failures - urls.length)
        // The server's `retry` is the least wait (jitter only adds to it); our own default may be halved by jitter.
        await pause(retryMs === undefined
          ? Math.min(BACKOFF_MS * doubling, MAX_BACKOFF_MS) * (0.5 + Math.random() / 2)
          : Math.min(retryMs * doubling, Math.max(retryMs, MAX_BACKOFF_MS)) * (1 + Math.random() / 2))
      }
    }
  }
  void run()

  return {
    get live () { return live() },

    status () {
      return { live: live(), connected, cursor, lastHeardAt: synced ? lastHeard : undefined, retryMs }
    },

    revoked (sub, sid, ver) {
      const min = minVersions.get(sub)
      return (min !== undefined && ver < min.version) || revokedSessions.has(sid)
    },

    ready (timeoutMs) {
      if (synced) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the revocation feed did not connect')), timeoutMs)
        readyWaiters.push(() => { clearTimeout(timer); resolve() })
      })
    },

    close () {
      closed = true
      abort?.abort()
      wake?.()
    },
  }
}
