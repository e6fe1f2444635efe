/** The user's own account: deleting it (SPEC.md, "The user's own account"). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Services } from '../services.js'
import { AccountDeletion, ErrorResponses, NoContent } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const accountRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { accounts } = services

  app.delete('/auth/account', {
    config: bearer, schema: { body: AccountDeletion, response: { 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    await accounts.deleteAccount(request.principal, request.body.password, { ip: request.ip })
    // A record for an incident responder; the id only, since the email is erased.
    request.log.info({ userId: request.principal.userId, sessionId: request.principal.sessionId }, 'account deleted')
    return reply.code(204).send(null)
  })
}
