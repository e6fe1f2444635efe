/**
 * Property: across random sequences of sign-ins, refreshes, replays, sign-outs,
 * password changes, revocations and clock jumps on several devices of two
 * users, every token is accepted if and only if a small reference model says
 * so. The model is written from SPEC.md, not from the implementation:
 *
 * - A session is active while not revoked, before its absolute expiry, within
 *   the idle limit since it was last used (refresh or re-key), and created or
 *   re-keyed under the user's current tokenVersion.
 * - An access token is accepted while not expired (ttl, minus clock skew), its
 *   `ver` equals the user's current version and its session is active.
 * - Refresh: the session's current token rotates to a fresh one; the previous
 *   one, within the grace window, is a duplicate that yields the very same new
 *   token; after the window, like any token the session held since it was
 *   last (re-)keyed and has superseded, however many rotations back, it
 *   revokes the session (`refresh_token_reused`); anything else, or any token
 *   of an inactive session, is `refresh_token_invalid`.
 * - logout revokes the caller's session; logout-all bumps the version;
 *   password change and revoke-others bump the version and re-key the caller's
 *   session with a fresh pair (its previous tokens die with no grace).
 *
 * At every step every access token ever issued is presented to GET /auth/me,
 * every refresh token the model says is dead (a side-effect-free rejection) is
 * presented to POST /auth/refresh, and each user's device list is compared
 * with the model's active sessions. Refresh tokens the model says would rotate,
 * duplicate or trip reuse detection are only presented by the operations
 * themselves, with the model's expectation checked at that moment.
 */
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp, type TestContext } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, post, uniqueEmail, type TokenPair } from '../helpers/client.js'

// ---------------------------------------------------------------- operations

/** Devices 0-2 belong to user A, 3-4 to user B. */
const DEVICE_OWNERS = [0, 0, 0, 1, 1] as const

type Op =
  | { kind: 'login', device: number, stalePassword: boolean }
  | { kind: 'refresh', device: number }
  | { kind: 'replay', device: number, pick: number }
  | { kind: 'logout', device: number }
  | { kind: 'logoutAll', device: number }
  | { kind: 'changePassword', device: number, correctPassword: boolean }
  | { kind: 'revokeOthers', device: number }
  | { kind: 'revokeSession', device: number, pick: number }
  | { kind: 'advance', seconds: number }

const DAY = 86_400

function describeOp (op: Op): string {
  switch (op.kind) {
    case 'login': return `login(device ${op.device}${op.stalePassword ? ', wrong/stale password' : ''})`
    case 'refresh': return `refresh(device ${op.device})`
    case 'replay': return `replay(device ${op.device}, old refresh token #${op.pick})`
    case 'logout': return `logout(device ${op.device})`
    case 'logoutAll': return `logoutAll(device ${op.device})`
    case 'changePassword': return `changePassword(device ${op.device}${op.correctPassword ? '' : ', wrong current password'})`
    case 'revokeOthers': return `revokeOthers(device ${op.device})`
    case 'revokeSession': return `revokeSession(from device ${op.device}, session #${op.pick})`
    case 'advance': return `advance(${op.seconds} s)`
  }
}

const deviceArb = fc.integer({ min: 0, max: DEVICE_OWNERS.length - 1 })
const pickArb = fc.nat({ max: 30 })
const rarely = fc.constantFrom(false, false, false, true)

const loginArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('login' as const), device: deviceArb, stalePassword: rarely })
const refreshArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('refresh' as const), device: deviceArb })
const replayArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('replay' as const), device: deviceArb, pick: pickArb })
const logoutArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('logout' as const), device: deviceArb })
const logoutAllArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('logoutAll' as const), device: deviceArb })
const changePasswordArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('changePassword' as const), device: deviceArb, correctPassword: rarely.map((wrong) => !wrong),
})
const revokeOthersArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('revokeOthers' as const), device: deviceArb })
const revokeSessionArb: fc.Arbitrary<Op> = fc.record({ kind: fc.constant('revokeSession' as const), device: deviceArb, pick: pickArb })
/** Around the grace window (10 s), the access-token ttl (900 s + 5 s skew), the idle limit (7 d) and the lifetime (14 d). */
const advanceArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('advance' as const),
  seconds: fc.constantFrom(1, 4, 9, 10, 11, 60, 899, 904, 905, 3 * DAY, 4 * DAY, 7 * DAY),
})

