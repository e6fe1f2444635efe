/**
 * Cookie mode for browsers (src/http/plugins/refresh-cookie.ts): with
 * `Vouch-Mode: cookie` from a COOKIE_ORIGINS origin, every token pair's
 * refresh token travels only in an HttpOnly, SameSite=Strict cookie scoped to
 * /auth/refresh and /auth/logout (one Set-Cookie for each path), never in a
 * body; a logout without a live access token ends the session its cookie
 * names; anything else that tries to use cookie mode (or the cookie without
 * it) is refused with a catalogue error; CORS gives credentials to cookie
 * origins only; bearer mode is unchanged.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'
import { errorCatalogue } from '../../src/errors.js'
import { hashSecret, randomSecret } from '../../src/crypto/secrets.js'

const APP = 'https://app.example.com'
const EVIL = 'https://evil.example'
const NEW_PASSWORD = 'an entirely different passphrase'
/** Cookie mode for APP with Secure cookies; the account page (which would add vouch's own origin) off. */
const SECURE = { ACCOUNT_PAGE: 'false', COOKIE_ORIGINS: APP, COOKIE_SECURE: 'true' }
const SECURE_NAME = '__Secure-vouch-refresh'
const EPOCH = 'Thu, 01 Jan 1970 00:00:00 GMT'
/** The paths the refresh cookie is set for (one Set-Cookie each): the two routes that read it. */
const COOKIE_PATHS = ['/auth/logout', '/auth/refresh']
/** A token pair's body in cookie mode: everything but the refresh token. */
const COOKIE_PAIR_KEYS = ['tokenType', 'accessToken', 'expiresIn', 'refreshExpiresIn', 'sessionId']
const BEARER_PAIR_KEYS = ['tokenType', 'accessToken', 'expiresIn', 'refreshToken', 'refreshExpiresIn', 'sessionId']

type Method = 'GET' | 'POST' | 'DELETE' | 'OPTIONS'

interface Browser {
  /** The cookie the browser holds (name=value), if any. */
  cookie?: string
  origin?: string
  /** Overrides of the cookie-mode headers; a value of undefined drops the header. */
  headers?: Record<string, string | undefined>
}

/** A request as the SDK sends it in cookie mode from `origin` (APP by default), with the cookie the browser holds. */
function cookieCall (app: FastifyInstance, method: Method, url: string, payload?: object, browser: Browser = {}) {
  const headers: Record<string, string | undefined> = {
    'vouch-mode': 'cookie', origin: browser.origin ?? APP, ...(browser.cookie !== undefined && { cookie: browser.cookie }), ...browser.headers,
  }
  const defined = Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined))
  return app.inject({ method, url, ...(payload !== undefined && { payload }), headers: defined })
}

interface SetCookie { name: string, value: string, attributes: Record<string, string | true> }

function setCookiesOf (res: LightMyRequestResponse): SetCookie[] {
  const raw = res.headers['set-cookie']
  const lines = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)]
  return lines.map((line) => {
    const [pair = '', ...attributes] = line.split('; ')
    const eq = pair.indexOf('=')
    return {
      name: pair.slice(0, eq),
      value: pair.slice(eq + 1),
      attributes: Object.fromEntries(attributes.map((attribute) => {
        const at = attribute.indexOf('=')
        return at < 0 ? [attribute.toLowerCase(), true] : [attribute.slice(0, at).toLowerCase(), attribute.slice(at + 1)]
      })),
    }
  })
}

/** Set-Cookie headers in the order of their paths (the order they come in means nothing). */
function byPath (cookies: SetCookie[]): SetCookie[] {
  return cookies.toSorted((a, b) => String(a.attributes.path).localeCompare(String(b.attributes.path)))
}

/**
 * The Set-Cookie headers of a response, which must set the refresh cookie once
 * for each of COOKIE_PATHS, with the same value and exactly the documented
 * attributes; returns it.
 */
