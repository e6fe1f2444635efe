/**
 * Bearer authentication. Routes opt in with `config: { auth: 'bearer' }`; the
 * token is checked in the route's onRequest hooks, after the rate limiter
 * (so floods of bad tokens are limited too) and before the body is even
 * parsed, and the verified principal is put on `request.principal`.
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

  const verify: onRequestAsyncHookHandler = async (request) => {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) throw new DomainError('invalid_token', 'A bearer access token is required.')
    const { userId, sessionId, version } = await sessions.authenticate(token)
    request.principal = new RequestPrincipal(userId, sessionId, version, request)
  }

  // Appended to each bearer route's own hooks, which the rate limiter filled first.
  app.addHook('onRoute', (route) => {
    if (route.config?.auth !== 'bearer') return
    route.onRequest = [...hookList(route.onRequest), verify]
  })
}, { name: 'vouch-authenticate', fastify: '5.x', dependencies: ['vouch-rate-limit'] })
