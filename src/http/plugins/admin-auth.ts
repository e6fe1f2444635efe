/**
 * Admin client authentication for the admin API (/admin). Routes opt in with
 * `config: { admin: true }`; the credentials are checked in the route's
 * onRequest hooks, after the per-IP rate limiter and before anything else.
 *
 * - HTTP Basic only (RFC 7617: `id:secret`, taken as sent, so that
 *   `curl -u id:secret` works with any secret); never credentials in a body
 *   or a query, which end up in logs.
 * - An admin client is one of ADMIN_CLIENTS or a stored client of kind
 *   `admin` (domain/api-clients.ts). Secrets are compared as SHA-256 hashes
 *   in constant time, always exactly one comparison whether the id is known
 *   or not; the configured secrets are hashed once, at start-up.
 * - No credentials, an unknown id or a wrong secret: 401
 *   `invalid_credentials` with a Basic challenge (error-handler.ts). The
 *   right secret of a client that is not an admin (RESOURCE_CLIENTS, or a
 *   stored resource client): 403 `forbidden`. The 403 comes only after the
 *   secret matched, so it says nothing to someone who merely knows an id.
 * - Failures are counted with resource-server client authentication's
 *   counters (limits/client-auth-throttle.ts): one budget per client id and
 *   IP, whichever endpoint is guessed at; past it the answer is 429
 *   `rate_limited`, whatever the secret.
 * - Stored clients are looked up through client-directory.ts (cached for a
 *   few seconds): a client added or removed with the CLI takes effect within that.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { hashSecret, sameHash } from '../../crypto/secrets.js'
import { DomainError, refusal } from '../../errors.js'
import type { Counters } from '../../limits/counters.js'
import { createClientAuthThrottle, type ClientAuthThrottleSettings } from '../../limits/client-auth-throttle.js'
import type { ClientDirectory } from './client-directory.js'
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
  /** Configured and stored clients (client-directory.ts), shared with client-auth.ts. */
  directory: ClientDirectory
  /** Where failures are counted (memory, or Redis for several instances); the same as client authentication's. */
  counters: Counters
  limits: ClientAuthThrottleSettings
}

/** The id and secret of a Basic Authorization header, undefined for anything else. */
export function basicCredentials (header: string | undefined): [string, string] | undefined {
  const encoded = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '')?.[1]
  if (encoded === undefined) return undefined
  const decoded = Buffer.from(encoded, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon > 0 ? [decoded.slice(0, colon), decoded.slice(colon + 1)] : undefined
}

export const adminAuth = fp<AdminAuthOptions>(async (app, { directory, counters, limits }) => {
  const dummy = hashSecret('no such client')
  const throttle = createClientAuthThrottle(counters, limits, (event) => app.log.warn({ event }, 'admin client authentication throttled'))
  app.decorateRequest('adminClientId', '')

  const verify: onRequestAsyncHookHandler = async (request: FastifyRequest) => {
    const [id, secret] = basicCredentials(request.headers.authorization) ?? ['', '']
    const client = await directory(id)
    // Always one comparison, known client or not.
    const matches = sameHash(hashSecret(secret), client?.secretHash ?? dummy) && client !== undefined
    if (!matches) {
      await throttle.failed(client === undefined ? undefined : id, request.ip)
      throw new DomainError('invalid_credentials', 'Admin client authentication failed.')
    }
    await throttle.succeeded(id, request.ip)
    if (client.kind !== 'admin') throw refusal('forbidden', { clientId: id })
    request.adminClientId = id
  }

  // Appended to each admin route's own hooks, which the rate limiter filled first.
  app.addHook('onRoute', (route) => {
    if (route.config?.admin !== true) return
    route.onRequest = [...hookList(route.onRequest), verify]
  })
}, { name: 'vouch-admin-auth', fastify: '5.x', dependencies: ['vouch-rate-limit'] })
