/**
 * `createVouchClient`: typed calls to every end-user route of vouch, an
 * authenticated `fetch` for the application's own API, and the session's
 * lifecycle (restore, refresh, sign-out, events) in bearer or cookie mode.
 *
 * The invariants the client keeps, and where:
 *
 * - no two refreshes of one token leave a browser (refresh.ts, tabs.ts);
 * - storage never goes back to a superseded refresh token (state.ts);
 * - only vouch's verdict signs a user out: a refused refresh
 *   (`refresh_token_invalid`, `refresh_token_reused`), a `revoked` push
 *   (watch.ts), or the user's own sign-out. A network failure is rethrown as
 *   the TypeError it is and changes nothing; a 401 from the application's
 *   API or from vouch is first checked with a refresh;
 * - cookie mode: every call carries `Vouch-Mode: cookie` and
 *   `credentials: 'include'`, and no refresh token is ever held in script
 *   (one in a response body is dropped, not kept).
 *
 * @module
 */
import { errorFromAnswer, knownCode, VouchError } from './errors.js'
import { createEmitter, type VouchEvents } from './events.js'
import { createRefresher, notSignedIn, storedFrom } from './refresh.js'
import { createSessionState, readClaims, type ChangeKind } from './state.js'
import { memoryStorage, type TokenStorage } from './storage.js'
import { createTabSync, crossTabByDefault } from './tabs.js'
import type { Profile, Session, TokenPair, VouchSession } from './types.js'
import { createWatch, type Watch } from './watch.js'
import { SESSION_WATCH_PATH, VOUCH_MODE_HEADER } from './protocol.js'

/**
 * The fetch the client uses: the platform's, or one passed in (a test
 * double, a fetch with a proxy agent, a cookie-jar fetch in Node).
 *
 * @example
 * const logged: FetchLike = async (input, init) => {
 *   const response = await fetch(input, init)
 *   console.log(init?.method ?? 'GET', String(input), response.status)
 *   return response
 * }
 */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * How to create a client.
 *
 * @example
 * const options: VouchClientOptions = { baseUrl: 'https://auth.example.com', mode: 'cookie', deviceName: 'Web app' }
 */
export interface VouchClientOptions {
  /** Where vouch is, e.g. `https://auth.example.com` (a path prefix is allowed; a trailing slash is ignored). */
  baseUrl: string
  /**
   * `bearer` (default): the client holds both tokens (in `storage`).
   * `cookie`: the refresh token lives in vouch's HttpOnly cookie and the
   * access token in memory; the page's origin must be in vouch's COOKIE_ORIGINS.
   */
  mode?: 'bearer' | 'cookie'
  /** Bearer mode only: where the tokens are kept; default `memoryStorage()`. */
  storage?: TokenStorage
  /** Default: the global `fetch`. */
  fetch?: FetchLike
  /** Seconds before the access token's expiry from which a call refreshes first (at most half its lifetime); default 30. */
  refreshLeeway?: number
  /**
   * Coordinate the origin's tabs: they share one session (tokens, sign-in and
   * sign-out), one refresh and one watch stream. Default: in a page with
   * BroadcastChannel; off in Node and workers. Turn it off for a different
   * session per tab.
   */
  crossTab?: boolean
  /** Keep vouch's session-watch stream (or a once-a-minute check where streams are unavailable); default: where fetch bodies are streams. */
  watch?: boolean
  /** Sent with register, login and reset unless the call gives one. */
  deviceName?: string
  /**
   * The current time in ms (default `Date.now`). Expiries are kept by this
   * clock, relative to when each token pair was requested, so a device whose
   * clock is wrong still refreshes on time; replace it in tests to move time.
   */
  now?: () => number
}

/**
 * A vouch client.
 *
 * @example
 * const vouch = createVouchClient({ baseUrl: 'https://auth.example.com', mode: 'cookie' })
 * if (!(await vouch.restore())) await vouch.login({ email, password })
 * const orders = await vouch.fetch('https://api.example.com/orders').then((r) => r.json())
 */
