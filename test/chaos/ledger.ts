/**
 * The chaos run's ledger: every request (and every verifier call) with its
 * times, target, status and the faults active when it was sent; every token
 * the instances issued, and every revocation they answered. The checks
 * (checks.ts) read nothing else, so they can be tested on hand-made ledgers.
 *
 * Times are milliseconds since the start of the run, on this process's
 * monotonic clock.
 */

/** Where a request went: instance a, instance b, or the in-process verifier. */
export type Target = 'a' | 'b' | 'verifier'

export type Purpose = 'traffic' | 'probe' | 'end'

/** What an end-of-run request is meant to show (see run.ts, end checks). */
export type EndTag = 'live' | 'theft-old' | 'theft-latest' | 'superseded'

export interface Entry {
  id: number
  target: Target
  /** `METHOD /path/template`, or `verify` for the verifier. */
  route: string
  sent: number
  answered: number
  /** HTTP status; 0 = no answer. For `verify`: 200 accepted, 401 refused, 503 the verifier failed closed. */
  status: number
  code?: string
  error?: string
  phase: string
  /** Faults active when the request was sent. */
  faults: string[]
  purpose: Purpose
  tag?: EndTag
  /** The user the request acted for, when known. */
  userId?: string
  /** Access token presented (bearer routes) or verified. */
  access?: string
  /** Refresh token presented (POST /auth/refresh). */
  refresh?: string
  /** The session named in the path (DELETE /auth/sessions/:id). */
  pathSession?: string
  /** The token pair the answer carried. */
  issued?: { access: string, refresh: string, sessionId: string }
}

export interface TokenInfo {
  userId: string
  sessionId: string
  /** When the answer carrying it arrived. */
  issued: number
  entry: number
}

/**
 * A refresh token's place in its session's chain: a sign-in starts segment
 * 0, each rotation moves one position on, a password change or revoke-others
 * starts the session's next segment (the session is re-keyed).
 */
export interface RefreshInfo extends TokenInfo {
  segment: number
  pos: number
}

/**
 * An answered revocation. `session`: the session and all its tokens are dead
 * (logout, a deleted session, a refresh replay detected). `user`: every token
 * of the user issued before the revocation was sent is dead (logout-all,
 * password change, revoke-others); tokens issued while it was in flight are
 * not counted either way.
 */
export interface Revocation {
  entry: number
  kind: 'session' | 'user'
  userId: string
  sessionId?: string
  sent: number
  answered: number
}

export type FaultKind = 'instance-kill' | 'redis-stop' | 'redis-freeze' | 'db-cut'

export interface FaultWindow {
  kind: FaultKind
  /** The instance killed (instance-kill only). */
  target?: Target
  /** About to be injected. */
  start: number
  /** Injected (the kill, stop, freeze or cut has happened). */
  injected: number
  /** Undone (restart begun, SIGCONT, proxy restarted). */
  end: number
  /** Recovered (the restarted instance answers, Redis answers PING). */
  recovered: number
}

/** Routes that accept a bearer access token: a 2xx means the token was honoured. */
export const BEARER_ROUTES = new Set([
  'GET /auth/me', 'GET /auth/sessions', 'POST /auth/logout', 'POST /auth/logout-all', 'POST /auth/password',
  'POST /auth/sessions/revoke-others', 'DELETE /auth/sessions/:id',
])

/** Routes whose success increments the user's tokenVersion exactly once. */
export const VERSION_BUMPS = new Set(['POST /auth/logout-all', 'POST /auth/password', 'POST /auth/sessions/revoke-others'])

/** Routes that cost an argon2 hash or two (their latency is the hash's, see run.ts). */
export const HASHING_ROUTES = new Set(['POST /auth/login', 'POST /auth/register', 'POST /auth/password'])

export const isSuccess = (status: number) => status >= 200 && status < 300

/**
 * Whether a request that did not succeed may still have taken effect: no
 * answer, a 5xx other than 503, or a 503 for a request that was in flight
 * when the database connections were cut (its commit may have landed with
 * the acknowledgement lost). A 503 for a request sent while the database
 * was unreachable changed nothing.
 */
export function outcomeUnknown (entry: Entry, faults: readonly FaultWindow[]): boolean {
  if (entry.status === 0 || (entry.status >= 500 && entry.status !== 503)) return true
  if (entry.status !== 503) return false
  return faults.some((fault) => fault.kind === 'db-cut' && entry.sent <= fault.injected && entry.answered >= fault.start)
}

export type EntryInput = Omit<Entry, 'id'>

export class Ledger {
  readonly entries: Entry[] = []
  readonly access = new Map<string, TokenInfo>()
  readonly refresh = new Map<string, RefreshInfo>()
  readonly revocations: Revocation[] = []
  readonly faults: FaultWindow[] = []
  private readonly segments = new Map<string, number>()
  private readonly revocationListeners: Array<(revocation: Revocation) => void> = []

