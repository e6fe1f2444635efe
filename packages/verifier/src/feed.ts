/**
 * The verifier's copy of vouch's revocation state, kept by following the
 * revocation feed (server-sent events at /auth/revocations, client
 * credentials): for the longest an access token lives, each user's lowest
 * valid version and the revoked session ids. Wire protocol: `ready`
 * {maxTokenAge, heartbeatMs, users, sessions, cursor} carries the backlog
 * since `?since=<cursor>`, then `revocations` {users, sessions, cursor} and
 * `: heartbeat` comments.
 *
 * Invariant: the state is trusted only while it is known to be current.
 * - Connected (`ready` applied on the open stream): while an event or a
 *   heartbeat was heard within `maxSilenceMs`, the last resort against an
 *   instance that keeps the connection open but says nothing.
 * - Disconnected: for at most `maxDisconnectedMs` after the stream was lost,
 *   the time to reconnect, since the `ready` of the new stream replays every
 *   revocation since the cursor. A lost stream is followed up at once on the
 *   next URL (every instance of a deployment serves the same feed); it backs
 *   off only after every URL has failed in a row.
 */

interface Batch { users: Array<{ id: string, minVersion: number }>, sessions: string[], cursor: number }

export interface FeedOptions {
  /** Feed URLs of instances of one deployment, tried in turn. */
  urls: string[]
  /** Authorization header (the client credentials). */
  authorization: string
  maxSilenceMs: number
  maxDisconnectedMs: number
}

export interface FollowedFeed {
  /** True while the state may be trusted (see the invariant above). */
  readonly live: boolean
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
/** Back-off after a full round of failures: doubles from BACKOFF_MS up to MAX_BACKOFF_MS, with jitter. */
const BACKOFF_MS = 200
const MAX_BACKOFF_MS = 2000

/** Timers must not keep a Node process alive; elsewhere there is nothing to do. */
const unref = (timer: unknown) => { (timer as { unref?: () => void }).unref?.() }

export function followRevocationFeed ({ urls, authorization, maxSilenceMs, maxDisconnectedMs }: FeedOptions): FollowedFeed {
  const minVersions = new Map<string, { version: number, until: number }>()
  const revokedSessions = new Map<string, number>()
  let maxTokenAgeMs = 15 * 60_000
  let cursor = 0

  let synced = false
  let connected = false
  let lastHeard = 0
  let lostAt = -Infinity
  let closed = false
  let abort: AbortController | undefined
  let wake: (() => void) | undefined
  const readyWaiters: Array<() => void> = []

  const apply = (batch: Batch) => {
    const until = Date.now() + maxTokenAgeMs
    for (const { id, minVersion } of batch.users) {
      const known = minVersions.get(id)
      if (known === undefined || minVersion >= known.version) minVersions.set(id, { version: minVersion, until })
    }
    for (const id of batch.sessions) revokedSessions.set(id, until)
    cursor = Math.max(cursor, batch.cursor)
  }

  const prune = () => {
    const now = Date.now()
    for (const [id, entry] of minVersions) if (entry.until <= now) minVersions.delete(id)
    for (const [id, until] of revokedSessions) if (until <= now) revokedSessions.delete(id)
  }

  const live = () => {
    if (!synced) return false
    const now = Date.now()
    return now - lastHeard <= maxSilenceMs && (connected || now - lostAt <= maxDisconnectedMs)
  }

  /** One connection: reads events until the stream ends, fails, or stays silent. Returns how long it was ready (0 if never). */
  const follow = async (url: string): Promise<number> => {
    const controller = abort = new AbortController()
    const startedAt = Date.now()
    let readyAt: number | undefined
    const watchdog = setInterval(() => {
      const now = Date.now()
      if (readyAt === undefined ? now - startedAt > CONNECT_TIMEOUT_MS : now - lastHeard > maxSilenceMs) controller.abort()
    }, Math.max(10, Math.min(250, maxSilenceMs / 2)))
    unref(watchdog)
    try {
      const res = await fetch(`${url}?since=${cursor}`, {
        headers: { authorization, accept: 'text/event-stream' },
        signal: controller.signal,
      })
      if (!res.ok || res.body === null) throw new Error(`the revocation feed at ${url} answered ${res.status}`)
      const reader = res.body.getReader()
      const decoder = new TextDecoder()
      let buffer = ''
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.+)$/m.exec(block)?.[1]
          const data = /^data: (.+)$/m.exec(block)?.[1]
          if (event === 'ready' && data) {
            // `ready` carries the backlog since our cursor: only once it is applied is the state current.
            const ready = JSON.parse(data) as Batch & { maxTokenAge: number }
            maxTokenAgeMs = ready.maxTokenAge * 1000
            apply(ready)
            readyAt = Date.now()
            synced = true
            connected = true
            for (const resolve of readyWaiters.splice(0)) resolve()
          } else if (event === 'revocations' && data) {
            apply(JSON.parse(data) as Batch)
          }
          // Only a complete event or heartbeat after `ready` counts as hearing from the feed.
          if (readyAt !== undefined) lastHeard = Date.now()
        }
        prune()
      }
    } finally {
      clearInterval(watchdog)
      controller.abort()
      if (connected) {
        connected = false
        lostAt = Date.now()
      }
    }
    return readyAt === undefined ? 0 : Date.now() - readyAt
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
        const backoff = Math.min(BACKOFF_MS * 2 ** (failures - urls.length), MAX_BACKOFF_MS)
        await pause(backoff * (0.5 + Math.random() / 2))
      }
    }
  }
  void run()

  return {
    get live () { return live() },

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