/** Every kind of operation, weighted so that sessions live long enough to be interesting. */
const mixedOpArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: loginArb },
  { weight: 6, arbitrary: refreshArb },
  { weight: 4, arbitrary: replayArb },
  { weight: 2, arbitrary: logoutArb },
  { weight: 1, arbitrary: logoutAllArb },
  { weight: 2, arbitrary: changePasswordArb },
  { weight: 2, arbitrary: revokeOthersArb },
  { weight: 2, arbitrary: revokeSessionArb },
  { weight: 3, arbitrary: advanceArb },
)

/** Rotation-heavy: refreshes, replays of old tokens and small clock steps around the grace window. */
const rotationOpArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: loginArb },
  { weight: 8, arbitrary: refreshArb },
  { weight: 7, arbitrary: replayArb },
  { weight: 2, arbitrary: revokeOthersArb },
  { weight: 1, arbitrary: changePasswordArb },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), seconds: fc.constantFrom(1, 3, 5, 9, 10, 11, 20) }) as fc.Arbitrary<Op>,
  },
)

// ---------------------------------------------------------------- model

interface ModelUser {
  id: string
  email: string
  password: string
  oldPasswords: string[]
  version: number
}

interface ModelSession {
  id: string
  user: number
  version: number
  /** The refresh token the server currently holds (as a hash) for this session. */
  current: string
  previous: string | null
  /** Every token rotated away since the session was created or re-keyed. */
  superseded: Set<string>
  rotatedAt: number | null
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  revoked: boolean
}

interface IssuedAccess {
  token: string
  user: number
  sessionId: string
  ver: number
  iat: number
  label: string
}

interface IssuedRefresh {
  token: string
  sessionId: string
  label: string
}

interface Device {
  user: number
  access: string | null
  refresh: string | null
  /** Every refresh token this device has held, for replays. */
  held: string[]
}

type AccessVerdict = { ok: true } | { ok: false, code: 'token_expired' | 'token_revoked' }
type RefreshVerdict =
  | { kind: 'rotate', session: ModelSession }
  | { kind: 'duplicate', session: ModelSession, returns: string }
  | { kind: 'reused', session: ModelSession }
  | { kind: 'invalid' }

class ModelMismatch extends Error {
  override name = 'ModelMismatch'
}

/** Outcomes seen across all runs of a test, to show (and assert) what the runs exercised. */
type Coverage = Map<string, number>

function bump (coverage: Coverage, key: string): void {
  coverage.set(key, (coverage.get(key) ?? 0) + 1)
}

let passwordCounter = 0

class Run {
  readonly users: ModelUser[] = []
  readonly sessions = new Map<string, ModelSession>()
  readonly devices: Device[] = DEVICE_OWNERS.map((user) => ({ user, access: null, refresh: null, held: [] }))
  readonly accessTokens: IssuedAccess[] = []
  readonly refreshTokens = new Map<string, IssuedRefresh>()
  readonly log: string[] = []
  checks = 0
  private step = -1
  private readonly app: FastifyInstance
  private readonly ttl: number
  private readonly skew: number
  private readonly idleMs: number
  private readonly graceMs: number
  private readonly lifetimeMs: number

  constructor (private readonly ctx: TestContext, private readonly coverage: Coverage) {
    this.app = ctx.app
    this.ttl = ctx.config.tokens.accessTokenTtl
    this.skew = ctx.config.tokens.clockSkew
    this.idleMs = ctx.config.sessions.idleTimeout * 1000
    this.graceMs = ctx.config.sessions.reuseGraceWindow * 1000
    this.lifetimeMs = ctx.config.sessions.lifetime * 1000
  }

  private now (): number {
    return this.ctx.clock.now().getTime()
  }

