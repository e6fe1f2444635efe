/** A user's signed-in devices: list them, revoke one, or keep only this one. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { deviceName, userAgent } from '../../domain/device-info.js'
import type { Services } from '../services.js'
import { errorResponses, Failures, NoContent, SessionList, SessionParams, TokenPair } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const sessionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { sessions } = services

  app.get('/auth/sessions', {
    config: bearer, schema: { summary: 'The user\'s active sessions, newest first', response: { 200: SessionList, ...errorResponses(Failures.bearer) } },
  }, async (request) => {
    const list = await sessions.list(request.principal)
    // Cleaned again on the way out: rows stored before the rule existed may hold control or bidi characters.
    return { sessions: list.map((session) => ({ ...session, deviceName: deviceName(session.deviceName), userAgent: userAgent(session.userAgent) })) }
  })

  app.post('/auth/sessions/revoke-others', {
    config: bearer,
    schema: { summary: 'End every other session: this one is kept with new tokens', response: { 200: TokenPair, ...errorResponses(Failures.bearer, Failures.cookie) } },
  }, async (request) => sessions.keepOnly(request.principal))

  app.delete('/auth/sessions/:id', {
    config: bearer,
    schema: {
      summary: 'End one of the user\'s sessions',
      params: SessionParams,
      response: { 204: NoContent, ...errorResponses(Failures.bearer, Failures.input, Failures.cookie, 'not_found') },
    },
  }, async (request, reply) => {
    await sessions.revoke(request.principal, request.params.id)
    return reply.code(204).send(null)
  })
}