export interface VouchClient {
  /** True while a session is held. */
  readonly isSignedIn: boolean
  /** The session held, or null. */
  readonly session: VouchSession | null
  /**
   * Picks up an existing session: bearer mode loads storage; cookie mode
   * refreshes once through the cookie (single-flight across tabs) if one
   * exists. Resolves to whether a session is held; emits no event. Called by
   * itself before the first call that needs a session; rejects with a
   * TypeError when vouch cannot be reached.
   */
  restore (): Promise<boolean>
  /** Creates an account and signs in (`signedIn`). */
  register (input: { email: string, password: string, deviceName?: string }): Promise<{ user: Profile, session: VouchSession }>
  /** Signs in (`signedIn`). */
  login (input: { email: string, password: string, deviceName?: string }): Promise<VouchSession>
  /** New tokens now (`refreshed`), single-flight in the page and across tabs. */
  refresh (): Promise<VouchSession>
  /**
   * Ends this session at vouch (`signedOut` with `logout`). Nothing to do when signed out.
   * In cookie mode an expired access token is not refreshed first: vouch ends the session its refresh cookie names.
   */
  logout (): Promise<void>
  /** Ends every session of the user, this one included (`signedOut` with `logout`). */
  logoutAll (): Promise<void>
  /** Changes the password; other sessions end, this one continues with new tokens (`refreshed`). */
  changePassword (input: { currentPassword: string, newPassword: string }): Promise<void>
  /** Ends every other session; this one continues with new tokens (`refreshed`). */
  revokeOtherSessions (): Promise<void>
  /** The user's signed-in devices. */
  sessions (): Promise<Session[]>
  /** Ends one session of the user; this one's own id signs out (`logout`). */
  revokeSession (id: string): Promise<void>
  /** The signed-in user. */
  me (): Promise<Profile>
  /** Asks vouch to mail a reset link (the same answer whether or not the email has an account). */
  forgotPassword (email: string): Promise<void>
  /** Sets a new password with a mailed token; signs in (`signedIn`) when vouch is set to (RESET_SIGNS_IN). */
  resetPassword (input: { token: string, newPassword: string, deviceName?: string }): Promise<{ signedIn: boolean }>
  /** Deletes the account (the password again) and signs out (`logout`). */
  deleteAccount (password: string): Promise<void>
  /**
   * `fetch` for the application's own API with `Authorization: Bearer
   * <access token>`: refreshes first when the token is within
   * `refreshLeeway` of expiry; on a 401 `token_expired` (or `token_revoked`,
   * which a refresh confirms) refreshes once and retries once. Sends the
   * token to whatever URL it is given. Without a session, sends the request
   * as it is.
   */
  fetch (input: string | URL | Request, init?: RequestInit): Promise<Response>
  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof VouchEvents> (type: K, listener: (detail: VouchEvents[K]) => void): () => void
  /** Stops the watch stream, timers and the tab channel. */
  close (): void
}

/** A parsed answer from vouch (`response` unread for a stream). */
interface Answer {
  status: number
  headers: Headers
  body: unknown
  response?: Response
  /** The access token the request carried. */
  token?: string
}

/** Access-token verdicts a refresh can cure, or confirm. */
const RENEWABLE = new Set(['token_expired', 'token_revoked'])

/** The code of a 401 from any API: vouch's JSON `code`, else RFC 6750's WWW-Authenticate. */
async function tokenErrorOf (response: Response): Promise<string | undefined> {
  if (/json/i.test(response.headers.get('content-type') ?? '')) {
    const code = await response.clone().json().then((body: unknown) => (body as { code?: unknown } | null)?.code, () => undefined)
    if (typeof code === 'string') return code
  }
  const challenge = response.headers.get('www-authenticate') ?? ''
  if (/error="?invalid_token/i.test(challenge)) {
    const description = /error_description="([^"]*)"/i.exec(challenge)?.[1] ?? ''
    if (/expired/i.test(description)) return 'token_expired'
    if (/revoked/i.test(description)) return 'token_revoked'
  }
  return undefined
}

function withBearer (request: Request, token: string | undefined): Request {
  if (token === undefined) return request
  const headers = new Headers(request.headers)
  headers.set('authorization', `Bearer ${token}`)
  return new Request(request, { headers })
}

