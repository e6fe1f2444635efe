/**
 * Bearer authentication. Routes opt in with `config: { auth: 'bearer' }`; the
 * token is checked in onRequest, before the body is even parsed, and the
 * verified principal is put on `request.principal`.
 */
import fp from 'fastify-plugin'
import { DomainError } from '../../errors.js'
import type { Principal, Sessions } from '../../domain/sessions.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: 'bearer'
  }
  interface FastifyRequest {
    principal: Principal
  }
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

export const authenticate = fp<{ sessions: Sessions }>(async (app, { sessions }) => {
  app.decorateRequest('principal', null as unknown as Principal)
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.auth !== 'bearer') return
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1]
    if (token === undefined) throw new DomainError('invalid_token', 'A bearer access token is required.')
    request.principal = await sessions.authenticate(token)
  })
}, { name: 'vouch-authenticate', fastify: '5.x' })