  private fail (what: string): never {
    throw new ModelMismatch(
      `${what}\n  at step ${this.step}${this.step < 0 ? ' (setup)' : ''}\n  operations so far:\n` +
      this.log.map((line, i) => `    ${i}. ${line}`).join('\n'))
  }

  private expectStatus (res: LightMyRequestResponse, status: number, code: string | undefined, what: string): void {
    this.checks++
    const actualCode = res.statusCode >= 400 ? codeOf(res) : undefined
    if (res.statusCode !== status || actualCode !== code) {
      this.fail(`${what}: expected ${status}${code ? ` ${code}` : ''}, got ${res.statusCode}${actualCode ? ` ${actualCode}` : ''} (${res.body.slice(0, 200)})`)
    }
  }

  // ---- the reference model's verdicts

  isActive (session: ModelSession): boolean {
    const now = this.now()
    return !session.revoked &&
      session.version === this.users[session.user]!.version &&
      session.expiresAt > now &&
      (this.idleMs === 0 || now - session.lastUsedAt < this.idleMs)
  }

  accessVerdict (token: IssuedAccess): AccessVerdict {
    const nowSec = Math.floor(this.now() / 1000)
    if (token.iat + this.ttl <= nowSec - this.skew) return { ok: false, code: 'token_expired' }
    const session = this.sessions.get(token.sessionId)!
    if (token.ver !== this.users[token.user]!.version || !this.isActive(session)) return { ok: false, code: 'token_revoked' }
    return { ok: true }
  }

  refreshVerdict (token: string): RefreshVerdict {
    const session = this.sessions.get(this.refreshTokens.get(token)!.sessionId)!
    if (!this.isActive(session)) return { kind: 'invalid' }
    if (token === session.current) return { kind: 'rotate', session }
    if (token === session.previous && session.rotatedAt !== null && this.now() - session.rotatedAt <= this.graceMs) {
      return { kind: 'duplicate', session, returns: session.current }
    }
    return session.superseded.has(token) ? { kind: 'reused', session } : { kind: 'invalid' }
  }

  // ---- bookkeeping of what the server handed out

  private trackPair (pair: TokenPair, user: number, ver: number, label: string): void {
    this.checks++
    if (pair.tokenType !== 'Bearer' || !pair.refreshToken.startsWith(`${pair.sessionId}.`)) {
      this.fail(`${label}: malformed token pair ${JSON.stringify(pair)}`)
    }
    this.accessTokens.push({
      token: pair.accessToken, user, sessionId: pair.sessionId, ver, iat: Math.floor(this.now() / 1000), label: `access from ${label}`,
    })
    if (!this.refreshTokens.has(pair.refreshToken)) {
      this.refreshTokens.set(pair.refreshToken, { token: pair.refreshToken, sessionId: pair.sessionId, label: `refresh from ${label}` })
    }
  }

  private adopt (device: Device, pair: TokenPair): void {
    device.access = pair.accessToken
    device.refresh = pair.refreshToken
    if (!device.held.includes(pair.refreshToken)) device.held.push(pair.refreshToken)
  }

  private newSession (pair: TokenPair, user: number, label: string): void {
    if (this.sessions.has(pair.sessionId)) this.fail(`${label}: session id ${pair.sessionId} reused for a new session`)
    if (this.refreshTokens.has(pair.refreshToken)) this.fail(`${label}: a new session got an already issued refresh token`)
    const now = this.now()
    this.sessions.set(pair.sessionId, {
      id: pair.sessionId,
      user,
      version: this.users[user]!.version,
      current: pair.refreshToken,
      previous: null,
      superseded: new Set(),
      rotatedAt: null,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + this.lifetimeMs,
      revoked: false,
    })
    this.trackPair(pair, user, this.users[user]!.version, label)
  }

  // ---- setup

