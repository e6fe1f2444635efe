/**
 * Learning that the session was ended elsewhere, within seconds and without
 * polling: one tab per browser (the holder of the Web Lock
 * `vouch:watch:<baseUrl>`; in Node, the client itself) keeps vouch's
 * GET /auth/session/watch stream open (fetch + ReadableStream, since
 * EventSource cannot send a bearer token) and acts on what it says:
 *
 * - `revoked` with `sessionId`: the session was ended; sign out (`revoked`);
 * - `revoked` with `minVersion`: the user's tokens below that version were
 *   ended (sign-out everywhere, a password change, revoke-others). The tab
 *   that did it holds a new pair at the new version, and so, once its
 *   message has arrived, does every other tab: the handler decides with the
 *   refresh lock held and the tabs caught up (client.ts), then signs out
 *   only if the token held is still below `minVersion`;
 * - `expired`: the access token the stream was opened with reached its
 *   `exp`; refresh (single-flight) and reconnect.
 *
 * The other tabs learn of the outcome through the channel. A stream that
 * fails is retried with exponential backoff (1 s doubling, with jitter;
 * Retry-After on 503) up to once a minute (retryDelay): a vouch that stays
 * unreachable is asked no more often than an idle page polls; one that falls silent for a minute (vouch
 * sends a heartbeat every ~25 s) is dropped and reopened. A line or event
 * past the parser's bounds drops the stream too.
 *
 * Where responses cannot be read as streams, or vouch has no watch route
 * (404), the leader falls back to a check (GET /auth/me) at most once a
 * minute, and only when no other call has reached vouch in that minute. A
 * tab that becomes visible checks as well (at most once per 10 s) unless it
 * is the leader with a live stream: a hidden leader may have been frozen.
 *
 * @module
 */
import { createSseParser, type SseEvent } from './sse.js'
import type { TabSync } from './tabs.js'
import { WATCH_EVENTS } from './protocol.js'

/** Silence after which a stream is presumed dead (vouch's heartbeat is ~25 s). */
const SILENCE_MS = 60_000
/** A stream shorter than this counts as a failure for the backoff. */
const SHORT_STREAM_MS = 2000
const POLL_MS = 60_000
const VISIBLE_CHECK_MS = 10_000
const STREAM_LIMITS = { maxLineLength: 4096, maxEventLength: 4096 }

/**
 * How long to wait before reopening after the `failures`-th failure in a
 * row: 1 s doubling, with jitter down to half, until the doubling reaches a
 * minute; from then on a minute to a minute and a quarter, so that a stream
 * that keeps failing costs vouch at most one request a minute.
 */
export function retryDelay (failures: number, random: () => number = Math.random): number {
  const doubled = 1000 * 2 ** Math.min(Math.max(failures, 1) - 1, 6)
  return doubled >= POLL_MS ? POLL_MS * (1 + random() / 4) : doubled * (0.5 + random() / 2)
}

/** What opening the stream gave. */
export interface WatchAnswer {
  status: number
  /** Seconds, from Retry-After. */
  retryAfter?: number | undefined
  /** The response, unread, when the status is 200. */
  response?: Response | undefined
  /** The access token the stream was opened with. */
  token?: string | undefined
}

export interface WatchDeps {
  sync: TabSync
  /** Whether this runtime can read a fetch response as a stream. */
  streams: boolean
  now (): number
  signedIn (): boolean
  /** GET /auth/session/watch through the authenticated-call layer (refresh first, retry once on 401). */
  open (signal: AbortSignal): Promise<WatchAnswer>
  onRevoked (detail: { sessionId?: string, minVersion?: number }): Promise<void>
  onExpired (usedToken: string): Promise<void>
  /** GET /auth/me through the same layer; failures are the caller's to swallow. */
  check (): Promise<void>
  /** When vouch last answered this client, ms. */
  lastContact (): number
}

export interface Watch {
  /** The session changed: start, restart or stop. */
  changed (kind: 'signedIn' | 'refreshed' | 'restored' | 'signedOut'): void
  /** True while this client's stream is open and has said `ready`. */
  readonly connected: boolean
  close (): void
}

function unref (timer: unknown): void {
  (timer as { unref?: () => void }).unref?.()
}

function parseDetail (data: string): { sessionId?: string, minVersion?: number } {
  try {
    const value = JSON.parse(data) as Record<string, unknown>
    return {
      ...(typeof value.sessionId === 'string' && { sessionId: value.sessionId }),
      ...(typeof value.minVersion === 'number' && { minVersion: value.minVersion }),
    }
  } catch {
    return {}
  }
}