/**
 * Creates a client. A mistake in the options is a TypeError, thrown here.
 *
 * @example
 * import { createVouchClient, localStorageAdapter } from '@vouch/client'
 *
 * // A first-party web app (recommended): refresh token in an HttpOnly cookie.
 * const web = createVouchClient({ baseUrl: 'https://auth.example.com', mode: 'cookie' })
 *
 * // A mobile or desktop app, a script, a service: both tokens held by the client.
 * const app = createVouchClient({ baseUrl: 'https://auth.example.com', storage: localStorageAdapter() })
 * app.on('signedOut', ({ reason }) => showSignIn(reason))
 */
export function createVouchClient (options: VouchClientOptions): VouchClient {
  if (typeof options !== 'object' || options === null) throw new TypeError('createVouchClient: options are required')
  if (typeof options.baseUrl !== 'string' || !URL.canParse(options.baseUrl)) {
    throw new TypeError('createVouchClient: baseUrl must be an absolute URL, such as https://auth.example.com')
  }
  const base = options.baseUrl.replace(/\/+$/, '')
  const mode = options.mode ?? 'bearer'
  if (mode !== 'bearer' && mode !== 'cookie') throw new TypeError('createVouchClient: mode must be "bearer" or "cookie"')
  if (mode === 'cookie' && options.storage !== undefined) {
    throw new TypeError('createVouchClient: cookie mode keeps no tokens in storage (the refresh token is an HttpOnly cookie); remove storage')
  }
  const leeway = options.refreshLeeway ?? 30
  if (typeof leeway !== 'number' || !(leeway >= 0)) throw new TypeError('createVouchClient: refreshLeeway must be a number of seconds ≥ 0')
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  if (typeof fetchImpl !== 'function') throw new TypeError('createVouchClient: no fetch in this environment; pass options.fetch')
  const now = options.now ?? Date.now
  const cookie = mode === 'cookie'
  const streams = typeof ReadableStream === 'function' && typeof TextDecoder === 'function'

  const events = createEmitter<VouchEvents>()
  const sync = createTabSync(base, options.crossTab ?? crossTabByDefault())
  let watch: Watch | undefined
  const state = createSessionState({
    storage: cookie ? undefined : options.storage ?? memoryStorage(),
    sync,
    events,
    onChange: (kind: ChangeKind) => watch?.changed(kind),
  })
  let lastContact = -Infinity

  const send = async (path: string, init: { method?: string, body?: unknown, token?: string, signal?: AbortSignal, accept?: string } = {}): Promise<Response> => {
    const headers: Record<string, string> = { accept: init.accept ?? 'application/json' }
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
    if (cookie) headers[VOUCH_MODE_HEADER] = 'cookie'
    const response = await fetchImpl(`${base}${path}`, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
      ...(cookie && { credentials: 'include' as const }),
      ...(init.signal !== undefined && { signal: init.signal }),
    })
    lastContact = now()
    return response
  }

  const read = async (response: Response, token?: string): Promise<Answer> => {
    let body: unknown = null
    const text = response.status === 204 ? '' : await response.text()
    if (text !== '') {
      try {
        body = JSON.parse(text)
      } catch {
        // Not vouch's JSON (a proxy's page): the status decides.
      }
    }
    return { status: response.status, headers: response.headers, body, ...(token !== undefined && { token }) }
  }

  const expect = (answer: Answer, status: number): Answer => {
    if (answer.status !== status) throw errorFromAnswer(answer.status, answer.body, answer.headers)
    return answer
  }

  const refresher = createRefresher({
    mode, sync, state, now,
    async send (refreshToken) {
      const answer = await read(await send('/auth/refresh', { method: 'POST', body: cookie ? {} : { refreshToken } }))
      return expect(answer, 200).body as TokenPair
    },
  })

  let restoring: Promise<boolean> | undefined
  const restoreNow = async (): Promise<boolean> => {
    if (!cookie) return sync.withLock(() => state.load())
    if (state.tokens() !== null) return true
    // No tab of this origin has held a session since the last sign-out: the refresh could only be refused
    // (and a browser logs every refused fetch as a console error).
    if (sync.signedInMark() === false) return false
    try {
      await refresher.refresh({ restoring: true })
      return true
    } catch (err) {
      // No cookie, or one vouch no longer honours: not signed in.
      if (err instanceof VouchError && (err.code === 'refresh_token_invalid' || err.code === 'refresh_token_reused')) {
        sync.mark(false)
        return false
      }
      throw err
    }
  }
  const restore = (): Promise<boolean> => {
    const attempt = restoreNow()
    restoring = attempt
    // A failed attempt (no network) is tried again by the next call.
    attempt.catch(() => { if (restoring === attempt) restoring = undefined })
    return attempt
  }
  const ensureRestored = async (): Promise<void> => {
    await (restoring ?? restore()).catch(() => false)
  }

  /** The access token to send: refreshed first when close to expiry (if that fails, the one held). */
  const freshToken = async (): Promise<string | undefined> => {
    const held = state.tokens()
    if (held === null) return undefined
    // The leeway is at most half the token's life: with short-lived tokens (ACCESS_TOKEN_TTL=30)
    // and the default 30 s, every call would otherwise refresh first.
    const life = held.issuedAt === undefined ? Infinity : held.expiresAt - held.issuedAt
    if (now() < held.expiresAt - Math.min(leeway * 1000, life / 2)) return held.accessToken
    try {
      return (await refresher.refreshIfStale(held.accessToken)).accessToken
    } catch {
      return state.tokens()?.accessToken
    }
  }

  /**
   * A call with the access token: refresh first near expiry (unless `asHeld`: the token held is sent even if
   * it has expired); on 401 token_expired / token_revoked, refresh (or confirm) and retry once.
   */
  const authed = async (exchange: (token: string) => Promise<Answer>, { asHeld = false } = {}): Promise<Answer> => {
    await ensureRestored()
    const token = asHeld ? state.tokens()?.accessToken : await freshToken()
    if (token === undefined) throw new VouchError('invalid_token', 401, 'Not signed in.')
    const first = await exchange(token)
    if (first.status !== 401 || !RENEWABLE.has(knownCode(first.body) ?? '')) return first
    let renewed: VouchSession
    try {
      renewed = await refresher.refreshIfStale(token)
    } catch (err) {
      // vouch refused the refresh (the session is over, and signedOut said why): the first answer stands.
      if (err instanceof VouchError) return first
      throw err
    }
    return exchange(renewed.accessToken)
  }

  const call = async (path: string, init: { method?: string, body?: unknown } = {}): Promise<Answer> =>
    authed(async (token) => read(await send(path, { ...init, token }), token))

  /** Sign-in calls: the new session is taken with the lock held. */
  const signIn = (path: string, body: unknown, status: number): Promise<Answer> => sync.withLock(async () => {
    const sentAt = now()
    const answer = expect(await read(await send(path, { method: 'POST', body })), status)
    if (answer.status !== 204) await state.commit(storedFrom(answer.body as TokenPair, sentAt, mode), 'signedIn')
    restoring = Promise.resolve(state.tokens() !== null)
    return answer
  })

  /** Calls that re-key this session (the others end): the new pair is taken with the lock held. */
  const rekey = async (path: string, body?: unknown): Promise<void> => {
    const answer = await authed((token) => sync.withLock(async () => {
      const sentAt = now()
      const answer = await read(await send(path, { method: 'POST', body, token }), token)
      if (answer.status === 200) await state.commit(storedFrom(answer.body as TokenPair, sentAt, mode), 'refreshed')
      return answer
    }))
    expect(answer, 200)
  }

  /** Calls that end this session at vouch: signed out (`logout`) with the lock held. */
  const ending = async (path: string, method: string, body?: unknown, { asHeld = false } = {}): Promise<void> => {
    await ensureRestored()
    if (state.tokens() === null) return
    const answer = await authed((token) => sync.withLock(async () => {
      const answer = await read(await send(path, { method, body, token }), token)
      if (answer.status === 204) await state.end('logout')
      return answer
    }), { asHeld })
    // Refused because the session was already over (and signedOut has said why): nothing left to end.
    if (answer.status === 204 || state.tokens() === null) return
    throw errorFromAnswer(answer.status, answer.body, answer.headers)
  }

  const deviceName = (given: string | undefined) => {
    const name = given ?? options.deviceName
    return name === undefined ? {} : { deviceName: name }
  }

  if (options.watch ?? streams) {
    watch = createWatch({
      sync, streams, now,
      signedIn: () => state.tokens() !== null,
      async open (signal) {
        const answer = await authed(async (token) => {
          const response = await send(SESSION_WATCH_PATH, { token, signal, accept: 'text/event-stream' })
          if (response.status === 200) return { status: 200, headers: response.headers, body: null, response, token }
          return read(response, token)
        })
        const retryAfter = Number(answer.headers.get('retry-after') ?? Number.NaN)
        return { status: answer.status, retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined, response: answer.response, token: answer.token }
      },
      onRevoked: (detail) => sync.withLock(async () => {
        // Decide on the tokens the tabs hold now: the tab that changed the password has posted its new pair.
        const gen = sync.readGen()
        if (gen !== state.gen()) await state.catchUp(gen)
        const held = state.tokens()
        if (held === null) return
        if (detail.sessionId !== undefined) {
          if (detail.sessionId === held.sessionId) await state.end('revoked')
        } else if (detail.minVersion !== undefined) {
          const { ver } = readClaims(held.accessToken)
          if (ver === undefined || ver < detail.minVersion) await state.end('revoked')
        }
      }),
      onExpired: (usedToken) => refresher.refreshIfStale(usedToken).then(() => {}, () => {}),
      async check () {
        await call('/auth/me')
      },
      lastContact: () => lastContact,
    })
  }

  return {
    get isSignedIn () { return state.tokens() !== null },
    get session () { return state.view() },

    restore,

    async register ({ email, password, deviceName: name }) {
      const answer = await signIn('/auth/register', { email, password, ...deviceName(name) }, 201)
      return { user: (answer.body as { user: Profile }).user, session: state.view()! }
    },

    async login ({ email, password, deviceName: name }) {
      await signIn('/auth/login', { email, password, ...deviceName(name) }, 200)
      return state.view()!
    },

    async refresh () {
      await ensureRestored()
      if (cookie && state.tokens() === null) throw notSignedIn()
      return refresher.refresh()
    },

    // In cookie mode vouch ends the session the refresh cookie names when the access token has expired: no refresh just to sign out.
    logout: () => ending('/auth/logout', 'POST', undefined, { asHeld: cookie }),
    logoutAll: () => ending('/auth/logout-all', 'POST'),
    deleteAccount: (password) => ending('/auth/account', 'DELETE', { password }),

    changePassword: ({ currentPassword, newPassword }) => rekey('/auth/password', { currentPassword, newPassword }),
    revokeOtherSessions: () => rekey('/auth/sessions/revoke-others'),

    async sessions () {
      return (expect(await call('/auth/sessions'), 200).body as { sessions: Session[] }).sessions
    },

    async revokeSession (id) {
      await ensureRestored()
      if (id === state.tokens()?.sessionId) return ending(`/auth/sessions/${encodeURIComponent(id)}`, 'DELETE')
      expect(await call(`/auth/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' }), 204)
    },

    async me () {
      return expect(await call('/auth/me'), 200).body as Profile
    },

    async forgotPassword (email) {
      expect(await read(await send('/auth/password/forgot', { method: 'POST', body: { email } })), 202)
    },

    async resetPassword ({ token, newPassword, deviceName: name }) {
      const answer = await sync.withLock(async () => {
        const sentAt = now()
        const answer = await read(await send('/auth/password/reset', { method: 'POST', body: { token, newPassword, ...deviceName(name) } }))
        if (answer.status === 200) {
          await state.commit(storedFrom(answer.body as TokenPair, sentAt, mode), 'signedIn')
          restoring = Promise.resolve(true)
        }
        return answer
      })
      if (answer.status !== 200 && answer.status !== 204) throw errorFromAnswer(answer.status, answer.body, answer.headers)
      return { signedIn: answer.status === 200 }
    },

    async fetch (input, init) {
      await ensureRestored()
      const request = new Request(input, init)
      // The retry needs the body again: a copy taken before the first attempt reads it.
      const spare = request.clone()
      const token = await freshToken()
      const response = await fetchImpl(withBearer(request, token))
      if (response.status !== 401 || token === undefined) return response
      if (!RENEWABLE.has(await tokenErrorOf(response) ?? '')) return response
      let renewed: VouchSession
      try {
        renewed = await refresher.refreshIfStale(token)
      } catch {
        // Refused (signedOut said why) or no network: the API's answer stands.
        return response
      }
      await response.body?.cancel().catch(() => {})
      return fetchImpl(withBearer(spare, renewed.accessToken))
    },

    on: (type, listener) => events.on(type, listener),

    close () {
      watch?.close()
      sync.close()
      state.close()
    },
  }
}
