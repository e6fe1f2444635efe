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
 * - Two routes read the cookie, and it is sent to those two only:
 *   POST /auth/refresh, and POST /auth/logout (a route with
 *   `cookieFallback`), where it names the session to end when the request
 *   has no access token or an expired one (a page that lost its access
 *   token, or let it expire, can still sign out without refreshing first).
 * - A request to either without the header never reads the cookie: when the
 *   cookie is its only credential (a refresh without a body token, a logout
 *   without a bearer token) it is refused (403), so a cookie never
 *   authenticates a request that a form post could forge.
 * - Every token pair answered to a cookie-mode request has its refresh token
 *   moved into the cookie, and the body is written with the cookie-mode
 *   schema (schemas.ts), which has no refreshToken. Routes are found by
 *   their response schemas; one that can answer a refreshToken with a schema
 *   lacking a cookie-mode counterpart stops the app at start.
 * - The cookie is cleared (same name, paths and flags, Max-Age=0) when the
 *   session it holds ends: logout (also when its cookie named no live
 *   session: logout is idempotent), logout-all, account deletion, deleting
 *   the current session, and a 401 from refresh (invalid or reused).
 *
 * Cookie: `__Secure-vouch-refresh` (`vouch-refresh` when COOKIE_SECURE is
 * off, since the prefix requires Secure); HttpOnly (no script access),
 * SameSite=Strict (never sent on a cross-site request), no Domain
 * (host-only), Max-Age = the session's remaining refresh lifetime. A cookie
 * has one Path, so it is set (and rotated, and cleared) twice, with the same
 * value and attributes: Path=/auth/refresh and Path=/auth/logout (sent
 * nowhere else).
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler, preSerializationAsyncHookHandler, preValidationAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import type { Config } from '../../config.js'
import { DomainError } from '../../errors.js'
import { TOKEN_MAX_LENGTH, cookieModeResponses } from '../schemas.js'
import { hookList } from './hook-list.js'
import { VOUCH_MODE_HEADER } from '@vouch/client/protocol'
import { bearerToken } from '@vouch/verifier/protocol'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * With `auth: 'bearer'` (POST /auth/logout): in cookie mode the refresh
     * cookie may stand in for the access token. authenticate.ts lets a
     * cookie-mode request with no access token, or an expired one, through
     * without a principal, and `signOutCookie` holds the cookie's value.
     */
    cookieFallback?: true
  }
  interface FastifyRequest {
    /** The request carries `Vouch-Mode: cookie` and passed the origin check. */
    cookieMode: boolean
    /**
     * On a `cookieFallback` route, a cookie-mode request that came without a
     * live access token: the refresh cookie's value (perhaps a dead or
     * made-up token), which names the session to end. null otherwise.
     */
    signOutCookie: string | null
  }
}

/** The cookie's paths: the two routes that read it, and nothing else. */
const COOKIE_PATHS = ['/auth/refresh', '/auth/logout'] as const
/** The route that reads the cookie for a token pair. */
const REFRESH_ROUTE = `POST ${COOKIE_PATHS[0]}`
/** The route that reads the cookie when there is no live access token (the one with `cookieFallback`). */
const LOGOUT_ROUTE = `POST ${COOKIE_PATHS[1]}`
/** Routes whose success ends the caller's session (DELETE /auth/sessions/:id only when :id is the caller's own). */
const SESSION_ENDING_ROUTES = new Set([LOGOUT_ROUTE, 'POST /auth/logout-all', 'DELETE /auth/account', 'DELETE /auth/sessions/:id'])
type PreSerialization = preSerializationAsyncHookHandler<unknown>
type JsonSchema = Record<string, unknown>

/** Refresh answers after which the cookie's token is worthless. */
const DEAD_TOKEN_CODES = new Set(['refresh_token_invalid', 'refresh_token_reused'])

/** The cookie's name, paths (one Set-Cookie each) and other attributes for a configuration. */
export function refreshCookieOptions (cookies: Config['cookies']) {
  return {
    name: cookies.secure ? '__Secure-vouch-refresh' : 'vouch-refresh',
    paths: COOKIE_PATHS,
    attributes: { httpOnly: true, sameSite: 'strict', secure: cookies.secure } as const,
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
  const { name, paths, attributes } = refreshCookieOptions(cookies)
  // Cookies are parsed only where one is read (refresh and logout), not on every request.
  await app.register(cookie, { hook: false })
  app.decorateRequest('cookieMode', false)
  app.decorateRequest('signOutCookie', null)

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

  /** Sets the cookie at each of its paths; a cookie is told apart by name and path, so each is replaced or cleared on its own. */
  const set = (reply: FastifyReply, value: string, maxAge: number) => {
    for (const path of paths) reply.setCookie(name, value, { ...attributes, path, maxAge })
  }
  const clear = (reply: FastifyReply) => {
    for (const path of paths) reply.clearCookie(name, { ...attributes, path })
  }

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
   * POST /auth/logout without the header, before the bearer check: with the
   * cookie and no bearer token it is refused like such a refresh (a forged
   * form post, or a page that forgot the header, is told so and logged),
   * rather than answered as a missing token. With a bearer token it is a
   * bearer-mode logout, which never reads the cookie.
   */
  const refuseCookieWithoutMode: onRequestHookHandler = (request, _reply, done) => {
    if (!request.cookieMode && bearerToken(request.headers.authorization) === undefined && tokenFromCookie(request) !== undefined) {
      done(refuse(request, 'refresh cookie sent to logout without Vouch-Mode'))
      return
    }
    done()
  }

  /**
   * After the bearer check, which let a cookie-mode request without a live
   * access token through without a principal: the cookie names the session
   * to end. Without one there is nothing to sign out with.
   */
  const takeSignOutCookie: preValidationAsyncHookHandler = async (request) => {
    if (!request.cookieMode || request.principal !== null) return
    const token = tokenFromCookie(request)
    if (token === undefined) throw new DomainError('invalid_token', 'Signing out needs a bearer access token or, in cookie mode, the refresh cookie.')
    request.signOutCookie = token
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
    set(reply, refreshToken, maxAge)
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
    if (route.config?.cookieFallback === true) {
      if (key !== LOGOUT_ROUTE || route.config.auth !== 'bearer') throw new Error(`refresh-cookie: ${key}: cookieFallback is for ${LOGOUT_ROUTE}, a bearer route, whose path the cookie is set for`)
      // Ahead of the bearer check (authenticate.ts, registered after this plugin, appends it).
      route.onRequest = [...hookList(route.onRequest), refuseCookieWithoutMode]
      route.preValidation = [...hookList(route.preValidation), takeSignOutCookie]
      seen.add(`${key} with cookieFallback`)
    }
    if (SESSION_ENDING_ROUTES.has(key)) hooks.push(clearWhenSessionEnds)
    if (hooks.length > 0) route.preSerialization = [...hookList(route.preSerialization), ...hooks] as typeof route.preSerialization
    if (key === REFRESH_ROUTE || SESSION_ENDING_ROUTES.has(key)) seen.add(key)
  })
  // A renamed route would silently lose its cookie handling: fail at start instead.
  app.addHook('onReady', async () => {
    const missing = [REFRESH_ROUTE, ...SESSION_ENDING_ROUTES, `${LOGOUT_ROUTE} with cookieFallback`].filter((key) => !seen.has(key))
    if (missing.length > 0) throw new Error(`refresh-cookie: routes not registered: ${missing.join(', ')}`)
  })
}, { name: 'vouch-refresh-cookie', fastify: '5.x' })
