/**
 * Admin client authentication for the admin API (/admin). Routes opt in with
 * `config: { admin: true }`; the credentials are checked in the route's
 * onRequest hooks, after the per-IP rate limiter and before anything else.
 *
 * - HTTP Basic only (RFC 7617), the secret taken as sent (`curl -u
 *   id:secret`) or form-encoded (RFC 6749's reading, as OAuth libraries
 *   send it); never credentials in a body or a query, which end up in logs.
 * - An admin client is one of ADMIN_CLIENTS or a stored client of kind
 *   `admin` (domain/api-clients.ts), checked by client-directory.ts's one
 *   credential check: constant-time, throttled with resource clients' one
 *   budget per client id and IP, and per IP, (past it the answer is 429 `rate_limited`,
 *   whatever the secret), a stored client taking effect within a few seconds.
 * - No credentials, an unknown id or a wrong secret: 401
 *   `invalid_credentials` with a Basic challenge (error-handler.ts). The
 *   right secret of a client that is not an admin (RESOURCE_CLIENTS, or a
 *   stored resource client): 403 `forbidden`. The 403 comes only after the
 *   secret matched, so it says nothing to someone who merely knows an id.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { refusal } from '../../errors.js'
import { basicCredentials, type ClientCheck } from './client-directory.js'
import { hookList } from './hook-list.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Admin client credentials (HTTP Basic) required. */
    admin?: true
  }
  interface FastifyRequest {
    /** The authenticated admin client's id, on `admin` routes. */
    adminClientId: string
  }
}

export interface AdminAuthOptions {
  /** The credential check shared with client-auth.ts (client-directory.ts). */
  check: ClientCheck
}

export const adminAuth = fp<AdminAuthOptions>(async (app, { check }) => {
  app.decorateRequest('adminClientId', '')

  const verify: onRequestAsyncHookHandler = async (request: FastifyRequest) => {
    // Any kind of client is checked here, so that a resource client's right secret can be told apart (403) from a wrong one (401).
    const client = await check(basicCredentials(request.headers.authorization), request.ip, () => true, 'Admin client authentication failed.')
    if (client.kind !== 'admin') throw refusal('forbidden', { clientId: client.id })
    request.adminClientId = client.id
  }

  // Appended to each admin route's own hooks, which the rate limiter filled first.
  app.addHook('onRoute', (route) => {
    if (route.config?.admin !== true) return
    route.onRequest = [...hookList(route.onRequest), verify]
  })
}, { name: 'vouch-admin-auth', fastify: '5.x', dependencies: ['vouch-rate-limit'] })