function refreshCookieOf (t: Test, res: LightMyRequestResponse, name: string, secure: boolean, what: string): SetCookie {
  const cookies = byPath(setCookiesOf(res))
  t.same(cookies.map((cookie) => cookie.attributes.path), COOKIE_PATHS, `${what}: one Set-Cookie for each of ${COOKIE_PATHS.join(' and ')}`)
  const cookie = cookies[0]!
  const body = res.json() as { refreshExpiresIn: number }
  t.match(cookie.value, /^[\w-]+\.\d+\.[\w-]+$/, `${what}: the value is a refresh token`)
  for (const [i, path] of COOKIE_PATHS.entries()) {
    t.same(cookies[i], {
      name, value: cookie.value,
      attributes: { 'max-age': String(body.refreshExpiresIn), path, httponly: true, samesite: 'Strict', ...(secure && { secure: true }) },
    }, `${what}: ${name}, the same token, exactly HttpOnly, SameSite=Strict, Path=${path}, Max-Age=refreshExpiresIn${secure ? ', Secure' : ''}; no Domain`)
  }
  t.notOk(res.body.includes(cookie.value), `${what}: the refresh token appears nowhere in the body`)
  const otherHeaders = Object.entries(res.headers).filter(([header]) => header !== 'set-cookie').map(([, value]) => String(value)).join('\n')
  t.notOk(otherHeaders.includes(cookie.value), `${what}: nor in any other header`)
  return cookie
}

/** The response clears the refresh cookie at each of its paths: same name, path and flags, empty, Max-Age=0. */
function assertCleared (t: Test, res: LightMyRequestResponse, what: string, name = SECURE_NAME, secure = true): void {
  t.same(byPath(setCookiesOf(res)), COOKIE_PATHS.map((path) => ({
    name, value: '', attributes: { 'max-age': '0', path, expires: EPOCH, httponly: true, samesite: 'Strict', ...(secure && { secure: true }) },
  })), `${what}: the refresh cookie is cleared at ${COOKIE_PATHS.join(' and ')}`)
}

function assertOriginRefused (t: Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 403, `${what}: 403`)
  t.same(res.json(), { statusCode: 403, error: 'Forbidden', code: 'origin_not_allowed', message: errorCatalogue.origin_not_allowed.message }, `${what}: the catalogue's body`)
  t.same(setCookiesOf(res), [], `${what}: no cookie set or cleared`)
}

/** Signs up in cookie mode; returns the body and the cookie as the browser would hold it. */
async function signUp (t: Test, app: FastifyInstance) {
  const email = uniqueEmail('cookie')
  const res = await cookieCall(app, 'POST', '/auth/register', { email, password: PASSWORD })
  t.equal(res.statusCode, 201)
  const cookie = refreshCookieOf(t, res, SECURE_NAME, true, 'register')
  return { email, body: res.json() as { accessToken: string, sessionId: string }, jar: `${cookie.name}=${cookie.value}`, token: cookie.value }
}

t.test('every token pair in cookie mode goes into a cookie with exactly its attributes, and never into a body', async (t) => {
  const { app, db, clock } = await createTestApp(t, { env: { ...SECURE, RESET_SIGNS_IN: 'true' } })
  const check = (res: LightMyRequestResponse, status: number, what: string, keys = COOKIE_PAIR_KEYS) => {
    t.equal(res.statusCode, status, `${what}: ${status}`)
    t.same(Object.keys(res.json()), keys, `${what}: the body is the pair without refreshToken`)
    return refreshCookieOf(t, res, SECURE_NAME, true, what)
  }

  const email = uniqueEmail('cookie')
  const registered = await cookieCall(app, 'POST', '/auth/register', { email, password: PASSWORD })
  check(registered, 201, 'register', ['user', ...COOKIE_PAIR_KEYS])
  t.match(registered.json().user, { email })

  const loggedIn = await cookieCall(app, 'POST', '/auth/login', { email, password: PASSWORD })
  const loginCookie = check(loggedIn, 200, 'login')
  const access = loggedIn.json().accessToken as string

  clock.advance(60)
  const refreshed = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `${SECURE_NAME}=${loginCookie.value}` })
  check(refreshed, 200, 'refresh')

  const changed = await cookieCall(app, 'POST', '/auth/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, { headers: bearer(access) })
  check(changed, 200, 'password change')

  const revoked = await cookieCall(app, 'POST', '/auth/sessions/revoke-others', undefined, { headers: bearer(changed.json().accessToken) })
  check(revoked, 200, 'revoke-others')

  // A reset token as the mail would carry it (RESET_SIGNS_IN: the reset answers a token pair).
  const secret = randomSecret()
  const userId = registered.json().user.id as string
  const now = clock.now()
  const row = await db.passwordReset.create({ data: { userId, tokenHash: hashSecret(secret), createdAt: now, expiresAt: new Date(now.getTime() + 600_000) } })
  const reset = await cookieCall(app, 'POST', '/auth/password/reset', { token: `${row.id}.${secret}`, newPassword: PASSWORD })
  check(reset, 200, 'password reset')
})