type Outcome = 'again' | 'failed' | 'poll' | { wait: number }

export function createWatch (deps: WatchDeps): Watch {
  let closed = false
  let leader = false
  let mode: 'stream' | 'poll' = deps.streams ? 'stream' : 'poll'
  let running = false
  let connected = false
  let failures = 0
  let abort: AbortController | undefined
  let wake: (() => void) | undefined
  let poll: ReturnType<typeof setInterval> | undefined
  let lastVisibleCheck = -Infinity
  /** The stream was dropped on purpose (another session): reconnect at once. */
  let restart = false

  const active = () => !closed && leader && deps.signedIn()

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      wake = undefined
      resolve()
    }
    const timer = setTimeout(done, ms)
    unref(timer)
    wake = done
  })


  const check = () => { deps.check().catch(() => {}) }

  const read = async (answer: WatchAnswer, controller: AbortController): Promise<Outcome> => {
    const reader = answer.response!.body!.getReader()
    const queue: SseEvent[] = []
    const parser = createSseParser({ onEvent: (event) => queue.push(event) }, STREAM_LIMITS)
    let silence: ReturnType<typeof setTimeout> | undefined
    const heard = () => {
      clearTimeout(silence)
      silence = setTimeout(() => controller.abort(), SILENCE_MS)
      unref(silence)
    }
    try {
      heard()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return 'again'
        heard()
        parser.push(value)
        for (const event of queue.splice(0)) {
          if (event.type === WATCH_EVENTS.ready) {
            connected = true
          } else if (event.type === WATCH_EVENTS.revoked) {
            await deps.onRevoked(parseDetail(event.data))
            return 'again'
          } else if (event.type === WATCH_EVENTS.expired) {
            await deps.onExpired(answer.token ?? '')
            return 'again'
          }
        }
      }
    } catch {
      return 'failed'
    } finally {
      clearTimeout(silence)
      connected = false
      reader.cancel().catch(() => {})
    }
  }

  const connect = async (): Promise<Outcome> => {
    const controller = new AbortController()
    abort = controller
    try {
      const answer = await deps.open(controller.signal)
      if (answer.status === 404) return 'poll'
      if (answer.status === 503 || answer.status === 429) return { wait: (answer.retryAfter ?? 5) * 1000 }
      if (answer.status !== 200 || !answer.response?.body) return 'failed'
      return await read(answer, controller)
    } catch {
      return 'failed'
    } finally {
      if (abort === controller) abort = undefined
    }
  }

  const startPolling = () => {
    if (poll !== undefined) return
    poll = setInterval(() => {
      if (active() && deps.now() - deps.lastContact() >= POLL_MS) check()
    }, POLL_MS)
    unref(poll)
  }

  const stopPolling = () => {
    clearInterval(poll)
    poll = undefined
  }

  const run = async () => {
    running = true
    try {
      while (active() && mode === 'stream') {
        const started = deps.now()
        const outcome = await connect()
        if (!active()) break
        if (outcome === 'poll') {
          mode = 'poll'
          break
        }
        let delay = 0
        if (restart) {
          restart = false
        } else if (typeof outcome === 'object') {
          delay = outcome.wait
        } else if (outcome === 'failed' || deps.now() - started < SHORT_STREAM_MS) {
          failures += 1
          delay = retryDelay(failures)
        } else {
          failures = 0
        }
        if (delay > 0) await sleep(delay)
      }
    } finally {
      running = false
    }
    if (active() && mode === 'poll') startPolling()
  }

  const kick = () => {
    if (!active()) return
    if (mode === 'poll') startPolling()
    else if (!running) void run()
  }

  const stop = () => {
    abort?.abort()
    wake?.()
    stopPolling()
  }

  const onVisible = () => {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document
    if (doc?.visibilityState !== 'visible' || closed || !deps.signedIn() || (leader && connected)) return
    if (deps.now() - lastVisibleCheck < VISIBLE_CHECK_MS) return
    lastVisibleCheck = deps.now()
    check()
  }
  const doc = (globalThis as { document?: EventTarget }).document
  doc?.addEventListener?.('visibilitychange', onVisible)

  deps.sync.lead(() => {
    leader = true
    kick()
  })

  return {
    changed (kind) {
      if (kind === 'signedOut') return stop()
      // Another session (or user) now: the open stream speaks for the previous one.
      if (kind === 'signedIn' && abort !== undefined) {
        restart = true
        abort.abort()
      }
      kick()
    },
    get connected () { return connected },
    close () {
      closed = true
      stop()
      doc?.removeEventListener?.('visibilitychange', onVisible)
    },
  }
}
