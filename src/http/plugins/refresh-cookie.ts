/**
 * Cookie mode for browsers: for a request carrying `Vouch-Mode: cookie`, the
 * refresh token travels only in an HttpOnly cookie, never in a body that
 * script could read. Bearer mode (no header) is untouched.
 *
 * Invariants:
 * - The cookie is used only by a cookie-mode request, and a cookie-mode
 *   request is accepted only from an `Origin` in COOKIE_ORIGINS (403
 *   `origin_not_allowed` otherwise, and always while the list is empty).
 *   That is the CSRF defence: a cross-site form cannot send a custom header,
 *   and a cross-site fetch that sends one needs a CORS preflight, which only
 *   listed origins pass (security-headers.ts). GET and HEAD alone may come
 *   without Origin, because browsers leave it off same-origin GETs (the
 *   account page's) and no GET route reads or sets the cookie.
 * - A refresh without the header never reads the cookie: with the cookie and
 *   no body token it is refused (403), so a cookie never authenticates a
 *   request that a form post could forge.
 * - Every token pair answered to a cookie-mode request has its refresh token
 *   moved into the cookie, and the body is written with the cookie-mode
 *   schema (schemas.ts), which has no refreshToken. Routes are found by
 *   their response schemas; one that can answer a refreshToken with a schema
 *   lacking a cookie-mode counterpart stops the app at start.
 * - The cookie is cleared (same name, path and flags, Max-Age=0) when the
 *   session it holds ends: logout, logout-all, account deletion, deleting
 *   the current session, and a 401 from refresh (invalid or reused).
 *
 * Cookie: `__Secure-vouch-refresh` (`vouch-refresh` when COOKIE_SECURE is
 * off, since the prefix requires Secure); HttpOnly (no script access),
 * SameSite=Strict (never sent on a cross-site request), Path=/auth/refresh
 * (sent nowhere else), no Domain (host-only), Max-Age = the session's
 * remaining refresh lifetime.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler, preSerializationAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import type { Config } from '../../config.js'
import { DomainError } from '../../errors.js'
import { TOKEN_MAX_LENGTH, cookieModeResponses } from '../schemas.js'
import { hookList } from './hook-list.js'
import { VOUCH_MODE_HEADER } from '@vouch/client/protocol'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request carries `Vouch-Mode: cookie` and passed the origin check. */
    cookieMode: boolean
  }
}

/** The route that reads the cookie. */
const REFRESH_ROUTE = 'POST /auth/refresh'
/** Routes whose success ends the caller's session (DELETE /auth/sessions/:id only when :id is the caller's own). */
const SESSION_ENDING_ROUTES = new Set(['POST /auth/logout', 'POST /auth/logout-all', 'DELETE /auth/account', 'DELETE /auth/sessions/:id'])
type PreSerialization = preSerializationAsyncHookHandler<unknown>
type JsonSchema = Record<string, unknown>

/** Refresh answers after which the cookie's token is worthless. */
const DEAD_TOKEN_CODES = new Set(['refresh_token_invalid', 'refresh_token_reused'])

/** The cookie's name and attributes for a configuration. */
export function refreshCookieOptions (cookies: Config['cookies']) {
  return {
    name: cookies.secure ? '__Secure-vouch-refresh' : 'vouch-refresh',
    attributes: { httpOnly: true, sameSite: 'strict', path: '/auth/refresh', secure: cookies.secure } as const,
  }
}

/** `schema` (a response schema) has a `refreshToken` property, directly or in an allOf/anyOf/oneOf member. */
function carriesRefreshToken (schema: unknown): boolean {
  if (schema === null || typeof schema !== 'object') return false
  const { properties, allOf, anyOf, oneOf } = schema as Record<string, unknown>
  if (properties !== null && typeof properties === 'object' && 'refreshToken' in properties) return true
  return [allOf, anyOf, oneOf].some((members) => Array.isArray(members) && members.some(carriesRefreshToken))
}

function isEmptyBody (body: unknown): boolean {
  if (body === undefined || body === null) return true
  return typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0
}

