/** The user's own account (SPEC.md, "The user's own account"): its security timeline, and deleting it. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { clientOf } from '../client-info.js'
import type { Services } from '../services.js'
import { AccountDeletion, errorResponses, EventPageQuery, Failures, eventPageOptions, NoContent, UserEventPage } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const accountRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { accounts, events } = services

  // Newest first. Each event without its detail (a failed sign-in's reason is for administrators: the caller
  // was told invalid_credentials whatever it was) or the admin client's id; the response schema is the second guard.
  app.get('/auth/events', {
    config: bearer,
    schema: {
      summary: 'The user\'s security timeline, newest first, by pages',
      querystring: EventPageQuery,
      response: { 200: UserEventPage, ...errorResponses(Failures.bearer, Failures.input) },
    },
  }, async (request) => {
    const page = await events.page(request.principal.userId, eventPageOptions(request.query))
    return {
      events: page.events.map(({ id, type, at, sessionId, ip, userAgent, actor }) => ({ id, type, at, sessionId, ip, userAgent, actor })),
      ...(page.next !== undefined && { next: page.next }),
    }
  })

  app.delete('/auth/account', {
    config: bearer,
    schema: {
      summary: 'Delete the account: every token dies, personal data is erased',
      body: AccountDeletion,
      response: { 204: NoContent, ...errorResponses(Failures.bearer, Failures.body, Failures.cookie, 'invalid_credentials') },
    },
  }, async (request, reply) => {
    await accounts.deleteAccount(request.principal, request.body.password, clientOf(request))
    return reply.code(204).send(null)
  })
}