t.test('Max-Age follows the session\'s remaining lifetime', async (t) => {
  const { app, clock } = await createTestApp(t, { env: { ...SECURE, SESSION_LIFETIME: '3600', SESSION_IDLE_TIMEOUT: '0' } })
  const { jar } = await signUp(t, app)
  clock.advance(1000)
  const res = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: jar })
  t.equal(res.json().refreshExpiresIn, 2600)
  t.equal(refreshCookieOf(t, res, SECURE_NAME, true, 'refresh').attributes['max-age'], '2600')
})

t.test('with COOKIE_SECURE=false the cookie is vouch-refresh, without Secure', async (t) => {
  const { app } = await createTestApp(t, { env: { ACCOUNT_PAGE: 'false', COOKIE_ORIGINS: APP, COOKIE_SECURE: 'false' } })
  const res = await cookieCall(app, 'POST', '/auth/register', { email: uniqueEmail(), password: PASSWORD })
  t.equal(res.statusCode, 201)
  const cookie = refreshCookieOf(t, res, 'vouch-refresh', false, 'register')
  const refreshed = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `vouch-refresh=${cookie.value}` })
  refreshCookieOf(t, refreshed, 'vouch-refresh', false, 'refresh with the insecure cookie')
  t.equal(codeOf(await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `${SECURE_NAME}=${cookie.value}` })), 'refresh_token_invalid',
    'the __Secure- name is not read when the cookie is not Secure')
})

t.test('an http loopback PUBLIC_URL (local development) defaults to an insecure cookie', async (t) => {
  const { app, config } = await createTestApp(t, { env: { ACCOUNT_PAGE: 'false', COOKIE_ORIGINS: 'http://localhost:5173' } })
  t.match(config.publicUrl, /^http:\/\/(127\.0\.0\.1|localhost)/)
  const res = await cookieCall(app, 'POST', '/auth/register', { email: uniqueEmail(), password: PASSWORD }, { origin: 'http://localhost:5173' })
  t.equal(res.statusCode, 201)
  refreshCookieOf(t, res, 'vouch-refresh', false, 'register')
})

t.test('a refresh with the cookie rotates it; the old cookie replayed after the grace window is refresh_token_reused and clears the cookie', async (t) => {
  const { app, clock } = await createTestApp(t, { env: SECURE })
  const first = await signUp(t, app)
  clock.advance(60)
  const rotated = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: first.jar })
  t.equal(rotated.statusCode, 200)
  const second = refreshCookieOf(t, rotated, SECURE_NAME, true, 'refresh')
  t.not(second.value, first.token, 'a new refresh token')
  t.equal(rotated.json().sessionId, first.body.sessionId, 'same session')
  t.equal((await me(app, rotated.json().accessToken)).statusCode, 200, 'the new access token works')

  clock.advance(5)
  const duplicate = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: first.jar })
  t.equal(duplicate.statusCode, 200, 'within the grace window a duplicate (another tab) still succeeds')
  t.equal(refreshCookieOf(t, duplicate, SECURE_NAME, true, 'duplicate').value, second.value, 'and gets the live token, one chain')

  clock.advance(11)
  const replay = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: first.jar })
  t.equal(replay.statusCode, 401)
  t.equal(codeOf(replay), 'refresh_token_reused')
  assertCleared(t, replay, 'reuse')
  const live = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `${SECURE_NAME}=${second.value}` })
  t.equal(codeOf(live), 'refresh_token_invalid', 'the session is revoked: its live cookie is dead too')
  assertCleared(t, live, 'refresh of a revoked session')
})

