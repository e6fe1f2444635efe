/**
 * The chaos run's traffic: virtual users (two per account, so that their
 * revocations race each other) signing in, reading, refreshing (with
 * deliberate concurrent duplicates and replays of old refresh tokens),
 * listing and ending sessions, signing out everywhere, changing passwords;
 * a verifier worker; and probes that present every revocation's dead tokens
 * to both instances and the verifier 1.1 s after the revocation answered.
 * Every request goes through `Harness.send`, which writes the ledger.
 */
import type { Verifier } from '@vouch/verifier'
import type { Answer, JsonClient } from './http.js'
import type { EndTag, Entry, Ledger, Purpose, Revocation, Target, TokenInfo } from './ledger.js'

export const PASSWORDS = ['chaos password one', 'chaos password two'] as const

export interface Backend {
  name: 'a' | 'b'
  readonly up: boolean
  client: JsonClient
}

export interface Call {
  method: string
  path: string
  /** The route template recorded in the ledger. */
  route: string
  body?: unknown
  token?: string
  refresh?: string
  pathSession?: string
  userId?: string
  userAgent?: string
}

export class Harness {
  stopping = false
  private readonly pending = new Set<Promise<unknown>>()
  /** Access tokens made dead by recent revocations (the verifier worker picks from them). */
  readonly recentlyDead: string[] = []
  /** The user agent each session was signed in with (its own client, for the end checks). */
  readonly userAgents = new Map<string, string>()

  constructor (
    readonly ledger: Ledger,
    readonly backends: Backend[],
    readonly verifier: Verifier,
    readonly rng: () => number,
    readonly now: () => number,
    private readonly state: () => { phase: string, faults: string[] },
  ) {}

  up (): Backend[] { return this.backends.filter((backend) => backend.up) }

  /** A backend as a load balancer would pick one: at random among those it believes up. */
  pick (): Backend | undefined {
    const up = this.up()
    return up[Math.floor(this.rng() * up.length)]
  }

  backend (name: 'a' | 'b'): Backend { return this.backends.find((backend) => backend.name === name)! }

  async send (backend: Backend, call: Call, purpose: Purpose = 'traffic', tag?: EndTag): Promise<{ entry: Entry, answer: Answer }> {
    const { phase, faults } = this.state()
    const sent = this.now()
    const answer = await backend.client.request({
      method: call.method, path: call.path, body: call.body, token: call.token, userAgent: call.userAgent,
    })
    const answered = this.now()
    const body = answer.body as Record<string, unknown> | undefined
    const issued = typeof body?.accessToken === 'string' && typeof body.refreshToken === 'string' && typeof body.sessionId === 'string'
      ? { access: body.accessToken, refresh: body.refreshToken, sessionId: body.sessionId }
      : undefined
    const userId = call.userId ?? (typeof body?.user === 'object' && body.user !== null ? (body.user as { id?: string }).id : undefined)
    if (issued !== undefined && call.userAgent !== undefined && !this.userAgents.has(issued.sessionId)) this.userAgents.set(issued.sessionId, call.userAgent)
    const entry = this.ledger.record({
      target: backend.name,
      route: call.route,
      sent,
      answered,
      status: answer.status,
      ...(typeof body?.code === 'string' && { code: body.code }),
      ...(answer.error !== undefined && { error: answer.error }),
      phase,
      faults,
      purpose,
      ...(tag !== undefined && { tag }),
      ...(userId !== undefined && { userId }),
      ...(call.token !== undefined && { access: call.token }),
      ...(call.refresh !== undefined && { refresh: call.refresh }),
      ...(call.pathSession !== undefined && { pathSession: call.pathSession }),
      ...(issued !== undefined && { issued }),
    })
    return { entry, answer }
  }

