/** Sign-up, sign-in, refresh and sign-out. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import type { DeviceInfo } from '../../domain/sessions.js'
import { deviceName, userAgent } from '../../domain/device-info.js'
import type { Services } from '../services.js'
import {
  Accepted, Credentials, ErrorResponses, ForgotPassword, NoContent, PasswordChange, ResetPassword, Profile, RefreshRequest, Registration, TokenPair,
} from '../schemas.js'

const bearer = { auth: 'bearer' } as const

/** The device a request comes from, cleaned for display (src/domain/device-info.ts). */
function deviceOf (request: FastifyRequest, name: string | undefined): DeviceInfo {
  return { deviceName: deviceName(name), userAgent: userAgent(request.headers['user-agent']), ip: request.ip }
}

export const authRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { accounts, sessions, passwordResets } = services

  app.post('/auth/register', {
    schema: { body: Credentials, response: { 201: Registration, ...ErrorResponses } },
  }, async (request, reply) => {
    const { email, password, deviceName } = request.body
    const user = await accounts.register(email, password)
    const pair = await sessions.start(user, deviceOf(request, deviceName))
    return reply.code(201).send({ user: { id: user.id, email: user.email, createdAt: user.createdAt }, ...pair })
  })

  app.post('/auth/login', {
    schema: { body: Credentials, response: { 200: TokenPair, ...ErrorResponses } },
  }, async (request) => {
    const { email, password, deviceName } = request.body
    const user = await accounts.signIn(email, password, { ip: request.ip })
    return sessions.start(user, deviceOf(request, deviceName))
  })

  app.post('/auth/refresh', {
    schema: { body: RefreshRequest, response: { 200: TokenPair, ...ErrorResponses } },
  }, async (request) => sessions.refresh(request.body.refreshToken, deviceOf(request, undefined)))

  app.post('/auth/logout', {
    config: bearer, schema: { response: { 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    await sessions.end(request.principal)
    return reply.code(204).send(null)
  })

  app.post('/auth/logout-all', {
    config: bearer, schema: { response: { 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    await sessions.endAll(request.principal.userId)
    return reply.code(204).send(null)
  })

  app.post('/auth/password', {
    config: bearer, schema: { body: PasswordChange, response: { 200: TokenPair, ...ErrorResponses } },
  }, async (request) => {
    const { currentPassword, newPassword } = request.body
    return accounts.changePassword(request.principal, currentPassword, newPassword)
  })

  app.post('/auth/password/forgot', {
    schema: { body: ForgotPassword, response: { 202: Accepted, ...ErrorResponses } },
  }, async (request, reply) => {
    await passwordResets.request(request.body.email, { ip: request.ip })
    // The same answer whether or not the email has an account.
    return reply.code(202).send({ message: 'If an account exists for that email, a reset link is on its way.' })
  })

  app.post('/auth/password/reset', {
    schema: { body: ResetPassword, response: { 200: TokenPair, 204: NoContent, ...ErrorResponses } },
  }, async (request, reply) => {
    const { token, newPassword, deviceName } = request.body
    const pair = await passwordResets.reset(token, newPassword, deviceOf(request, deviceName))
    return pair === undefined ? reply.code(204).send(null) : reply.code(200).send(pair)
  })

  app.get('/auth/me', {
    config: bearer, schema: { response: { 200: Profile, ...ErrorResponses } },
  }, async (request) => sessions.profile(request.principal))
}