  /** Registers users A and B; every device starts signed in (the first one by registering). */
  async setup (): Promise<void> {
    for (const [index, name] of ['A', 'B'].entries()) {
      const email = uniqueEmail(`model-${name}`)
      const res = await post(this.app, '/auth/register', { email, password: PASSWORD, deviceName: 'device-0' })
      this.expectStatus(res, 201, undefined, `register user ${name}`)
      const body = res.json() as TokenPair & { user: { id: string } }
      this.users.push({ id: body.user.id, email, password: PASSWORD, oldPasswords: [], version: 0 })
      for (const [number, device] of this.devices.entries()) {
        if (device.user !== index) continue
        if (number === this.devices.findIndex((d) => d.user === index)) {
          this.newSession(body, index, `register ${name} (device ${number})`)
          this.adopt(device, body)
          continue
        }
        const login = await post(this.app, '/auth/login', { email, password: PASSWORD, deviceName: `device-${number}` })
        this.expectStatus(login, 200, undefined, `sign in user ${name} on device ${number}`)
        const pair = login.json() as TokenPair
        this.newSession(pair, index, `initial login (device ${number})`)
        this.adopt(device, pair)
      }
    }
    await this.checkEverything()
  }

  // ---- operations

  async apply (op: Op, index: number): Promise<void> {
    this.step = index
    this.log.push(describeOp(op))
    const outcome = await this.perform(op)
    this.log[this.log.length - 1] += ` -> ${outcome}`
    bump(this.coverage, `${op.kind}: ${outcome}`)
    await this.checkEverything()
  }

  /** Sends the request of a bearer-authenticated operation, or predicts its rejection. */
  private async authenticated (
    device: Device, label: string, send: (access: string) => Promise<LightMyRequestResponse>,
  ): Promise<{ res: LightMyRequestResponse, accepted: true } | { res: LightMyRequestResponse, accepted: false, code: string }> {
    const access = this.accessTokens.find((a) => a.token === device.access)!
    const verdict = this.accessVerdict(access)
    const res = await send(access.token)
    if (!verdict.ok) {
      this.expectStatus(res, 401, verdict.code, `${label} with a dead access token`)
      return { res, accepted: false, code: verdict.code }
    }
    return { res, accepted: true }
  }

