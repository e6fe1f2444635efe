/**
 * Token revocation (RFC 7009): `POST /auth/revoke` with `token` (and an
 * optional `token_type_hint`, which vouch does not need: a refresh token and
 * an access token cannot be mistaken for each other), form-encoded or JSON.
 *
 * Who may revoke: a resource client with its credentials (RESOURCE_CLIENTS,
 * Basic or in the body, checked like introspection: wrong ones are 401
 * `invalid_credentials`), or anyone holding the token, with no credentials
 * (vouch's first-party applications are public clients). Holding a token is
 * already the power to end its session (logout with an access token, a
 * replay with a refresh token), so revocation grants no one anything new.
 *
 * What it does: a live access token, or a refresh token that is its
 * session's current or a superseded one, ends that session like logout
 * (revokedAt set; caches, other instances and the revocation feed told).
 * Everything else (unknown, malformed, expired, already revoked) is a
 * success that changes nothing: 200 either way, as RFC 7009 §2.2 says, with
 * an empty body.
 */
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { clientOf } from '../client-info.js'
import type { Services } from '../services.js'
import { errorResponses, Failures } from '../schemas.js'

const RevocationRequest = Type.Object({
  token: Type.String({ maxLength: 4096 }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
  client_secret: Type.Optional(Type.String({ maxLength: 1024 })),
})

/** RFC 7009 §2.2: the client ignores the body; vouch sends none. */
const EmptyBody = Type.Unsafe<void>({ description: 'Empty body' })

export const tokenRevocationRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { sessions } = services
  // RFC 7009 requests are form-encoded; only the routes of this plugin accept forms.
  await app.register(formbody, { bodyLimit: 16 * 1024 })

  app.post('/auth/revoke', {
    config: { client: 'optional' },
    schema: {
      summary: 'Token revocation (RFC 7009), form-encoded or JSON: 200 for unknown and dead tokens too',
      body: RevocationRequest,
      response: { 200: EmptyBody, ...errorResponses(Failures.client, Failures.body, Failures.limited) },
    },
  }, async (request, reply) => {
    const ended = await sessions.revokeByToken(request.body.token, clientOf(request))
    if (ended) request.log.info({ client: request.clientId || undefined }, 'token revoked: session ended')
    return reply.code(200).send(undefined)
  })
}
