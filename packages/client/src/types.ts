/**
 * What vouch sends and what the client hands to the application: the wire
 * shapes of vouch's end-user routes (as its response schemas define them,
 * src/http/schemas.ts on the server) and the client's own view of a session.
 * Types only: nothing here exists at run time.
 *
 * @module
 */

/**
 * A token pair as vouch answers it (login, refresh, password change,
 * revoke-others, reset with RESET_SIGNS_IN). In cookie mode `refreshToken`
 * is absent: it travels only in the HttpOnly cookie.
 *
 * @example
 * const pair: TokenPair = {
 *   tokenType: 'Bearer', accessToken: 'eyJ…', expiresIn: 900,
 *   refreshToken: '3f0c…', refreshExpiresIn: 1209600, sessionId: '6f1c1c8e-…',
 * }
 */
export interface TokenPair {
  tokenType: 'Bearer'
  accessToken: string
  /** Seconds the access token is valid for. */
  expiresIn: number
  /** Absent in cookie mode. */
  refreshToken?: string
  /** Seconds until the refresh token lapses (absolute session expiry or idle limit, whichever is first). */
  refreshExpiresIn: number
  sessionId: string
}

/**
 * The signed-in user, as GET /auth/me answers.
 *
 * @example
 * const me: Profile = { id: 'b1e0…', email: 'ada@example.com', createdAt: '2026-01-01T09:00:00.000Z' }
 */
export interface Profile {
  id: string
  email: string
  /** RFC 3339. */
  createdAt: string
}

/**
 * One signed-in device of the user, as GET /auth/sessions answers.
 *
 * @example
 * const device: Session = {
 *   id: '6f1c…', deviceName: 'Ada’s laptop', userAgent: 'Mozilla/5.0 …', ip: '203.0.113.7',
 *   createdAt: '2026-01-01T09:00:00.000Z', lastUsedAt: '2026-01-02T10:00:00.000Z',
 *   expiresAt: '2026-01-15T09:00:00.000Z', current: true,
 * }
 */
export interface Session {
  id: string
  deviceName: string | null
  userAgent: string | null
  ip: string | null
  /** RFC 3339. */
  createdAt: string
  /** RFC 3339: the session's last refresh. */
  lastUsedAt: string
  /** RFC 3339: the session's absolute expiry. */
  expiresAt: string
  /** True for the session the request was made with (this device). */
  current: boolean
}

/**
 * The body of every error vouch answers with.
 *
 * @example
 * const body: ErrorBody = { statusCode: 401, error: 'Unauthorized', code: 'token_expired', message: 'The access token has expired.' }
 */
export interface ErrorBody {
  statusCode: number
  error: string
  code: string
  message: string
}

/**
 * The client's signed-in state, as `vouch.session` shows it. The refresh
 * token is never part of it (in cookie mode the page never sees one).
 *
 * @example
 * const current: VouchSession | null = vouch.session
 * if (current && current.expiresAt - Date.now() < 60_000) await vouch.refresh()
 */
export interface VouchSession {
  readonly sessionId: string
  readonly accessToken: string
  /** When the access token expires, in milliseconds since the epoch, by this device's clock. */
  readonly expiresAt: number
  /** The user's id (the access token's `sub`), when the token could be read. */
  readonly userId?: string
}

/**
 * Why the client signed out, as the `signedOut` event reports it:
 *
 * - `logout`: this client signed out (logout, logout-all, revoking its own
 *   session, deleting the account), or another tab of it did;
 * - `revoked`: the session was ended elsewhere (another device signed it
 *   out, signed out everywhere, changed or reset the password);
 * - `reuse_detected`: vouch saw this session's refresh token used twice (a
 *   stolen copy was used) and ended the session;
 * - `expired`: the session reached its end (absolute lifetime or idle limit).
 *
 * @example
 * vouch.on('signedOut', ({ reason }) => {
 *   if (reason === 'reuse_detected') alert('For your safety you were signed out. Please sign in again.')
 * })
 */
export type SignOutReason = 'logout' | 'revoked' | 'reuse_detected' | 'expired'