  private async perform (op: Op): Promise<string> {
    if (op.kind === 'advance') {
      this.ctx.clock.advance(op.seconds)
      return 'ok'
    }
    const device = this.devices[op.device]!
    const user = this.users[device.user]!
    const label = describeOp(op)

    switch (op.kind) {
      case 'login': {
        const password = op.stalePassword ? (user.oldPasswords.at(-1) ?? 'not the password at all') : user.password
        const res = await post(this.app, '/auth/login', { email: user.email, password, deviceName: `device-${op.device}` })
        if (op.stalePassword) {
          this.expectStatus(res, 401, 'invalid_credentials', label)
          return 'invalid_credentials'
        }
        this.expectStatus(res, 200, undefined, label)
        const pair = res.json() as TokenPair
        this.newSession(pair, device.user, label)
        this.adopt(device, pair)
        return 'new session'
      }

      case 'refresh':
      case 'replay': {
        let token: string | null
        if (op.kind === 'refresh') {
          token = device.refresh
        } else {
          // Its own old tokens, or else (a leaked token) any of its user's tokens it does not hold.
          const own = device.held.filter((held) => held !== device.refresh)
          const old = own.length > 0
            ? own
            : [...this.refreshTokens.values()]
                .filter((r) => this.sessions.get(r.sessionId)!.user === device.user && r.token !== device.refresh)
                .map((r) => r.token)
          token = old.length === 0 ? null : old[op.pick % old.length]!
        }
        if (token === null) return 'skipped (no token)'
        const verdict = this.refreshVerdict(token)
        const res = await post(this.app, '/auth/refresh', { refreshToken: token })
        switch (verdict.kind) {
          case 'invalid':
            this.expectStatus(res, 401, 'refresh_token_invalid', label)
            return 'refresh_token_invalid'
          case 'reused':
            this.expectStatus(res, 401, 'refresh_token_reused', label)
            verdict.session.revoked = true
            return 'refresh_token_reused (session revoked)'
          case 'duplicate': {
            this.expectStatus(res, 200, undefined, `${label} (a duplicate within the grace window)`)
            const pair = res.json() as TokenPair
            this.checks++
            if (pair.sessionId !== verdict.session.id || pair.refreshToken !== verdict.returns) {
              this.fail(`${label}: a duplicate within the grace window must return the same rotated refresh token ` +
                `of session ${verdict.session.id}; got session ${pair.sessionId}, ` +
                `${pair.refreshToken === verdict.returns ? 'same' : 'a different'} token`)
            }
            this.trackPair(pair, verdict.session.user, verdict.session.version, label)
            this.adopt(device, pair)
            return 'duplicate within grace (same token)'
          }
          case 'rotate': {
            this.expectStatus(res, 200, undefined, label)
            const pair = res.json() as TokenPair
            this.checks++
            if (pair.sessionId !== verdict.session.id) this.fail(`${label}: refresh changed the session id`)
            if (this.refreshTokens.has(pair.refreshToken)) this.fail(`${label}: rotation returned an already issued refresh token`)
            const { session } = verdict
            session.previous = token
            session.superseded.add(token)
            session.current = pair.refreshToken
            session.rotatedAt = this.now()
            session.lastUsedAt = this.now()
            this.trackPair(pair, session.user, session.version, label)
            this.adopt(device, pair)
            return 'rotated'
          }
        }
      }

      case 'logout':
      case 'logoutAll':
      case 'changePassword':
      case 'revokeOthers':
      case 'revokeSession': {
        if (device.access === null) return 'skipped (never signed in)'
        const callerSessionId = this.accessTokens.find((a) => a.token === device.access)!.sessionId
        const caller = this.sessions.get(callerSessionId)!
        const newPassword = `model password ${++passwordCounter}`
        const sessionList = [...this.sessions.values()]
        const target = op.kind === 'revokeSession' ? sessionList[op.pick % sessionList.length]! : undefined

        const result = await this.authenticated(device, label, (access) => {
          switch (op.kind) {
            case 'logout': return post(this.app, '/auth/logout', undefined, bearer(access))
            case 'logoutAll': return post(this.app, '/auth/logout-all', undefined, bearer(access))
            case 'changePassword':
              return post(this.app, '/auth/password', {
                currentPassword: op.correctPassword ? user.password : 'certainly not the password',
                newPassword,
              }, bearer(access))
            case 'revokeOthers': return post(this.app, '/auth/sessions/revoke-others', undefined, bearer(access))
            case 'revokeSession':
              return this.app.inject({ method: 'DELETE', url: `/auth/sessions/${target!.id}`, headers: bearer(access) })
          }
        })
        if (!result.accepted) return result.code
        const { res } = result

        switch (op.kind) {
          case 'logout':
            this.expectStatus(res, 204, undefined, label)
            caller.revoked = true
            return 'ok'
          case 'logoutAll':
            this.expectStatus(res, 204, undefined, label)
            user.version++
            return 'ok'
          case 'revokeSession':
            if (target!.user !== device.user) {
              this.expectStatus(res, 404, 'not_found', `${label} (another user's session)`)
              return 'not_found (other user)'
            }
            this.expectStatus(res, 204, undefined, label)
            target!.revoked = true
            return target!.id === caller.id ? 'ok (own session)' : 'ok'
          case 'changePassword':
            if (!op.correctPassword) {
              this.expectStatus(res, 401, 'invalid_credentials', label)
              return 'invalid_credentials'
            }
            user.oldPasswords.push(user.password)
            user.password = newPassword
            return this.rekeyed(res, device, caller, label)
          case 'revokeOthers':
            return this.rekeyed(res, device, caller, label)
        }
      }
    }
  }

  /** Password change and revoke-others: the version moves on, the caller's session is kept with a fresh pair. */
  private rekeyed (res: LightMyRequestResponse, device: Device, caller: ModelSession, label: string): string {
    const user = this.users[device.user]!
    this.expectStatus(res, 200, undefined, label)
    const pair = res.json() as TokenPair
    this.checks++
    if (pair.sessionId !== caller.id) this.fail(`${label}: the caller's session must be kept, got ${pair.sessionId}`)
    if (this.refreshTokens.has(pair.refreshToken)) this.fail(`${label}: re-keying returned an already issued refresh token`)
    user.version++
    caller.version = user.version
    caller.current = pair.refreshToken
    caller.previous = null
    caller.superseded = new Set()
    caller.rotatedAt = null
    caller.lastUsedAt = this.now()
    this.trackPair(pair, device.user, user.version, label)
    this.adopt(device, pair)
    return 'ok (caller re-keyed)'
  }

