/**
 * Security events: the one seam through which domain code reports what an
 * incident responder (and the user, on their own timeline) needs: what
 * happened, to which user and session, from where, and on whose authority.
 * Domain code never knows who listens.
 *
 * - `record(event)` in a change's transaction (token-version.ts's
 *   `transaction` hands one to its work) writes the event's row in that
 *   transaction: an event of a change that committed is never lost, and a
 *   change that rolled back leaves none. Events with no change behind them
 *   (a failed or throttled sign-in) are written on their own, with
 *   `events.record(event)`.
 * - Once written (and committed), the event is published to subscribers:
 *   the logger, the new-device mail, metrics. Listeners run synchronously
 *   and must not throw (a throwing listener is isolated: the others still
 *   run and the request is unaffected).
 * - The store (table `security_events`) is append-only; rows older than
 *   EVENT_RETENTION_DAYS are pruned (`prune`). With a retention of 0 events
 *   are published (logged) but not stored.
 *
 * An event carries no secret: no password, hash or token, by construction
 * (the detail columns are the fields typed below, nothing else). A failed
 * sign-in's reason is stored for administrators and never sent to the
 * anonymous caller, whose answer is `invalid_credentials` whatever it was.
 */
import type { Db } from '../db/client.js'
import { systemClock, type Clock } from './clock.js'
import type { Tx } from './token-version.js'

export interface ClientInfo {
  readonly ip?: string | null | undefined
  readonly userAgent?: string | null | undefined
}

/** On whose authority something happened. */
export type Actor =
  | { readonly kind: 'user' }
  | { readonly kind: 'admin', readonly id: string }
  | { readonly kind: 'cli' }
  | { readonly kind: 'system' }
  | { readonly kind: 'anonymous' }

export const USER: Actor = { kind: 'user' }
export const SYSTEM: Actor = { kind: 'system' }
export const CLI: Actor = { kind: 'cli' }
export const ANONYMOUS: Actor = { kind: 'anonymous' }

/** Why a session ended, as its event says. */
export type SessionRevokedReason = 'logout' | 'revoked_by_user' | 'token_revocation' | 'session_limit' | 'admin'

/** The change that asked for the account's password again. */
export type PasswordCheckAction = 'password_change' | 'account_deletion'

/** How a session started. */
export type SignInMethod = 'password' | 'registration' | 'password_reset'

interface Common {
  readonly userId?: string | null | undefined
  readonly sessionId?: string | null | undefined
  /** The request's IP and user agent; none for the CLI and the system. */
  readonly client?: ClientInfo | undefined
  /** By default the user when the event names one, else anonymous. */
  readonly actor?: Actor | undefined
}

export type SecurityEvent = Common & (
  | { type: 'sign_in_succeeded', userId: string, sessionId: string, method: SignInMethod }
  /** `reason` is internal: the caller was told `invalid_credentials` whatever it was. */
  | { type: 'sign_in_failed', reason: 'unknown_email' | 'wrong_password' | 'account_disabled' }
  | { type: 'sign_in_throttled' }
  /** A signed-in caller gave a wrong password to a change that asks for it, or was refused past the sign-in throttle's limit: nothing changed. */
  | { type: 'password_check_failed', action: PasswordCheckAction, reason: 'wrong_password' | 'throttled' }
  /** A sign-in from a device the account had not used before (domain/devices.ts). */
  | { type: 'new_device', userId: string, sessionId: string, deviceName: string | null }
  /** A superseded refresh token came back after the grace window (or from another client): the session was revoked. */
  | { type: 'refresh_token_reused', userId: string, sessionId: string, generationsBehind: number | undefined }
  /** A duplicate of the last rotation inside the grace window, from the same client: answered with the live successor. Logged, not stored. */
  | { type: 'refresh_duplicate_in_grace', userId: string, sessionId: string }
  | { type: 'session_revoked', userId: string, sessionId: string, reason: SessionRevokedReason }
  /** Every session ended by one version bump; `keptSessionId` when the caller's own was kept (revoke-others). */
  | { type: 'signed_out_everywhere', userId: string, keptSessionId?: string | undefined }
  /** Also ends every other session (one version bump); the caller's is kept. */
  | { type: 'password_changed', userId: string }
  | { type: 'password_reset_requested', userId: string }
  /** Also ends every session (one version bump). */
  | { type: 'password_reset_completed', userId: string }
  | { type: 'account_disabled', userId: string }
  | { type: 'account_enabled', userId: string }
  /** Recorded without the email, which the deletion erased. */
  | { type: 'account_deleted', userId: string }
  /** An administrator read a user's account, sessions or events. */
  | { type: 'admin_read', userId: string, what: 'user' | 'sessions' | 'events' }
)

export type SecurityEventType = SecurityEvent['type']

/** Events that are logged only (frequent and harmless): never stored. */
const NOT_STORED: ReadonlySet<SecurityEventType> = new Set(['refresh_duplicate_in_grace'])

/** An event as stored and read back. */
export interface StoredEvent {
  id: string
  type: string
  at: Date
  userId: string | null
  sessionId: string | null
  ip: string | null
  userAgent: string | null
  actor: Actor['kind']
  actorId: string | null
  /** The event's own fields (a reason, a kept session), internal. */
  detail: Record<string, unknown>
}

export interface EventPage {
  events: StoredEvent[]
  /** Pass as `before` for the next (older) page; absent on the last. */
  next?: string
}

export type SecurityEventListener = (event: SecurityEvent) => void

