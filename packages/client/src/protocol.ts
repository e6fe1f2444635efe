/**
 * The wire names that vouch and this client must agree on, defined once:
 * the server (src/http) imports them from here, so a rename on one side
 * fails the other's type check instead of silently breaking browsers.
 *
 * @example
 * import { VOUCH_MODE_HEADER, SESSION_WATCH_PATH, WATCH_EVENTS } from '@vouch/client/protocol'
 *
 * @module
 */

/**
 * The request header that puts a request in cookie mode (value `cookie`):
 * the refresh token then travels only in an HttpOnly cookie. Lower-case, as
 * Node and fetch spell header names.
 *
 * @example
 * await fetch(`${baseUrl}/auth/refresh`, { method: 'POST', credentials: 'include', headers: { [VOUCH_MODE_HEADER]: 'cookie' } })
 */
export const VOUCH_MODE_HEADER = 'vouch-mode'

/**
 * Where a page follows the end of its session (server-sent events).
 *
 * @example
 * const stream = await fetch(`${baseUrl}${SESSION_WATCH_PATH}`, { headers: { authorization: `Bearer ${accessToken}` } })
 */
export const SESSION_WATCH_PATH = '/auth/session/watch'

/**
 * The session-watch stream's event names: `ready` at once; then at most one
 * of `revoked` (`{sessionId}` or `{minVersion}`) or `expired`, and the end.
 *
 * @example
 * if (event.type === WATCH_EVENTS.revoked) signOut()
 */
export const WATCH_EVENTS = Object.freeze({ ready: 'ready', revoked: 'revoked', expired: 'expired' } as const)
