/** A user's signed-in devices: list them, revoke one, or keep only this one. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Services } from '../services.js'
import { ErrorResponses, NoContent, SessionList, SessionParams, TokenPair } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const sessionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { sessions } = services

  app.get('/auth/sessions', {
    config: bearer, schema: { response: { 200: SessionList, ...ErrorResponses } },
  }, async (request) => ({ sessions: await sessions.list(request.principal) }))

  app.post('/auth/sessions/revoke-others', {
    config: bearer, schema: { response: { 200: TokenPair, ...ErrorResponses } },
  }, async (request) => sessions.keepOnly(request.principal))

  app.delete('/auth/sessions/:id', {
    config: bearer, schema: { params: SessionParams, response: { 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    await sessions.revoke(request.principal, request.params.id)
    return reply.code(204).send(null)
  })
}
