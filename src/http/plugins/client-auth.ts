/**
 * Client authentication for resource servers (RFC 6749 §2.3.1): HTTP Basic
 * with the client id and secret from RESOURCE_CLIENTS, or `client_id` and
 * `client_secret` in the body. Secrets are compared in constant time. Routes
 * opt in with `config: { auth: 'client' }`; a failure is 401
 * invalid_credentials with a Basic challenge.
 */
import type { FastifyRequest, onRequestAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { hashSecret, sameHash } from '../../crypto/secrets.js'
import { DomainError } from '../../errors.js'
import { hookList } from './hook-list.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    client?: true
  }
  interface FastifyRequest {
    clientId: string
  }
}

function credentialsOf (request: FastifyRequest): [string, string] | undefined {
  const basic = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(request.headers.authorization ?? '')?.[1]
  if (basic !== undefined) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return undefined
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    const decode = (part: string) => { try { return decodeURIComponent(part.replace(/\+/g, ' ')) } catch { return part } }
    return [decode(decoded.slice(0, colon)), decode(decoded.slice(colon + 1))]
  }
  const body = request.body as { client_id?: unknown, client_secret?: unknown } | undefined
  if (typeof body?.client_id === 'string' && typeof body.client_secret === 'string') return [body.client_id, body.client_secret]
  return undefined
}

export const clientAuth = fp<{ clients: ReadonlyMap<string, string> }>(async (app, { clients }) => {
  const hashes = new Map([...clients].map(([id, secret]) => [id, hashSecret(secret)]))
  const dummy = hashSecret('no such client')
  app.decorateRequest('clientId', '')

  const check = async (request: FastifyRequest) => {
    const [id, secret] = credentialsOf(request) ?? ['', '']
    const expected = hashes.get(id)
    // Always one comparison, known client or not.
    const matches = sameHash(hashSecret(secret), expected ?? dummy) && expected !== undefined
    if (!matches) throw new DomainError('invalid_credentials', 'Client authentication failed.')
    request.clientId = id
  }
  // Header credentials are checked before the body is read; body credentials after it is parsed.
  const early: onRequestAsyncHookHandler = async (request) => {
    if (request.headers.authorization !== undefined) await check(request)
  }
  const late: preValidationAsyncHookHandler = async (request) => {
    if (request.clientId === '') await check(request)
  }
  app.addHook('onRoute', (route) => {
    if (route.config?.client !== true) return
    route.onRequest = [...hookList(route.onRequest), early]
    route.preValidation = [...hookList(route.preValidation), late]
  })
}, { name: 'vouch-client-auth', fastify: '5.x', dependencies: ['vouch-rate-limit'] })