t.test('a cookie-mode refresh takes its token from the cookie only', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const noCookie = await cookieCall(app, 'POST', '/auth/refresh')
  t.equal(noCookie.statusCode, 401)
  t.equal(codeOf(noCookie), 'refresh_token_invalid', 'no cookie')
  assertCleared(t, noCookie, 'no cookie')
  const emptyJson = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: a.jar, headers: { 'content-type': 'application/json' } })
  t.equal(emptyJson.statusCode, 200, 'an empty body with a JSON content type is fine')
  const jar = `${SECURE_NAME}=${refreshCookieOf(t, emptyJson, SECURE_NAME, true, 'empty body').value}`
  const emptyObject = await cookieCall(app, 'POST', '/auth/refresh', {}, { cookie: jar })
  t.equal(emptyObject.statusCode, 200, '{} is fine')
  const live = refreshCookieOf(t, emptyObject, SECURE_NAME, true, '{} body').value
  for (const [what, payload] of Object.entries({ 'a body token': { refreshToken: live }, 'another field': { foo: 1 }, 'an array': [] })) {
    const res = await cookieCall(app, 'POST', '/auth/refresh', payload, { cookie: `${SECURE_NAME}=${live}` })
    t.equal(res.statusCode, 400, what)
    t.equal(codeOf(res), 'validation_failed', what)
    t.same(setCookiesOf(res), [], `${what}: the cookie is kept`)
  }
  const oversized = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `${SECURE_NAME}=${'a'.repeat(5000)}` })
  t.equal(codeOf(oversized), 'refresh_token_invalid', 'an oversized cookie is an invalid token, not a schema error')
  t.equal((await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: `${SECURE_NAME}=${live}` })).statusCode, 200, 'none of that harmed the session')
})

t.test('a cookie-mode request from an unlisted origin, without Origin, or with cookie mode off is 403 origin_not_allowed', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const credentials = { email: a.email, password: PASSWORD }
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/login', credentials, { origin: EVIL }), 'login from an unlisted origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/login', credentials, { origin: 'null' }), 'login from an opaque origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/login', credentials, { origin: `${APP}:443` }), 'an origin must match exactly')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/login', credentials, { headers: { origin: undefined } }), 'login without Origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/refresh', undefined, { origin: EVIL, cookie: a.jar }), 'refresh from an unlisted origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/refresh', undefined, { headers: { origin: undefined }, cookie: a.jar }), 'refresh without Origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/logout', undefined, { origin: EVIL, headers: bearer(a.body.accessToken) }), 'logout from an unlisted origin')
  assertOriginRefused(t, await cookieCall(app, 'GET', '/auth/me', undefined, { origin: EVIL, headers: bearer(a.body.accessToken) }), 'a GET from an unlisted origin')
  t.equal((await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: a.jar })).statusCode, 200, 'the refusals left the session and its cookie alone')

  const { app: off } = await createTestApp(t, { env: { ACCOUNT_PAGE: 'false' } })
  const email = uniqueEmail()
  assertOriginRefused(t, await cookieCall(off, 'POST', '/auth/register', { email, password: PASSWORD }), 'cookie mode off: register')
  assertOriginRefused(t, await cookieCall(off, 'GET', '/auth/me', undefined, { headers: { origin: undefined } }), 'cookie mode off: even a GET')
  t.equal((await post(off, '/auth/register', { email, password: PASSWORD })).statusCode, 201, 'bearer mode works there, and the refused register created nothing')
})

t.test('a same-origin GET in cookie mode may come without Origin (browsers leave it off)', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const res = await cookieCall(app, 'GET', '/auth/me', undefined, { headers: { origin: undefined, ...bearer(a.body.accessToken) } })
  t.equal(res.statusCode, 200)
})

t.test('an unknown Vouch-Mode value is 400 validation_failed, not a silent fall-back to bearer mode', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  for (const mode of ['bearer', 'cookies', '', 'cookie, cookie']) {
    const res = await cookieCall(app, 'POST', '/auth/register', { email: uniqueEmail(), password: PASSWORD }, { headers: { 'vouch-mode': mode } })
    t.equal(res.statusCode, 400, JSON.stringify(mode))
    t.equal(codeOf(res), 'validation_failed', JSON.stringify(mode))
    t.notOk(res.body.includes('refreshToken'), `${JSON.stringify(mode)}: no token issued`)
  }
  const res = await cookieCall(app, 'POST', '/auth/register', { email: uniqueEmail(), password: PASSWORD }, { headers: { 'vouch-mode': ' Cookie ' } })
  t.equal(res.statusCode, 201, 'the value is case-insensitive')
})