  // ---- the invariant, checked after every step

  async checkEverything (): Promise<void> {
    // Every access token ever issued in this run, dead or alive.
    for (const access of this.accessTokens) {
      const verdict = this.accessVerdict(access)
      const res = await this.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(access.token) })
      const what = `GET /auth/me with ${access.label} (user ${'AB'[access.user]}, session ${access.sessionId}, ver ${access.ver})`
      if (verdict.ok) {
        this.expectStatus(res, 200, undefined, `${what} should be accepted`)
        this.checks++
        if ((res.json() as { id: string }).id !== this.users[access.user]!.id) this.fail(`${what}: answered for another user`)
        bump(this.coverage, 'sweep: access accepted')
      } else {
        this.expectStatus(res, 401, verdict.code, `${what} should be rejected`)
        this.checks++
        if (res.headers['www-authenticate'] !== 'Bearer error="invalid_token"') this.fail(`${what}: no WWW-Authenticate header`)
        bump(this.coverage, `sweep: access ${verdict.code}`)
      }
    }

    // Every refresh token the model says is dead. Presenting these must have no
    // effect, so the model stays in step; live ones are only used by operations.
    for (const refresh of this.refreshTokens.values()) {
      if (this.refreshVerdict(refresh.token).kind !== 'invalid') continue
      const res = await post(this.app, '/auth/refresh', { refreshToken: refresh.token })
      this.expectStatus(res, 401, 'refresh_token_invalid', `POST /auth/refresh with ${refresh.label} (session ${refresh.sessionId}) should be rejected`)
      bump(this.coverage, 'sweep: refresh token dead')
    }

    // Each user's device list, seen through any accepted access token of theirs.
    for (const [index, user] of this.users.entries()) {
      const viewer = this.accessTokens.find((a) => a.user === index && this.accessVerdict(a).ok)
      if (viewer === undefined) continue
      const expected = [...this.sessions.values()]
        .filter((s) => s.user === index && this.isActive(s))
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((s) => `${s.id}${s.id === viewer.sessionId ? ' (current)' : ''}`)
      const res = await this.app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(viewer.token) })
      this.expectStatus(res, 200, undefined, `GET /auth/sessions for user ${'AB'[index]}`)
      const listed = (res.json() as { sessions: { id: string, current: boolean }[] }).sessions
        .map((s) => `${s.id}${s.current ? ' (current)' : ''}`)
      this.checks++
      if (JSON.stringify(listed) !== JSON.stringify(expected)) {
        this.fail(`GET /auth/sessions for user ${'AB'[index]} (${user.email}) lists\n    ${JSON.stringify(listed)}\n  the model's active sessions are\n    ${JSON.stringify(expected)}`)
      }
      bump(this.coverage, 'sweep: session list')
    }
  }
}

// ---------------------------------------------------------------- the tests

const login = (device: number): Op => ({ kind: 'login', device, stalePassword: false })
const refreshOp = (device: number): Op => ({ kind: 'refresh', device })
const replay = (device: number, pick: number): Op => ({ kind: 'replay', device, pick })
const advance = (seconds: number): Op => ({ kind: 'advance', seconds })

