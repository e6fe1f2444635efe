/** A user's signed-in devices: list them, revoke one, or keep only this one. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { deviceName, userAgent } from '../../domain/device-info.js'
import type { Services } from '../services.js'
import { ErrorResponses, NoContent, SessionList, SessionParams, TokenPair } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const sessionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { sessions } = services

  app.get('/auth/sessions', {
    config: bearer, schema: { response: { 200: SessionList, ...ErrorResponses } },
  }, async (request) => {
    const list = await sessions.list(request.principal)
    // Cleaned again on the way out: rows stored before the rule existed may hold control or bidi characters.
    return { sessions: list.map((session) => ({ ...session, deviceName: deviceName(session.deviceName), userAgent: userAgent(session.userAgent) })) }
  })

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
