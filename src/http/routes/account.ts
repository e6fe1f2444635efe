/** The user's own account: deleting it (SPEC.md, "The user's own account"). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { clientOf } from '../client-info.js'
import type { Services } from '../services.js'
import { AccountDeletion, ErrorResponses, NoContent } from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const accountRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { accounts } = services

  app.delete('/auth/account', {
    config: bearer, schema: { body: AccountDeletion, response: { 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    await accounts.deleteAccount(request.principal, request.body.password, clientOf(request))
    return reply.code(204).send(null)
  })
}
