/** Public, unauthenticated endpoints: the JWKS and health checks. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Services } from '../services.js'
import { sendError } from '../error-handler.js'
import { errorResponses, HealthStatus, Jwks, ReadyStatus } from '../schemas.js'

export const discoveryRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { keys, readiness } = services

  app.get('/.well-known/jwks.json', {
    schema: { summary: 'The public keys that verify access tokens (JWKS)', response: { 200: Jwks, ...errorResponses() } },
  }, async (_request, reply) => {
    // Resource servers may cache the key set briefly; a new key is published
    // before it signs anything (see README, key rotation).
    reply.header('cache-control', 'public, max-age=300')
    return { keys: [...keys.jwks.keys] }
  })

  app.get('/health/live', {
    schema: { summary: 'Liveness: the process answers', response: { 200: HealthStatus, ...errorResponses() } },
  }, async () => ({ status: 'ok' }))

  // 503 only without the database; without Redis or the invalidation bus
  // vouch stays correct, and answers 200 "degraded" (src/http/readiness.ts).
  app.get('/health/ready', {
    schema: {
      summary: 'Readiness: 503 without the database; "degraded" without Redis or the invalidation bus',
      response: { 200: ReadyStatus, ...errorResponses() },
    },
  }, async (request, reply) => {
    const { status, checks, cause } = await readiness()
    if (status === 'unavailable') {
      request.log.warn({ err: cause, checks }, 'readiness check failed: database unreachable')
      return sendError(reply, 'service_unavailable', 'The database is unreachable.')
    }
    return { status, checks }
  })
}