  onRevocation (listener: (revocation: Revocation) => void): void {
    this.revocationListeners.push(listener)
  }

  /** Records a request and what its answer means: tokens issued, revocations made. */
  record (input: EntryInput): Entry {
    const entry: Entry = { ...input, id: this.entries.length }
    const presented = entry.access === undefined ? undefined : this.access.get(entry.access)
    const presentedRefresh = entry.refresh === undefined ? undefined : this.refresh.get(entry.refresh)
    entry.userId ??= presented?.userId ?? presentedRefresh?.userId
    this.entries.push(entry)
    if (entry.target === 'verifier') return entry

    const ok = isSuccess(entry.status)
    if (entry.issued !== undefined && ok) {
      const userId = entry.userId
      if (userId !== undefined) this.issue(entry, userId, presentedRefresh)
    }
    const revoke = (kind: Revocation['kind'], userId: string | undefined, sessionId?: string) => {
      if (userId === undefined) return
      const revocation: Revocation = {
        entry: entry.id, kind, userId, sent: entry.sent, answered: entry.answered, ...(sessionId !== undefined && { sessionId }),
      }
      this.revocations.push(revocation)
      for (const listener of this.revocationListeners) listener(revocation)
    }
    switch (entry.route) {
      case 'POST /auth/refresh':
        if (entry.status === 401 && entry.code === 'refresh_token_reused' && presentedRefresh) {
          revoke('session', presentedRefresh.userId, presentedRefresh.sessionId)
        }
        break
      case 'POST /auth/logout':
        if (ok && presented) revoke('session', presented.userId, presented.sessionId)
        break
      case 'DELETE /auth/sessions/:id':
        if (ok && presented && entry.pathSession !== undefined) revoke('session', presented.userId, entry.pathSession)
        break
      case 'POST /auth/logout-all':
      case 'POST /auth/password':
      case 'POST /auth/sessions/revoke-others':
        if (ok && presented) revoke('user', presented.userId)
        break
    }
    return entry
  }

  private issue (entry: Entry, userId: string, presentedRefresh: RefreshInfo | undefined): void {
    const { access, refresh, sessionId } = entry.issued!
    const info = { userId, sessionId, issued: entry.answered, entry: entry.id }
    if (!this.access.has(access)) this.access.set(access, info)
    if (this.refresh.has(refresh)) return // a duplicate refresh handed back the same token
    let segment: number
    let pos = 0
    if (entry.route === 'POST /auth/refresh' && presentedRefresh !== undefined) {
      segment = presentedRefresh.segment
      pos = presentedRefresh.pos + 1
    } else {
      // A sign-in starts a session; a password change or revoke-others re-keys it.
      segment = this.segments.has(sessionId) ? this.segments.get(sessionId)! + 1 : 0
    }
    this.segments.set(sessionId, Math.max(segment, this.segments.get(sessionId) ?? 0))
    this.refresh.set(refresh, { ...info, segment, pos })
  }

  /** Refresh tokens of a session, in chain order (segment, then position). */
  chainOf (sessionId: string): Array<[string, RefreshInfo]> {
    return [...this.refresh].filter(([, info]) => info.sessionId === sessionId)
      .sort(([, x], [, y]) => x.segment - y.segment || x.pos - y.pos)
  }
}

/**
 * When each token died, by the revocations in the ledger: a session
 * revocation kills every token of its session (those issued later too: a
 * revoked session stays revoked); a user revocation kills the user's tokens
 * issued before it was sent. Undefined: not known to be dead.
 */
export function deathTimes (ledger: Pick<Ledger, 'revocations' | 'access' | 'refresh'>) {
  const bySession = new Map<string, Revocation[]>()
  const byUser = new Map<string, Revocation[]>()
  for (const revocation of ledger.revocations) {
    if (revocation.kind === 'session') push(bySession, revocation.sessionId!, revocation)
    else push(byUser, revocation.userId, revocation)
  }
  const deadAt = (info: TokenInfo | undefined): number | undefined => {
    if (info === undefined) return undefined
    let dead = Infinity
    for (const r of bySession.get(info.sessionId) ?? []) dead = Math.min(dead, Math.max(r.answered, info.issued))
    for (const r of byUser.get(info.userId) ?? []) if (info.issued < r.sent) dead = Math.min(dead, r.answered)
    return dead === Infinity ? undefined : dead
  }
  return {
    access: (token: string) => deadAt(ledger.access.get(token)),
    refresh: (token: string) => deadAt(ledger.refresh.get(token)),
  }
}

function push<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

/** How long a request took, from the client's side. */
export const latencyOf = (entry: Entry): number => entry.answered - entry.sent

/** The q-th quantile (0..1) of `values`, nearest rank; NaN when empty. */
export function quantile (values: number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}
