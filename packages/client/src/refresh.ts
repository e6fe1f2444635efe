/**
 * Single-flight refresh: however many callers need new tokens at once, in
 * this page or in the origin's other tabs, one refresh request leaves the
 * browser, and everybody gets its result.
 *
 * - In the page, concurrent callers share one promise. A caller that saw a
 *   401 for an access token that has since been replaced does not refresh
 *   at all (`refreshIfStale`): it retries with the new token.
 * - Across tabs, the request is sent with the refresh lock held (Web Locks).
 *   A tab that gets the lock first compares the tabs' generation with the
 *   generation of the tokens it holds: if they differ, another tab changed
 *   the tokens while this one waited, so it takes the new ones (from the
 *   channel message, which that tab posted before releasing the lock) and
 *   sends nothing. Only a tab whose tokens are the current ones sends, and
 *   it writes the new generation before releasing the lock. Two refreshes of
 *   one token would need two tabs to hold the lock at once, or one of them
 *   to miss a generation that was written before the lock passed to it.
 *
 * A refresh vouch refuses ends the session, with the reason the `signedOut`
 * event reports: `refresh_token_reused` is `reuse_detected`;
 * `refresh_token_invalid` is `expired` when the refresh token had reached its
 * `refreshExpiresIn` by this device's clock, else `revoked`. Anything else
 * (no network, 429, 5xx) leaves the session as it is.
 *
 * @module
 */
import { VouchError } from './errors.js'
import type { SessionState } from './state.js'
import type { StoredTokens } from './storage.js'
import type { TabSync } from './tabs.js'
import type { SignOutReason, TokenPair, VouchSession } from './types.js'

export interface RefresherDeps {
  mode: 'bearer' | 'cookie'
  sync: TabSync
  state: SessionState
  now (): number
  /** POST /auth/refresh; resolves to the pair, throws VouchError (refused) or TypeError (network). */
  send (refreshToken: string | undefined): Promise<TokenPair>
}

export interface Refresher {
  /** New tokens, single-flight; `restoring`: nothing is held yet (cookie mode's restore), so no `signedIn` event. */
  refresh (options?: { restoring?: boolean }): Promise<VouchSession>
  /** New tokens unless `usedAccessToken` has already been replaced, in which case the current ones. */
  refreshIfStale (usedAccessToken: string): Promise<VouchSession>
}

/** The error for "nothing to refresh", shaped as vouch would answer it. */
export function notSignedIn (): VouchError {
  return new VouchError('refresh_token_invalid', 401, 'Not signed in.')
}

/** Why a refused refresh ended the session. */
export function signOutReason (err: VouchError, held: StoredTokens | null, now: number): SignOutReason | undefined {
  if (err.code === 'refresh_token_reused') return 'reuse_detected'
  if (err.code !== 'refresh_token_invalid') return undefined
  return held !== null && now >= held.refreshExpiresAt ? 'expired' : 'revoked'
}

/** The stored form of a pair vouch answered to a request sent at `sentAt`: expiries by this device's clock, never later than vouch's. */
export function storedFrom (pair: TokenPair, sentAt: number, mode: 'bearer' | 'cookie'): StoredTokens {
  if (typeof pair?.accessToken !== 'string' || typeof pair.sessionId !== 'string' ||
      typeof pair.expiresIn !== 'number' || typeof pair.refreshExpiresIn !== 'number' ||
      (mode === 'bearer' && typeof pair.refreshToken !== 'string')) {
    throw new TypeError('vouch answered a malformed token pair')
  }
  return {
    accessToken: pair.accessToken,
    expiresAt: sentAt + pair.expiresIn * 1000,
    issuedAt: sentAt,
    // Cookie mode never keeps a refresh token in script, even one sent by mistake.
    ...(mode === 'bearer' && { refreshToken: pair.refreshToken! }),
    refreshExpiresAt: sentAt + pair.refreshExpiresIn * 1000,
    sessionId: pair.sessionId,
  }
}

export function createRefresher ({ mode, sync, state, now, send }: RefresherDeps): Refresher {
  let inflight: Promise<VouchSession> | undefined

  const current = (): VouchSession => {
    const session = state.view()
    if (session === null) throw notSignedIn()
    return session
  }

  const once = (restoring: boolean) => {
    const asked = state.gen()
    return sync.withLock(() => locked(restoring, asked))
  }

  const locked = async (restoring: boolean, asked: string): Promise<VouchSession> => {
    // The tokens were replaced while this tab waited for the lock (another tab's message arrived first):
    // those are the new ones, or the sign-out.
    if (state.gen() !== asked) return current()
    const gen = sync.readGen()
    if (gen !== state.gen()) {
      // Another tab changed the tokens while this one waited for the lock: take its tokens, send nothing.
      if (await state.catchUp(gen)) return current()
      // Nothing reached us. Cookie mode: the cookie is the browser's newest token, so sending
      // it rotates, it does not replay. Bearer mode: ours may still be the current token (the
      // change may have been another session's); vouch's grace window covers the rest.
    }
    const held = state.tokens()
    if (mode === 'bearer' && held?.refreshToken === undefined) throw notSignedIn()
    const sentAt = now()
    let pair: TokenPair
    try {
      pair = await send(held?.refreshToken)
    } catch (err) {
      if (err instanceof VouchError) {
        const reason = signOutReason(err, held, now())
        if (reason !== undefined) await state.end(reason)
      }
      throw err
    }
    await state.commit(storedFrom(pair, sentAt, mode), restoring && held === null ? 'restored' : 'refreshed')
    return current()
  }

  const refresh: Refresher['refresh'] = (options = {}) => {
    inflight ??= once(options.restoring === true).finally(() => { inflight = undefined })
    return inflight
  }

  return {
    refresh,
    async refreshIfStale (usedAccessToken) {
      const held = state.tokens()
      // Signed out meanwhile (here or in another tab): nothing to refresh.
      if (held === null) throw notSignedIn()
      if (held.accessToken !== usedAccessToken) return current()
      return refresh()
    },
  }
}