  /** verifier.verify, recorded: 200 accepted, 401 refused, 503 could not decide (failed closed). */
  async verify (token: string, purpose: Purpose = 'traffic', tag?: EndTag): Promise<Entry> {
    const { phase, faults } = this.state()
    const sent = this.now()
    let status = 200
    let code: string | undefined
    try {
      await this.verifier.verify(token)
    } catch (err) {
      code = (err as { code?: string }).code ?? 'error'
      status = (err as { unavailable?: boolean }).unavailable === true || code === 'revocation_feed_unavailable' ? 503 : 401
    }
    return this.ledger.record({
      target: 'verifier', route: 'verify', sent, answered: this.now(), status, phase, faults, purpose, access: token,
      ...(code !== undefined && { code }),
      ...(tag !== undefined && { tag }),
    })
  }

  /** Runs `work` in the background; `settle()` waits for all of them. */
  spawn (work: () => Promise<unknown>): void {
    const promise = work().catch((err) => { console.error('chaos: background task failed:', err) })
    this.pending.add(promise)
    void promise.finally(() => this.pending.delete(promise))
  }

  async settle (): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }

  sleep (ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms))
  }

  /** Tokens a revocation killed, newest first (the ones most likely still in a cache). */
  killedBy (revocation: Revocation): { access: string[], refresh: string[] } {
    const hit = (info: TokenInfo) => revocation.kind === 'session'
      ? info.sessionId === revocation.sessionId
      : info.userId === revocation.userId && info.issued < revocation.sent
    const newest = (map: Map<string, TokenInfo>) =>
      [...map].filter(([, info]) => hit(info)).sort(([, x], [, y]) => y.issued - x.issued).map(([token]) => token)
    return { access: newest(this.ledger.access), refresh: newest(this.ledger.refresh) }
  }

  /**
   * 1.1 s after each revocation answered: its newest dead access token to
   * both instances (GET /auth/me) and to the verifier, and its newest dead
   * refresh token to one instance.
   */
  startProbes (delayMs: number): void {
    this.ledger.onRevocation((revocation) => {
      if (this.stopping) return
      const { access, refresh } = this.killedBy(revocation)
      this.recentlyDead.push(...access.slice(0, 2))
      if (this.recentlyDead.length > 200) this.recentlyDead.splice(0, this.recentlyDead.length - 200)
      this.spawn(async () => {
        await this.sleep(delayMs)
        const probes: Array<Promise<unknown>> = []
        const token = access[0]
        if (token !== undefined) {
          for (const backend of this.up()) {
            probes.push(this.send(backend, { method: 'GET', path: '/auth/me', route: 'GET /auth/me', token, userAgent: 'vouch-chaos probe' }, 'probe'))
          }
          probes.push(this.verify(token, 'probe'))
        }
        const backend = this.pick()
        if (refresh[0] !== undefined && backend !== undefined) {
          probes.push(this.send(backend, {
            method: 'POST', path: '/auth/refresh', route: 'POST /auth/refresh', body: { refreshToken: refresh[0] }, refresh: refresh[0], userAgent: 'vouch-chaos probe',
          }, 'probe'))
        }
        await Promise.all(probes)
      })
    })
  }
}

/** One account, shared by two virtual users. */
export interface Account {
  id: string
  email: string
  /** The password believed current (index into PASSWORDS). */
  password: 0 | 1
}

interface Held {
  sessionId: string
  access: string
  refresh: string
  /** Refresh tokens this session rotated away from, with when they were superseded. */
  superseded: Array<{ token: string, at: number }>
}

export interface TrafficSettings {
  graceMs: number
  thinkMs: [number, number]
}

/** A virtual user: holds up to three sessions of its account and acts on them at random. */
export class VirtualUser {
  private sessions: Held[] = []
  readonly userAgent: string

  constructor (private readonly h: Harness, readonly account: Account, index: number, private readonly settings: TrafficSettings) {
    this.userAgent = `vouch-chaos vu-${index}`
  }

  /** Sessions this user holds (for the verifier worker and the end checks). */
  held (): readonly Held[] { return this.sessions }

  async run (): Promise<void> {
    const [least, most] = this.settings.thinkMs
    while (!this.h.stopping) {
      await this.step()
      await this.h.sleep(least + this.h.rng() * (most - least))
    }
  }

  private call (call: Omit<Call, 'userAgent' | 'userId'>, backend = this.h.pick()) {
    if (backend === undefined) return Promise.resolve(undefined)
    return this.h.send(backend, { ...call, userAgent: this.userAgent, userId: this.account.id })
  }

