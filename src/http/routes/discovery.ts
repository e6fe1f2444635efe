/** Public, unauthenticated endpoints: the JWKS and health checks. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Services } from '../services.js'
import { sendError } from '../error-handler.js'
import { ErrorResponses, HealthStatus, Jwks } from '../schemas.js'

export const discoveryRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { keys, db } = services

  app.get('/.well-known/jwks.json', {
    schema: { response: { 200: Jwks, ...ErrorResponses } },
  }, async (_request, reply) => {
    // Resource servers may cache the key set briefly; a new key is published
    // before it signs anything (see README, key rotation).
    reply.header('cache-control', 'public, max-age=300')
    return { keys: [...keys.jwks.keys] }
  })

  app.get('/health/live', {
    schema: { response: { 200: HealthStatus } },
  }, async () => ({ status: 'ok' }))

  app.get('/health/ready', {
    schema: { response: { 200: HealthStatus, ...ErrorResponses } },
  }, async (request, reply) => {
    try {
      await db.$queryRaw`SELECT 1`
      return { status: 'ok' }
    } catch (err) {
      request.log.warn({ err }, 'readiness check failed: database unreachable')
      return sendError(reply, 'service_unavailable', 'The database is unreachable.')
    }
  })
}