t.test('a refresh carrying the cookie without Vouch-Mode and without a body token is 403 origin_not_allowed', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const formPost = (payload?: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/auth/refresh', ...(payload !== undefined && { payload }), headers: { origin: APP, cookie: a.jar, ...headers } })
  assertOriginRefused(t, await formPost(), 'no body, even from a listed origin')
  assertOriginRefused(t, await formPost({}), 'an empty object')
  assertOriginRefused(t, await formPost(undefined, { origin: EVIL }), 'from another origin')
  const withoutCookie = await app.inject({ method: 'POST', url: '/auth/refresh', payload: {} })
  t.equal(codeOf(withoutCookie), 'validation_failed', 'without the cookie, a body-less bearer refresh is the schema error it always was')

  const bearerRefresh = await formPost({ refreshToken: a.token })
  t.equal(bearerRefresh.statusCode, 200, 'with a body token it is a bearer refresh, as before')
  t.same(Object.keys(bearerRefresh.json()), BEARER_PAIR_KEYS, 'answered in the body')
  t.same(setCookiesOf(bearerRefresh), [], 'and no cookie')
})

t.test('CORS: credentials and Vouch-Mode for cookie origins only, nothing for unlisted origins', async (t) => {
  const { app } = await createTestApp(t, { env: { ...SECURE, CORS_ORIGINS: 'https://api-client.example' } })
  const preflight = (origin: string) => app.inject({
    method: 'OPTIONS', url: '/auth/refresh',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,vouch-mode' },
  })
  const corsHeaders = (res: LightMyRequestResponse) => Object.keys(res.headers).filter((name) => name.startsWith('access-control-'))

  const cookieOrigin = await preflight(APP)
  t.equal(cookieOrigin.statusCode, 204)
  t.equal(cookieOrigin.headers['access-control-allow-origin'], APP)
  t.equal(cookieOrigin.headers['access-control-allow-credentials'], 'true')
  t.same(String(cookieOrigin.headers['access-control-allow-headers']).split(',').map((h) => h.trim().toLowerCase()).sort(), ['authorization', 'content-type', 'vouch-mode'])
  t.same(String(cookieOrigin.headers['access-control-allow-methods']).split(',').map((m) => m.trim()), ['GET', 'POST', 'DELETE'])
  const actual = await cookieCall(app, 'POST', '/auth/register', { email: uniqueEmail(), password: PASSWORD })
  t.equal(actual.headers['access-control-allow-origin'], APP, 'the actual response too')
  t.equal(actual.headers['access-control-allow-credentials'], 'true')
  t.match(actual.headers.vary, /origin/i, 'caches keep answers per origin')

  const corsOrigin = await preflight('https://api-client.example')
  t.equal(corsOrigin.headers['access-control-allow-origin'], 'https://api-client.example', 'a CORS_ORIGINS origin gets CORS as before')
  t.notOk(corsOrigin.headers['access-control-allow-credentials'], 'without credentials')
  t.notMatch(String(corsOrigin.headers['access-control-allow-headers']), /vouch-mode/i, 'and without Vouch-Mode, so its browser cannot send cookie-mode requests')

  const unlisted = await preflight(EVIL)
  t.same(corsHeaders(unlisted), [], 'an unlisted origin: no Access-Control-* header on the preflight')
  const unlistedPost = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail(), password: PASSWORD }, headers: { origin: EVIL } })
  t.same(corsHeaders(unlistedPost), [], 'nor on a request')
})

t.test('logout, logout-all, account deletion and deleting the current session clear the cookie', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const ends = {
    logout: (access: string) => cookieCall(app, 'POST', '/auth/logout', undefined, { headers: bearer(access) }),
    'logout-all': (access: string) => cookieCall(app, 'POST', '/auth/logout-all', undefined, { headers: bearer(access) }),
    'account deletion': (access: string) => cookieCall(app, 'DELETE', '/auth/account', { password: PASSWORD }, { headers: bearer(access) }),
  }
  for (const [what, end] of Object.entries(ends)) {
    const a = await signUp(t, app)
    const res = await end(a.body.accessToken)
    t.equal(res.statusCode, 204, what)
    assertCleared(t, res, what)
    t.equal(codeOf(await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: a.jar })), 'refresh_token_invalid', `${what}: the old cookie is dead`)
  }

  const a = await signUp(t, app)
  const other = await cookieCall(app, 'POST', '/auth/login', { email: a.email, password: PASSWORD })
  const deleteOther = await cookieCall(app, 'DELETE', `/auth/sessions/${other.json().sessionId as string}`, undefined, { headers: bearer(a.body.accessToken) })
  t.equal(deleteOther.statusCode, 204)
  t.same(setCookiesOf(deleteOther), [], 'deleting another session keeps this one\'s cookie')
  const deleteMine = await cookieCall(app, 'DELETE', `/auth/sessions/${a.body.sessionId}`, undefined, { headers: bearer(a.body.accessToken) })
  t.equal(deleteMine.statusCode, 204)
  assertCleared(t, deleteMine, 'deleting the current session')

  const failed = await cookieCall(app, 'POST', '/auth/logout', undefined, { headers: bearer('not-a-token') })
  t.equal(failed.statusCode, 401)
  t.same(setCookiesOf(failed), [], 'a failed logout clears nothing')
})

