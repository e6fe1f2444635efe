/**
 * The admin API (SPEC.md, "Admin API"): look an account up, list and end its
 * sessions, disable, enable or delete it, read its security timeline. Every
 * route takes an admin client's Basic credentials (plugins/admin-auth.ts)
 * and acts on that client's authority, which every resulting security event
 * records (actor admin, actorId the client's id, and the request's IP and
 * user agent). The rules themselves are the domain's (domain/administration.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { Authority } from '../../domain/administration.js'
import { clientOf } from '../client-info.js'
import type { Services } from '../services.js'
import {
  AdminEventPage, AdminSessionList, AdminSessionParams, AdminUser, AdminUserParams, AdminUserQuery,
  errorResponses, EventPageQuery, eventPageOptions, Failures, NoContent,
} from '../schemas.js'

const admin = { admin: true } as const
/** Every admin route looks a user up by its parameters (or query): a malformed or unknown one is not_found. */
const fails = errorResponses(Failures.admin, Failures.input, 'not_found')
const done = { 204: NoContent, ...fails }

/** The admin client behind the request, and where it called from. */
function authority (request: FastifyRequest): Authority {
  return { actor: { kind: 'admin', id: request.adminClientId }, client: clientOf(request) }
}

export const adminRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { administration } = services

  app.get('/admin/users', {
    config: admin, schema: { summary: 'Find a user by email', querystring: AdminUserQuery, response: { 200: AdminUser, ...fails } },
  }, async (request) => ({ user: await administration.findByEmail(request.query.email, authority(request)) }))

  app.get('/admin/users/:id', {
    config: admin, schema: { summary: 'A user', params: AdminUserParams, response: { 200: AdminUser, ...fails } },
  }, async (request) => ({ user: await administration.find(request.params.id, authority(request)) }))

  app.get('/admin/users/:id/sessions', {
    config: admin, schema: { summary: 'A user\'s active sessions', params: AdminUserParams, response: { 200: AdminSessionList, ...fails } },
  }, async (request) => ({ sessions: await administration.sessions(request.params.id, authority(request)) }))

  app.post('/admin/users/:id/revoke-sessions', {
    config: admin, schema: { summary: 'End every session of a user (one version bump)', params: AdminUserParams, response: done },
  }, async (request, reply) => {
    await administration.revokeSessions(request.params.id, authority(request))
    return reply.code(204).send(null)
  })

  app.delete('/admin/users/:id/sessions/:sessionId', {
    config: admin, schema: { summary: 'End one session of a user', params: AdminSessionParams, response: done },
  }, async (request, reply) => {
    await administration.revokeSession(request.params.id, request.params.sessionId, authority(request))
    return reply.code(204).send(null)
  })

  app.post('/admin/users/:id/disable', {
    config: admin, schema: { summary: 'Disable a user: every token dies, sign-in and refresh are refused', params: AdminUserParams, response: done },
  }, async (request, reply) => {
    await administration.disable(request.params.id, authority(request))
    return reply.code(204).send(null)
  })

  app.post('/admin/users/:id/enable', {
    config: admin, schema: { summary: 'Enable a disabled user', params: AdminUserParams, response: done },
  }, async (request, reply) => {
    await administration.enable(request.params.id, authority(request))
    return reply.code(204).send(null)
  })

  app.delete('/admin/users/:id', {
    config: admin, schema: { summary: 'Delete a user', params: AdminUserParams, response: done },
  }, async (request, reply) => {
    await administration.delete(request.params.id, authority(request))
    return reply.code(204).send(null)
  })

  app.get('/admin/users/:id/events', {
    config: admin,
    schema: { summary: 'A user\'s security timeline, newest first, by pages', params: AdminUserParams, querystring: EventPageQuery, response: { 200: AdminEventPage, ...fails } },
  }, async (request) => administration.events(request.params.id, eventPageOptions(request.query), authority(request)))
}