export interface SecurityEvents {
  /** Writes the event on its own (no change goes with it), then publishes it. */
  record (event: SecurityEvent): Promise<void>
  /** Writes events in a change's transaction; the caller publishes them once it committed. */
  write (tx: Tx, events: readonly SecurityEvent[]): Promise<void>
  /** Tells the subscribers (after the commit). */
  publish (event: SecurityEvent): void
  /** Returns the unsubscribe. */
  subscribe (listener: SecurityEventListener): () => void
  /** A user's timeline, newest first: `limit` events older than `before` (an event id). */
  page (userId: string, options: { before?: string | undefined, limit: number }): Promise<EventPage>
  /** Deletes events older than the retention; the number deleted. */
  prune (): Promise<number>
}

export interface SecurityEventSettings {
  /** Days events are kept; 0 = not stored at all (still published). */
  readonly retentionDays: number
}

export interface SecurityEventDeps {
  /** Where events are stored; without one they are only published. */
  db?: Db | undefined
  clock?: Clock
  settings?: SecurityEventSettings | undefined
  onListenerError?: (err: unknown) => void
}

/** Most rows one prune statement deletes (so a long backlog never holds a lock for long). */
const PRUNE_BATCH = 5_000

export function createSecurityEvents ({ db, clock = systemClock, settings = { retentionDays: 90 }, onListenerError = () => {} }: SecurityEventDeps = {}): SecurityEvents {
  const listeners = new Set<SecurityEventListener>()
  const ids = monotonicUuidV7()
  const storing = db !== undefined && settings.retentionDays > 0

  const rows = (events: readonly SecurityEvent[]) => {
    const at = clock.now()
    return events.filter((event) => !NOT_STORED.has(event.type)).map((event) => toRow(event, ids(at.getTime()), at))
  }

  const publish = (event: SecurityEvent) => {
    for (const listener of listeners) {
      try {
        listener(event)
      } catch (err) {
        onListenerError(err)
      }
    }
  }

  const write = async (client: Tx, events: readonly SecurityEvent[]) => {
    if (!storing) return
    const data = rows(events)
    if (data.length > 0) await client.securityEvent.createMany({ data })
  }

  return {
    async record (event) {
      if (db !== undefined) await write(db, [event])
      publish(event)
    },
    write,
    publish,
    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    async page (userId, { before, limit }) {
      if (db === undefined) return { events: [] }
      const found = await db.securityEvent.findMany({
        where: { userId, ...(before !== undefined && { id: { lt: before } }) },
        orderBy: { id: 'desc' },
        take: limit + 1,
      })
      const events = found.slice(0, limit).map(fromRow)
      return found.length > limit ? { events, next: events[events.length - 1]!.id } : { events }
    },

    async prune () {
      if (db === undefined || settings.retentionDays <= 0) return 0
      const cutoff = new Date(clock.now().getTime() - settings.retentionDays * 86_400_000)
      let deleted = 0
      for (;;) {
        const batch = await db.securityEvent.findMany({ where: { at: { lt: cutoff } }, select: { id: true }, take: PRUNE_BATCH })
        if (batch.length === 0) return deleted
        const { count } = await db.securityEvent.deleteMany({ where: { id: { in: batch.map((row) => row.id) } } })
        deleted += count
        if (batch.length < PRUNE_BATCH) return deleted
      }
    },
  }
}

/** The columns of `security_events` every event has; the rest of an event is its detail. */
function toRow (event: SecurityEvent, id: string, at: Date) {
  const { type, userId, sessionId, client, actor, ...detail } = event
  const who = actor ?? (userId ? { kind: 'user' } : { kind: 'anonymous' })
  const fields = Object.fromEntries(Object.entries(detail).filter(([, value]) => value !== undefined))
  return {
    id,
    type,
    at,
    userId: userId ?? null,
    sessionId: sessionId ?? null,
    ip: client?.ip ?? null,
    userAgent: client?.userAgent ?? null,
    actor: who.kind,
    actorId: who.kind === 'admin' ? who.id : null,
    detail: Object.keys(fields).length === 0 ? null : JSON.stringify(fields),
  }
}

function fromRow (row: {
  id: string, type: string, at: Date, userId: string | null, sessionId: string | null, ip: string | null,
  userAgent: string | null, actor: string, actorId: string | null, detail: string | null,
}): StoredEvent {
  return { ...row, actor: row.actor as Actor['kind'], detail: row.detail === null ? {} : JSON.parse(row.detail) as Record<string, unknown> }
}

/**
 * UUIDv7 (RFC 9562 §5.7) ids, monotonic within this process (method 1: a
 * 12-bit counter in rand_a, seeded randomly each millisecond): they sort by
 * time as strings, so a timeline is paged by id.
 */
function monotonicUuidV7 (): (ms: number) => string {
  let lastMs = -1
  let counter = 0
  return (ms) => {
    if (ms <= lastMs) {
      ms = lastMs
      counter++
      if (counter > 0xfff) { ms = ++lastMs; counter = 0 }
    } else {
      lastMs = ms
      counter = crypto.getRandomValues(new Uint16Array(1))[0]! & 0x7ff
    }
    const bytes = crypto.getRandomValues(new Uint8Array(16))
    bytes[0] = (ms / 2 ** 40) & 0xff
    bytes[1] = (ms / 2 ** 32) & 0xff
    bytes[2] = (ms >>> 24) & 0xff
    bytes[3] = (ms >>> 16) & 0xff
    bytes[4] = (ms >>> 8) & 0xff
    bytes[5] = ms & 0xff
    bytes[6] = 0x70 | (counter >>> 8)
    bytes[7] = counter & 0xff
    bytes[8] = 0x80 | (bytes[8]! & 0x3f)
    const hex = Buffer.from(bytes).toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
}