/** Hand-picked sequences fast-check runs first, so the named scenarios are always exercised. */
const EXAMPLES: Op[][] = [
  // Rotation, a duplicate within the grace window, then a replay after it.
  [refreshOp(0), replay(0, 0), advance(11), replay(0, 0), refreshOp(0)],
  // A token two generations old, inside the grace window: a replay (SPEC, refresh-token theft).
  [refreshOp(0), refreshOp(0), replay(0, 0), advance(10), replay(0, 1), refreshOp(0)],
  // Re-keying leaves no grace to the caller's previous refresh tokens, then or later.
  [refreshOp(0), { kind: 'revokeOthers', device: 0 }, replay(0, 1), replay(0, 0), advance(11), replay(0, 0), refreshOp(0)],
  // Password change and revoke-others keep the caller only; logout-all ends everyone.
  [
    login(1), login(2), login(3),
    { kind: 'changePassword', device: 1, correctPassword: false },
    { kind: 'changePassword', device: 1, correctPassword: true },
    { kind: 'login', device: 0, stalePassword: true }, replay(1, 0), login(0),
    { kind: 'revokeOthers', device: 0 }, { kind: 'revokeOthers', device: 1 },
    { kind: 'logoutAll', device: 0 }, login(2), { kind: 'logout', device: 2 },
  ],
  // Revoking one session, someone else's session, and one's own (sessions in order of creation:
  // A's devices 0-2, B's devices 3-4, then new sign-ins).
  [
    login(1), { kind: 'revokeSession', device: 0, pick: 1 }, { kind: 'revokeSession', device: 0, pick: 3 },
    { kind: 'revokeSession', device: 2, pick: 2 }, { kind: 'revokeSession', device: 1, pick: 0 },
  ],
  // Access-token expiry, the idle limit and the absolute lifetime.
  [
    advance(904), advance(1), login(1), refreshOp(0), advance(4 * DAY), refreshOp(1),
    advance(4 * DAY), refreshOp(1), refreshOp(0), advance(3 * DAY), refreshOp(1), advance(4 * DAY), refreshOp(1),
  ],
]

/** Outcomes the examples guarantee; the test fails if a run never reached one. */
const MUST_SEE = [
  'refresh: rotated', 'replay: duplicate within grace (same token)', 'replay: refresh_token_reused (session revoked)',
  'replay: refresh_token_invalid', 'refresh: refresh_token_invalid', 'login: invalid_credentials',
  'changePassword: ok (caller re-keyed)', 'changePassword: invalid_credentials', 'revokeOthers: ok (caller re-keyed)',
  'revokeOthers: token_revoked', 'logoutAll: ok', 'logout: ok', 'revokeSession: ok', 'revokeSession: ok (own session)',
  'revokeSession: not_found (other user)', 'sweep: access accepted', 'sweep: access token_revoked',
  'sweep: access token_expired', 'sweep: refresh token dead', 'sweep: session list',
]

async function runModel (
  t: Test, opArb: fc.Arbitrary<Op>, options: { numRuns: number, maxLength: number, examples: Op[][] },
): Promise<Coverage> {
  // An idle limit shorter than the lifetime, so that the model exercises both.
  const ctx = await createTestApp(t, { env: { SESSION_IDLE_TIMEOUT: String(7 * 86_400) } })
  const coverage: Coverage = new Map()
  let checks = 0
  let runs = 0
  let ops = 0
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: options.maxLength, size: 'max' }), async (sequence) => {
      const run = new Run(ctx, coverage)
      try {
        await run.setup()
        for (const [index, op] of sequence.entries()) await run.apply(op, index)
      } finally {
        checks += run.checks
        runs++
        ops += sequence.length
      }
    }),
    { numRuns: options.numRuns, examples: options.examples.map((sequence) => [sequence]) },
  )
  t.ok(checks > 0, `${runs} runs, ${ops} operations, ${checks} checks against the model`)
  t.comment([...coverage.entries()].sort().map(([key, n]) => `${key}: ${n}`).join('\n'))
  return coverage
}

t.test('at every step, a token is accepted if and only if the reference model says so', async (t) => {
  const coverage = await runModel(t, mixedOpArb, { numRuns: 25, maxLength: 16, examples: EXAMPLES })
  for (const outcome of MUST_SEE) t.ok((coverage.get(outcome) ?? 0) > 0, `the runs exercised "${outcome}"`)
})

t.test('refresh rotation, grace-window duplicates and replays of old tokens follow the reference model', async (t) => {
  const coverage = await runModel(t, rotationOpArb, { numRuns: 20, maxLength: 16, examples: EXAMPLES.slice(0, 3) })
  for (const outcome of ['refresh: rotated', 'replay: duplicate within grace (same token)', 'replay: refresh_token_reused (session revoked)', 'replay: refresh_token_invalid']) {
    t.ok((coverage.get(outcome) ?? 0) > 0, `the runs exercised "${outcome}"`)
  }
})