t.test('a cookie-mode logout without an access token, or with an expired one, ends the session its cookie names and clears the cookie', async (t) => {
  const { app, clock, config, db } = await createTestApp(t, { env: SECURE })
  const bystander = await signUp(t, app)

  const a = await signUp(t, app)
  const cookieOnly = await cookieCall(app, 'POST', '/auth/logout', undefined, { cookie: a.jar })
  t.equal(cookieOnly.statusCode, 204, 'no access token: 204')
  t.equal(cookieOnly.body, '')
  assertCleared(t, cookieOnly, 'cookie-only logout')
  const refused = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: a.jar })
  t.equal(codeOf(refused), 'refresh_token_invalid', 'the ended session\'s refresh cookie is refused')
  assertCleared(t, refused, 'the refused refresh')
  t.equal(codeOf(await me(app, a.body.accessToken)), 'token_revoked', 'and its access token')
  const ended = await db.securityEvent.findMany({ where: { sessionId: a.body.sessionId, type: 'session_revoked' }, select: { detail: true } })
  t.same(ended.map((event) => event.detail), ['{"reason":"logout"}'], 'recorded as a logout, not a token revocation')

  const b = await signUp(t, app)
  clock.advance(config.tokens.accessTokenTtl + config.tokens.clockSkew + 1)
  t.equal(codeOf(await me(app, b.body.accessToken)), 'token_expired', 'the access token has expired')
  const expired = await cookieCall(app, 'POST', '/auth/logout', undefined, { cookie: b.jar, headers: bearer(b.body.accessToken) })
  t.equal(expired.statusCode, 204, 'an expired access token: 204')
  assertCleared(t, expired, 'logout with an expired access token')
  t.equal(codeOf(await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: b.jar })), 'refresh_token_invalid', 'that session ended too')

  t.equal((await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: bystander.jar })).statusCode, 200, 'no other session was touched')
})

t.test('a cookie-mode logout whose cookie names no live session clears it and answers 204 (logout is idempotent)', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const bystander = await signUp(t, app)
  const ended = await signUp(t, app)
  t.equal((await cookieCall(app, 'POST', '/auth/logout', undefined, { cookie: ended.jar })).statusCode, 204)
  const dead = {
    'the cookie of a session already ended': ended.token,
    'a made-up token': `${randomUUID()}.0.${'A'.repeat(65)}`,
    'garbage': 'not-a-token',
    'an empty cookie': '',
    'an oversized cookie': 'a'.repeat(5000),
  }
  for (const [what, value] of Object.entries(dead)) {
    const res = await cookieCall(app, 'POST', '/auth/logout', undefined, { cookie: `${SECURE_NAME}=${value}` })
    t.equal(res.statusCode, 204, `${what}: 204`)
    assertCleared(t, res, what)
  }
  t.equal((await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: bystander.jar })).statusCode, 200, 'no live session was touched')
})

t.test('a cookie-mode logout with neither an access token nor the cookie is 401 invalid_token and clears nothing', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const res = await cookieCall(app, 'POST', '/auth/logout')
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'invalid_token')
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.same(setCookiesOf(res), [], 'no Set-Cookie')
})

