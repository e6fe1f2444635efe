/**
 * Client authentication for resource servers (RFC 6749 §2.3.1): HTTP Basic
 * with the client id and secret of a resource client (RESOURCE_CLIENTS, or
 * one stored with `vouch clients add --kind resource`), or `client_id` and
 * `client_secret` in the body, checked by client-directory.ts's one
 * credential check (constant time; throttled per client id and IP, per IP
 * and per client id, known or not: past the limits the answer is 429 rate_limited, whatever the
 * secret). Routes opt in with `config: { client: true }`; a failure is 401
 * invalid_credentials with a Basic challenge. An admin client is no
 * resource server: unknown here, like any other id.
 */
import type { FastifyRequest, onRequestAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { basicCredentials, type ClientCheck, type Credentials } from './client-directory.js'
import { hookList } from './hook-list.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * true: client credentials required. 'optional': checked only when the
     * request carries some (a Basic header or a `client_secret`), so that a
     * public client may call without (RFC 7009 token revocation).
     */
    client?: true | 'optional'
  }
  interface FastifyRequest {
    clientId: string
  }
}

/** Basic credentials (both readings of the secret, client-directory.ts), else `client_id` and `client_secret` in the body. */
function credentialsOf (request: FastifyRequest): Credentials {
  if (request.headers.authorization !== undefined) return basicCredentials(request.headers.authorization)
  const body = request.body as { client_id?: unknown, client_secret?: unknown } | undefined
  if (typeof body?.client_id === 'string' && typeof body.client_secret === 'string') return { id: body.client_id, secrets: [body.client_secret] }
  return undefined
}

export interface ClientAuthOptions {
  /** The credential check shared with admin-auth.ts (client-directory.ts). */
  check: ClientCheck
}

export const clientAuth = fp<ClientAuthOptions>(async (app, { check: checkClient }) => {
  app.decorateRequest('clientId', '')

  const check = async (request: FastifyRequest) => {
    const client = await checkClient(credentialsOf(request), request.ip, (found) => found.kind === 'resource', 'Client authentication failed.')
    request.clientId = client.id
  }
  // Header credentials are checked before the body is read; body credentials after it is parsed.
  const early: onRequestAsyncHookHandler = async (request) => {
    if (request.headers.authorization !== undefined) await check(request)
  }
  const late: preValidationAsyncHookHandler = async (request) => {
    if (request.clientId === '') await check(request)
  }
  const lateIfPresented: preValidationAsyncHookHandler = async (request) => {
    const secret = (request.body as { client_secret?: unknown } | undefined)?.client_secret
    if (request.clientId === '' && (request.headers.authorization !== undefined || secret !== undefined)) await check(request)
  }
  app.addHook('onRoute', (route) => {
    const client = route.config?.client
    if (client === undefined) return
    route.onRequest = [...hookList(route.onRequest), early]
    route.preValidation = [...hookList(route.preValidation), client === true ? late : lateIfPresented]
  })
}, { name: 'vouch-client-auth', fastify: '5.x', dependencies: ['vouch-rate-limit'] })