  private drop (session: Held): void {
    this.sessions = this.sessions.filter((s) => s !== session)
  }

  /** A bearer request's 401 means the session is gone; anything else keeps it. */
  private settleBearer (session: Held, status: number | undefined): void {
    if (status === 401) this.drop(session)
  }

  async step (): Promise<void> {
    const session = this.sessions[Math.floor(this.h.rng() * this.sessions.length)]
    if (session === undefined) return this.login()
    const r = this.h.rng()
    // Sign-ins and password changes cost an argon2 hash each (about 50 ms of a core): revocations,
    // which send users back to sign in, are kept rare enough that hashing stays a fraction of the load.
    if (r < 0.38) return this.me(session)
    if (r < 0.58) return this.refresh(session)
    if (r < 0.66) { await this.listSessions(session); return }
    if (r < 0.675) return this.sessions.length < 3 ? this.login() : this.me(session)
    if (r < 0.705) return this.logout(session)
    if (r < 0.735) return this.deleteOther(session)
    if (r < 0.75) return this.logoutAll(session)
    if (r < 0.77) return this.revokeOthers(session)
    if (r < 0.78) return this.changePassword(session)
    return this.open()
  }

  /** Requests that need neither a token nor the database. */
  private async open (): Promise<void> {
    if (this.h.rng() < 0.7) await this.call({ method: 'GET', path: '/health/live', route: 'GET /health/live' })
    else await this.call({ method: 'GET', path: '/.well-known/jwks.json', route: 'GET /.well-known/jwks.json' })
  }

  async login (): Promise<void> {
    // The password may have been changed by the other user of the account: try the other one on a refusal.
    for (const which of [this.account.password, 1 - this.account.password] as Array<0 | 1>) {
      const result = await this.call({
        method: 'POST', path: '/auth/login', route: 'POST /auth/login',
        body: { email: this.account.email, password: PASSWORDS[which], deviceName: this.userAgent },
      })
      if (result === undefined) return
      const { answer } = result
      if (answer.status === 200) {
        this.account.password = which
        this.sessions.push({ sessionId: answer.body.sessionId, access: answer.body.accessToken, refresh: answer.body.refreshToken, superseded: [] })
        return
      }
      if (!(answer.status === 401 && answer.body?.code === 'invalid_credentials')) return
    }
  }

  private async me (session: Held): Promise<void> {
    const result = await this.call({ method: 'GET', path: '/auth/me', route: 'GET /auth/me', token: session.access })
    this.settleBearer(session, result?.answer.status)
  }

  private async listSessions (session: Held) {
    const result = await this.call({ method: 'GET', path: '/auth/sessions', route: 'GET /auth/sessions', token: session.access })
    this.settleBearer(session, result?.answer.status)
    return result?.answer.status === 200 ? (result.answer.body.sessions as Array<{ id: string, current: boolean }>) : undefined
  }

  private refreshCall (session: Held, token: string, backend = this.h.pick()) {
    return this.call({ method: 'POST', path: '/auth/refresh', route: 'POST /auth/refresh', body: { refreshToken: token }, refresh: token }, backend)
  }

  private rotated (session: Held, answer: Answer): void {
    if (answer.body.refreshToken === session.refresh) return
    session.superseded.push({ token: session.refresh, at: this.h.now() })
    if (session.superseded.length > 8) session.superseded.shift()
    session.refresh = answer.body.refreshToken
    session.access = answer.body.accessToken
  }

