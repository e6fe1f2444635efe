/**
 * @vouch/client: vouch in a browser, Node ≥ 20 or any fetch runtime. Typed
 * calls for every end-user route, token storage adapters, an authenticated
 * `fetch` with race-proof refresh (one refresh per browser, however many
 * calls and tabs need it), sign-out events with their reason, revocation
 * pushed from vouch, and cookie mode for first-party web apps. No runtime
 * dependencies.
 *
 * Subpaths: `@vouch/client/error-codes` (the error-code list, shared with the
 * server's catalogue), `@vouch/client/protocol` (the header, path and event
 * names vouch and this client agree on) and `@vouch/client/user-agent` (short
 * browser and system names from a User-Agent string, as vouch's device list
 * and new-device mail show them).
 *
 * @example
 * import { createVouchClient, VouchError } from '@vouch/client'
 *
 * const vouch = createVouchClient({ baseUrl: 'https://auth.example.com', mode: 'cookie' })
 * vouch.on('signedOut', ({ reason }) => showSignIn(reason))
 * if (!(await vouch.restore())) showSignIn()
 * const orders = await vouch.fetch('/api/orders').then((r) => r.json())
 *
 * @module
 */
export { createVouchClient, type FetchLike, type VouchClient, type VouchClientOptions } from './client.js'
export { VouchError, isVouchError } from './errors.js'
export { ERROR_CODES, type ErrorCode } from './error-codes.js'
export { SESSION_WATCH_PATH, VOUCH_MODE_HEADER, WATCH_EVENTS } from './protocol.js'
export type { VouchEvents, VouchListener } from './events.js'
export {
  memoryStorage, localStorageAdapter, sessionStorageAdapter, webStorageAdapter, DEFAULT_STORAGE_KEY,
  type StoredTokens, type TokenStorage, type WebStorageLike,
} from './storage.js'
export type { ErrorBody, Profile, Session, SignOutReason, TokenPair, VouchSession } from './types.js'
export { describeUserAgent, parseUserAgent, type UserAgentInfo } from './user-agent.js'
