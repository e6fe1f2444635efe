/**
 * Bearer authentication. Routes opt in with `config: { auth: 'bearer' }`; the
 * token is checked in the route's onRequest hooks, after the rate limiter
 * (so floods of bad tokens are limited too) and before the body is even
 * parsed, and the verified principal is put on `request.principal`.
 *
 * One exception, for a route with `cookieFallback` too (POST /auth/logout,
 * refresh-cookie.ts): a cookie-mode request with no access token, or an
 * expired one, goes on without a principal (`request.principal` stays null)
 * and the refresh cookie names its session instead. Only absent or expired:
 * a token that is forged, malformed or revoked is refused as anywhere else.
 * An expired token's signature was checked before its expiry (jose), so
 * `token_expired` is never the verdict on a forged one.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { bearerToken } from '@vouch/verifier/protocol'
import { DomainError } from '../../errors.js'
import { hookList } from './hook-list.js'
import type { Principal, Sessions } from '../../domain/sessions.js'
import type { ClientInfo } from '../../domain/security-events.js'
import { clientOf } from '../client-info.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: 'bearer'
  }
  interface FastifyRequest {
    principal: Principal
  }
}

/** The principal of a request; where it came from is read only if an event needs it (not on every request). */
class RequestPrincipal implements Principal {
  readonly #request: FastifyRequest
  constructor (readonly userId: string, readonly sessionId: string, readonly version: number, request: FastifyRequest) {
    this.#request = request
  }

  get client (): ClientInfo {
    return clientOf(this.#request)
  }
}

export const authenticate = fp<{ sessions: Sessions }>(async (app, { sessions }) => {
  app.decorateRequest('principal', null as unknown as Principal)

  /** The refresh cookie may stand in for the access token (see the header). */
  const cookieMayStandIn = (request: FastifyRequest) => request.cookieMode && request.routeOptions.config.cookieFallback === true

  const verify: onRequestAsyncHookHandler = async (request) => {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) {
      if (cookieMayStandIn(request)) return
      throw new DomainError('invalid_token', 'A bearer access token is required.')
    }
    try {
      const { userId, sessionId, version } = await sessions.authenticate(token)
      request.principal = new RequestPrincipal(userId, sessionId, version, request)
    } catch (err) {
      if (err instanceof DomainError && err.code === 'token_expired' && cookieMayStandIn(request)) return
      throw err
    }
  }

  // Appended to each bearer route's own hooks, which the rate limiter filled first.
  app.addHook('onRoute', (route) => {
    if (route.config?.auth !== 'bearer') return
    route.onRequest = [...hookList(route.onRequest), verify]
  })
  // refresh-cookie.ts first: it sets request.cookieMode, and its hooks on a cookieFallback route run before this check.
}, { name: 'vouch-authenticate', fastify: '5.x', dependencies: ['vouch-rate-limit', 'vouch-refresh-cookie'] })