  private async refresh (session: Held): Promise<void> {
    const r = this.h.rng()
    const presented = session.refresh
    if (r < 0.06) {
      // A stolen token: one superseded longer ago than the grace window. Never a success.
      const old = session.superseded.find((s) => this.h.now() - s.at > this.settings.graceMs + 1000)
      if (old !== undefined) {
        const result = await this.refreshCall(session, old.token)
        if (result?.answer.status === 401 && result.answer.body?.code === 'refresh_token_reused') this.drop(session)
        return
      }
    }
    if (r < 0.2 && this.h.up().length === 2) {
      // A client racing itself: the same token to both instances at once.
      const results = await Promise.all(this.h.up().map((backend) => this.refreshCall(session, presented, backend)))
      const ok = results.find((result) => result?.answer.status === 200)
      if (ok) this.rotated(session, ok.answer)
      else if (results.some((result) => result?.answer.status === 401)) this.drop(session)
      return
    }
    const result = await this.refreshCall(session, presented)
    if (result === undefined) return
    if (result.answer.status === 200) {
      this.rotated(session, result.answer)
      if (r > 0.85) {
        // A retry of a refresh whose answer the client did not see: within the grace window.
        const again = await this.refreshCall(session, presented)
        if (again?.answer.status === 401) this.drop(session)
      }
    } else if (result.answer.status === 401) {
      this.drop(session)
    }
    // No answer or 5xx: keep the token; the next refresh presents it again (the grace window covers a rotation we did not see).
  }

  private async logout (session: Held): Promise<void> {
    const result = await this.call({ method: 'POST', path: '/auth/logout', route: 'POST /auth/logout', token: session.access })
    const status = result?.answer.status
    if (status === 204 || status === 401) this.drop(session)
  }

  private async deleteOther (session: Held): Promise<void> {
    const listed = await this.listSessions(session)
    const other = listed?.filter((s) => !s.current)
    const victim = other?.[Math.floor(this.h.rng() * other.length)]
    if (victim === undefined) return
    const result = await this.call({
      method: 'DELETE', path: `/auth/sessions/${victim.id}`, route: 'DELETE /auth/sessions/:id', token: session.access, pathSession: victim.id,
    })
    this.settleBearer(session, result?.answer.status)
    if (result?.answer.status === 204) this.sessions = this.sessions.filter((s) => s.sessionId !== victim.id)
  }

  private async logoutAll (session: Held): Promise<void> {
    const result = await this.call({ method: 'POST', path: '/auth/logout-all', route: 'POST /auth/logout-all', token: session.access })
    const status = result?.answer.status
    if (status === 204) this.sessions = []
    else this.settleBearer(session, status)
  }

  /** The session is kept and re-keyed: new tokens, none of its old ones. */
  private rekeyed (session: Held, answer: Answer): void {
    session.access = answer.body.accessToken
    session.refresh = answer.body.refreshToken
    session.superseded = []
    this.sessions = [session]
  }

  private async revokeOthers (session: Held): Promise<void> {
    const result = await this.call({ method: 'POST', path: '/auth/sessions/revoke-others', route: 'POST /auth/sessions/revoke-others', token: session.access })
    if (result?.answer.status === 200) this.rekeyed(session, result.answer)
    else this.settleBearer(session, result?.answer.status)
  }

  private async changePassword (session: Held): Promise<void> {
    const current = this.account.password
    const next = (1 - current) as 0 | 1
    const result = await this.call({
      method: 'POST', path: '/auth/password', route: 'POST /auth/password', token: session.access,
      body: { currentPassword: PASSWORDS[current], newPassword: PASSWORDS[next] },
    })
    if (result === undefined) return
    const { status, body } = result.answer
    if (status === 200) {
      this.account.password = next
      this.rekeyed(session, result.answer)
    } else if (status === 401 && body?.code === 'invalid_credentials') {
      // The other user of the account changed it first: their change also ended this session's version,
      // unless this request won the race for the version; either way, believe the other password.
      this.account.password = next
    } else {
      this.settleBearer(session, status)
    }
  }
}

/** Verifies tokens in the resource server's place: mostly the users' current ones, some recently revoked. */
export async function verifierWorker (h: Harness, users: VirtualUser[], intervalMs: number): Promise<void> {
  while (!h.stopping) {
    let token: string | undefined
    if (h.rng() < 0.35 && h.recentlyDead.length > 0) {
      token = h.recentlyDead[Math.floor(h.rng() * h.recentlyDead.length)]
    } else {
      const held = users.flatMap((user) => user.held())
      token = held[Math.floor(h.rng() * held.length)]?.access
    }
    if (token !== undefined) await h.verify(token)
    await h.sleep(intervalMs)
  }
}

export type { Target }