export const refreshCookie = fp<{ cookies: Config['cookies'] }>(async (app, { cookies }) => {
  const origins = new Set(cookies.origins)
  const { name, attributes } = refreshCookieOptions(cookies)
  // Cookies are parsed only where one is read (the refresh route), not on every request.
  await app.register(cookie, { hook: false })
  app.decorateRequest('cookieMode', false)

  const refuse = (request: FastifyRequest, reason: string): DomainError => {
    request.log.info({ origin: request.headers.origin, reason }, 'cookie-mode request refused')
    return new DomainError('origin_not_allowed')
  }

  const checkOrigin: onRequestHookHandler = (request, _reply, done) => {
    const mode = request.headers[VOUCH_MODE_HEADER]
    if (mode === undefined) {
      done()
      return
    }
    if (typeof mode !== 'string' || mode.trim().toLowerCase() !== 'cookie') {
      // Not a silent fall-back to bearer mode, which would put the refresh token in a script-readable body.
      done(new DomainError('validation_failed', 'The Vouch-Mode header must be "cookie", or absent for bearer mode.'))
      return
    }
    const origin = request.headers.origin
    if (origins.size === 0) {
      done(refuse(request, 'cookie mode is off (COOKIE_ORIGINS is empty)'))
    } else if (origin === undefined ? request.method !== 'GET' && request.method !== 'HEAD' : !origins.has(origin)) {
      done(refuse(request, origin === undefined ? 'no Origin header' : 'origin not listed in COOKIE_ORIGINS'))
    } else {
      request.cookieMode = true
      done()
    }
  }
  app.addHook('onRequest', checkOrigin)

  const tokenFromCookie = (request: FastifyRequest): string | undefined => {
    const header = request.headers.cookie
    return header === undefined ? undefined : app.parseCookie(header)[name]
  }

  const clear = (reply: FastifyReply) => reply.clearCookie(name, attributes)

  /** POST /auth/refresh: in cookie mode the token comes from the cookie alone; without the header the cookie is never used. */
  const takeTokenFromCookie: preValidationAsyncHookHandler = async (request) => {
    if (request.cookieMode) {
      if (!isEmptyBody(request.body)) {
        throw new DomainError('validation_failed', 'In cookie mode the refresh token comes from the cookie; send an empty body.')
      }
      const token = tokenFromCookie(request)
      if (token === undefined || token.length === 0 || token.length > TOKEN_MAX_LENGTH) {
        throw new DomainError('refresh_token_invalid', 'No refresh cookie was sent.')
      }
      request.body = { refreshToken: token }
      return
    }
    const body = request.body
    const bodyToken = body !== null && typeof body === 'object' && Object.hasOwn(body, 'refreshToken')
    if (!bodyToken && tokenFromCookie(request) !== undefined) throw refuse(request, 'refresh cookie sent without Vouch-Mode')
  }

  /**
   * A token pair's refresh token goes into the cookie, and the rest is
   * written with the cookie-mode schema for that status (schemas.ts).
   */
  const moveRefreshToken = (variants: ReadonlyMap<string, JsonSchema>): PreSerialization => async (request, reply, payload) => {
    if (!request.cookieMode || payload === null || typeof payload !== 'object') return payload
    const variant = variants.get(String(reply.statusCode))
    if (variant === undefined) return payload
    const { refreshToken, ...rest } = payload as { refreshToken?: unknown, refreshExpiresIn?: unknown }
    if (typeof refreshToken !== 'string') return payload
    const maxAge = typeof rest.refreshExpiresIn === 'number' ? Math.max(0, Math.floor(rest.refreshExpiresIn)) : 0
    reply.setCookie(name, refreshToken, { ...attributes, maxAge })
    reply.serializer(reply.compileSerializationSchema(variant, String(reply.statusCode)))
    return rest
  }

  /** A refresh answered 401 (invalid or reused): the cookie's token is worthless. */
  const clearDeadCookie: PreSerialization = async (request, reply, payload) => {
    const code = (payload as { code?: unknown } | null)?.code
    if (request.cookieMode && reply.statusCode === 401 && typeof code === 'string' && DEAD_TOKEN_CODES.has(code)) clear(reply)
    return payload
  }

  /** Logout and friends: once the session has ended, so has its cookie. */
  const clearWhenSessionEnds: PreSerialization = async (request, reply, payload) => {
    if (!request.cookieMode || reply.statusCode >= 300) return payload
    const params = request.params as { id?: unknown } | undefined
    if (params?.id === undefined || params.id === request.principal?.sessionId) clear(reply)
    return payload
  }

  const seen = new Set<string>()
  app.addHook('onRoute', (route) => {
    const key = `${String(route.method)} ${route.url}`
    const hooks: PreSerialization[] = []
    const variants = new Map<string, JsonSchema>()
    for (const [status, schema] of Object.entries((route.schema?.response ?? {}) as Record<string, unknown>)) {
      const variant = cookieModeResponses.get(schema as object)
      if (variant !== undefined) variants.set(status, variant as JsonSchema)
      else if (carriesRefreshToken(schema)) throw new Error(`refresh-cookie: ${key} answers a refresh token with a schema that has no cookie-mode counterpart in schemas.ts`)
    }
    if (variants.size > 0) hooks.push(moveRefreshToken(variants))
    if (key === REFRESH_ROUTE) {
      route.preValidation = [...hookList(route.preValidation), takeTokenFromCookie]
      hooks.push(clearDeadCookie)
    }
    if (SESSION_ENDING_ROUTES.has(key)) hooks.push(clearWhenSessionEnds)
    if (hooks.length > 0) route.preSerialization = [...hookList(route.preSerialization), ...hooks] as typeof route.preSerialization
    if (key === REFRESH_ROUTE || SESSION_ENDING_ROUTES.has(key)) seen.add(key)
  })
  // A renamed route would silently lose its cookie handling: fail at start instead.
  app.addHook('onReady', async () => {
    const missing = [REFRESH_ROUTE, ...SESSION_ENDING_ROUTES].filter((key) => !seen.has(key))
    if (missing.length > 0) throw new Error(`refresh-cookie: routes not registered: ${missing.join(', ')}`)
  })
}, { name: 'vouch-refresh-cookie', fastify: '5.x' })