t.test('the refresh cookie sent to logout without Vouch-Mode, or from an origin not listed, is never used: 403 origin_not_allowed', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const formPost = (headers: Record<string, string> = {}) => app.inject({ method: 'POST', url: '/auth/logout', headers: { origin: APP, cookie: a.jar, ...headers } })
  assertOriginRefused(t, await formPost(), 'without Vouch-Mode, even from a listed origin')
  assertOriginRefused(t, await formPost({ origin: EVIL }), 'without Vouch-Mode, from another origin')
  assertOriginRefused(t, await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: a.jar } }), 'without Vouch-Mode or Origin')
  assertOriginRefused(t, await formPost({ 'content-type': 'application/x-www-form-urlencoded' }), 'a form post')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/logout', undefined, { origin: EVIL, cookie: a.jar }), 'with Vouch-Mode from an unlisted origin')
  assertOriginRefused(t, await cookieCall(app, 'POST', '/auth/logout', undefined, { headers: { origin: undefined }, cookie: a.jar }), 'with Vouch-Mode without Origin')
  const alive = await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: a.jar })
  t.equal(alive.statusCode, 200, 'the session lived through all of that')
  t.equal((await me(app, a.body.accessToken)).statusCode, 200, 'its access token too')

  const jar = `${SECURE_NAME}=${refreshCookieOf(t, alive, SECURE_NAME, true, 'refresh').value}`
  const bearerLogout = await formPost({ cookie: jar, ...bearer(alive.json().accessToken) })
  t.equal(bearerLogout.statusCode, 204, 'with an access token and without Vouch-Mode it is a bearer-mode logout, as before')
  t.same(setCookiesOf(bearerLogout), [], 'which neither reads nor clears the cookie')
})

t.test('with a live access token, a cookie-mode logout ends that token\'s session, whatever the cookie', async (t) => {
  const { app } = await createTestApp(t, { env: SECURE })
  const a = await signUp(t, app)
  const other = await cookieCall(app, 'POST', '/auth/login', { email: a.email, password: PASSWORD })
  const otherJar = `${SECURE_NAME}=${refreshCookieOf(t, other, SECURE_NAME, true, 'login').value}`
  const res = await cookieCall(app, 'POST', '/auth/logout', undefined, { cookie: otherJar, headers: bearer(a.body.accessToken) })
  t.equal(res.statusCode, 204)
  assertCleared(t, res, 'logout')
  t.equal(codeOf(await me(app, a.body.accessToken)), 'token_revoked', 'the access token\'s session ended')
  t.equal((await cookieCall(app, 'POST', '/auth/refresh', undefined, { cookie: otherJar })).statusCode, 200, 'the cookie\'s session did not')
})

t.test('bearer mode is unchanged while cookie mode is on: tokens in the body, no cookie', async (t) => {
  const { app, clock } = await createTestApp(t, { env: { ...SECURE, RESET_SIGNS_IN: 'true' } })
  const canonical = (res: LightMyRequestResponse, what: string, keys = BEARER_PAIR_KEYS) => {
    t.same(Object.keys(res.json()), keys, `${what}: the body's fields, in order`)
    t.equal(res.body, JSON.stringify(res.json()), `${what}: compact JSON, as before`)
    t.same(setCookiesOf(res), [], `${what}: no Set-Cookie`)
  }
  const email = uniqueEmail()
  const registered = await post(app, '/auth/register', { email, password: PASSWORD }, { origin: APP })
  t.equal(registered.statusCode, 201)
  canonical(registered, 'register from a cookie origin without the header', ['user', ...BEARER_PAIR_KEYS])
  const a = await register(app)
  const loggedIn = await post(app, '/auth/login', { email: a.email, password: PASSWORD })
  canonical(loggedIn, 'login')
  clock.advance(60)
  const refreshed = await refresh(app, loggedIn.json().refreshToken)
  canonical(refreshed, 'refresh')
  const changed = await post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }, bearer(refreshed.json().accessToken))
  canonical(changed, 'password change')
  const revoked = await post(app, '/auth/sessions/revoke-others', undefined, bearer(changed.json().accessToken))
  canonical(revoked, 'revoke-others')
  const invalid = await refresh(app, 'not-a-token')
  t.equal(codeOf(invalid), 'refresh_token_invalid')
  t.same(setCookiesOf(invalid), [], 'a failed bearer refresh clears no cookie')
  const out = await post(app, '/auth/logout', undefined, bearer(revoked.json().accessToken))
  t.equal(out.statusCode, 204)
  t.same(setCookiesOf(out), [], 'logout: no Set-Cookie')
})
