/** Sign-up, sign-in, refresh and sign-out. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { clientOf, deviceOf } from '../client-info.js'
import type { Services } from '../services.js'
import {
  Accepted, Credentials, errorResponses, Failures, ForgotPassword, NoContent, PasswordChange, ResetPassword, Profile, RefreshRequest, Registration, TokenPair,
} from '../schemas.js'

const bearer = { auth: 'bearer' } as const

export const authRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { accounts, sessions, passwordResets } = services

  app.post('/auth/register', {
    schema: {
      summary: 'Create an account and sign in',
      body: Credentials,
      response: { 201: Registration, ...errorResponses(Failures.body, Failures.limited, Failures.cookie, 'weak_password', 'email_taken') },
    },
  }, async (request, reply) => {
    const { email, password, deviceName } = request.body
    const user = await accounts.register(email, password)
    const pair = await sessions.start(user, deviceOf(request, deviceName), 'registration')
    return reply.code(201).send({ user: { id: user.id, email: user.email, createdAt: user.createdAt }, ...pair })
  })

  app.post('/auth/login', {
    schema: {
      summary: 'Sign in: a new session',
      body: Credentials,
      response: { 200: TokenPair, ...errorResponses(Failures.body, Failures.limited, Failures.cookie, 'invalid_credentials') },
    },
  }, async (request) => {
    const { email, password, deviceName } = request.body
    const user = await accounts.signIn(email, password, clientOf(request))
    return sessions.start(user, deviceOf(request, deviceName))
  })

  app.post('/auth/refresh', {
    schema: {
      summary: 'Rotate the refresh token: a new token pair for the same session',
      body: RefreshRequest,
      response: { 200: TokenPair, ...errorResponses(Failures.body, Failures.limited, Failures.cookie, 'refresh_token_invalid', 'refresh_token_reused') },
    },
  }, async (request) => sessions.refresh(request.body.refreshToken, deviceOf(request, undefined)))

  app.post('/auth/logout', {
    // In cookie mode the refresh cookie may stand in for an absent or expired access token (plugins/refresh-cookie.ts).
    config: { ...bearer, cookieFallback: true },
    schema: {
      summary: 'Sign out: end this session (in cookie mode, the one the refresh cookie names when there is no live access token)',
      response: { 204: NoContent, ...errorResponses(Failures.bearer, Failures.cookie) },
    },
  }, async (request, reply) => {
    // The cookie ends its session as POST /auth/revoke would (one that names no live session ends nothing: still 204).
    if (request.signOutCookie !== null) await sessions.revokeByToken(request.signOutCookie, clientOf(request), 'logout')
    else await sessions.end(request.principal)
    return reply.code(204).send(null)
  })

  app.post('/auth/logout-all', {
    config: bearer,
    schema: { summary: 'Sign out everywhere: every token of the user stops working', response: { 204: NoContent, ...errorResponses(Failures.bearer, Failures.cookie) } },
  }, async (request, reply) => {
    await sessions.endAll(request.principal.userId, request.principal.client)
    return reply.code(204).send(null)
  })

  app.post('/auth/password', {
    config: bearer,
    schema: {
      summary: 'Change the password: this session is kept with new tokens, every other one ends',
      body: PasswordChange,
      response: { 200: TokenPair, ...errorResponses(Failures.bearer, Failures.body, Failures.cookie, 'invalid_credentials', 'weak_password') },
    },
  }, async (request) => {
    const { currentPassword, newPassword } = request.body
    return accounts.changePassword(request.principal, currentPassword, newPassword, clientOf(request))
  })

  app.post('/auth/password/forgot', {
    schema: {
      summary: 'Mail a password reset link (the same answer whether the account exists or not)',
      body: ForgotPassword,
      response: { 202: Accepted, ...errorResponses(Failures.body, Failures.limited) },
    },
  }, async (request, reply) => {
    await passwordResets.request(request.body.email, clientOf(request))
    // The same answer whether or not the email has an account.
    return reply.code(202).send({ message: 'If an account exists for that email, a reset link is on its way.' })
  })

  app.post('/auth/password/reset', {
    schema: {
      summary: 'Set a new password with a reset link\'s token: every session ends',
      body: ResetPassword,
      response: { 200: TokenPair, 204: NoContent, ...errorResponses(Failures.body, Failures.limited, Failures.cookie, 'reset_token_invalid', 'weak_password') },
    },
  }, async (request, reply) => {
    const { token, newPassword, deviceName } = request.body
    const pair = await passwordResets.reset(token, newPassword, deviceOf(request, deviceName))
    return pair === undefined ? reply.code(204).send(null) : reply.code(200).send(pair)
  })

  app.get('/auth/me', {
    config: bearer, schema: { summary: 'The signed-in user', response: { 200: Profile, ...errorResponses(Failures.bearer) } },
  }, async (request) => sessions.profile(request.principal))
}
