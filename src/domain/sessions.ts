/**
 * Sessions and the tokens bound to them. The invariants this module guards:
 *
 * - A token is honoured only while its session is active: not revoked, not
 *   past its absolute expiry or idle limit, and created (or re-keyed) under
 *   the user's current tokenVersion. Bumping the user's version is therefore
 *   one UPDATE of one row that ends every session and token of the user; no
 *   session row is read or written by it.
 * - A refresh token names its session and its generation (see
 *   refresh-tokens.ts); only a hash is stored and lookups are by primary key.
 *   Every refresh rotates it, deterministically, so concurrent refreshes with
 *   one token all get the same new token (no second chain).
 * - The previous token stays usable for the grace window only as a duplicate
 *   of the rotation that already happened, and only from the client the
 *   session belongs to (same user agent); the live successor is handed back
 *   and the duplicate is reported. Any superseded token presented otherwise
 *   (later, from another client, or any number of rotations back) is a
 *   replay: the session is revoked (committed before answering) and the
 *   caller gets `refresh_token_reused`.
 * - Keeping one device while ending the others (password change,
 *   revoke-others) bumps the version and re-keys the kept session in one
 *   transaction, conditional on the caller's token still being current.
 *
 * This file holds the public API; the work is split along those lines:
 * session-lifecycle.ts (start, list, end), session-rotation.ts (refresh)
 * and session-liveness.ts (the access-token check), over session-kit.ts.
 */
import type { Db } from '../db/client.js'
import type { AccessClaims, AccessTokens } from './access-tokens.js'
import type { Clock } from './clock.js'
import type { SessionCache, UserProfile } from './session-cache.js'
import type { ClientInfo, SecurityEvents, SignInMethod } from './security-events.js'
import type { TokenVersions } from './token-version.js'
import { createSessionKit } from './session-kit.js'
import { createSessionLifecycle } from './session-lifecycle.js'
import { createSessionLiveness } from './session-liveness.js'
import { createSessionRotation } from './session-rotation.js'

export interface TokenPair {
  tokenType: 'Bearer'
  accessToken: string
  /** Seconds. */
  expiresIn: number
  refreshToken: string
  /** Seconds until the refresh token lapses (absolute expiry or idle limit, whichever is first). */
  refreshExpiresIn: number
  sessionId: string
}

/** Who a verified access token speaks for. */
export interface Principal {
  readonly userId: string
  readonly sessionId: string
  readonly version: number
  /** Where the request came from, for the security events it causes. */
  readonly client?: ClientInfo | undefined
}

export interface DeviceInfo {
  deviceName?: string | null | undefined
  userAgent?: string | null | undefined
  ip?: string | null | undefined
}

export interface SessionView {
  id: string
  deviceName: string | null
  userAgent: string | null
  ip: string | null
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
  current: boolean
}

export interface SessionSettings {
  /** Absolute lifetime, seconds. */
  readonly lifetime: number
  /** Seconds; 0 = no idle limit. */
  readonly idleTimeout: number
  /** Seconds. */
  readonly reuseGraceWindow: number
  /** Most active sessions a user may have; a sign-in beyond it revokes the least recently used (session-limit.ts). 0 = no limit. */
  readonly maxPerUser: number
}

/** A password change that rides on `keepOnly`'s transaction. */
export interface PasswordUpdate {
  readonly passwordHash: string
  /** The hash the caller's current password was verified against. */
  readonly verifiedHash: string
}

export type RevokedReason = 'logout' | 'revoked_by_user' | 'refresh_token_reused' | 'session_limit' | 'admin'

export interface Sessions {
  /** Starts a session, recording `sign_in_succeeded` (and `new_device` for a device the account has not used before). */
  start (user: { id: string, tokenVersion: number }, device: DeviceInfo, method?: SignInMethod): Promise<TokenPair>
  /** Rotates the token; `client` is who presents it (a grace-window duplicate must come from the session's own client). */
  refresh (refreshToken: string, client: ClientInfo): Promise<TokenPair>
  /** Verifies an access token and that its version and session are live. */
  authenticate (accessToken: string): Promise<Principal>
  /**
   * The caller's profile, from the state its token check just read: cached
   * with it and dropped with it on every change to the user, so GET
   * /auth/me costs no query while the cache holds the session.
   */
  profile (principal: Principal): Promise<UserProfile>
  /** The claims of an access token vouch would accept, or null (introspection). */
  inspect (accessToken: string): Promise<AccessClaims | null>
  /** Ends the caller's session. */
  end (principal: Principal): Promise<void>
  /** Ends every session and token of the user: one atomic increment. */
  endAll (userId: string, client?: ClientInfo): Promise<void>
  /** Ends every other session and token; the caller's session gets a new version and refresh token. */
  keepOnly (principal: Principal, passwordUpdate?: PasswordUpdate): Promise<TokenPair>
  list (principal: Principal): Promise<SessionView[]>
  /** Revokes one of the caller's sessions; `not_found` for anyone else's. */
  revoke (principal: Principal, sessionId: string): Promise<void>
  /**
   * Token revocation (RFC 7009): ends the session, like logout, of an access
   * token vouch would accept, or of a refresh token that is its session's
   * current one or a superseded one (whoever holds either could end the
   * session anyway, through logout or a replay). Anything else (unknown,
   * malformed, expired, already revoked) changes nothing. True if a session ended.
   * `reason` is what its event says: `token_revocation` (POST /auth/revoke), or
   * `logout` (a cookie-mode logout by its refresh cookie).
   */
  revokeByToken (token: string, client?: ClientInfo, reason?: 'token_revocation' | 'logout'): Promise<boolean>
}

export interface SessionDeps {
  db: Db
  clock: Clock
  accessTokens: AccessTokens
  /** Key that rotated refresh secrets are derived under. */
  refreshKey: Uint8Array
  settings: SessionSettings
  /** Keeps the access-token check off the database; told of every write here. */
  cache: SessionCache
  events: SecurityEvents
  /** Where every session of a user ends at once (logout-all, revoke-others). */
  versions: TokenVersions
}

export function createSessions (deps: SessionDeps): Sessions {
  const kit = createSessionKit(deps)
  const liveness = createSessionLiveness(kit)
  return { ...liveness, ...createSessionRotation(kit), ...createSessionLifecycle(kit, liveness) }
}
