/**
 * The admin API (SPEC.md, "Admin API") through the whole app: Basic
 * credentials of an admin client (ADMIN_CLIENTS, or stored with kind admin),
 * 401 for none or wrong ones, 403 for a resource server's; each route's
 * answer; the version bump behind revoke-sessions and disable; what a
 * disabled account's owner sees; and the record every action leaves.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp, type TestOptions } from '../helpers/app.js'
import { assertOneBump, seedSessions } from '../helpers/bulk-sessions.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'
import { randomSecret } from '../../src/crypto/secrets.js'
import { createApiClients } from '../../src/domain/api-clients.js'
import { CACHE_MS } from '../../src/http/plugins/client-directory.js'
import { errorCatalogue } from '../../src/errors.js'

const ADMIN = { id: 'ops', secret: randomSecret() }
const RESOURCE = { id: 'orders', secret: randomSecret() }
const CHALLENGE = 'Basic realm="vouch"'
const USER_AGENT = 'admin-console/1.0'

function basic (id: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'user-agent': USER_AGENT }
}
const asAdmin = basic(ADMIN.id, ADMIN.secret)

async function adminApp (t: Test, options: TestOptions = {}) {
  return createTestApp(t, {
    ...options,
    env: { ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}`, RESOURCE_CLIENTS: `${RESOURCE.id}:${RESOURCE.secret}`, ...options.env },
  })
}

type Method = 'GET' | 'POST' | 'DELETE'

function send (app: FastifyInstance, method: Method, url: string, headers: Record<string, string> = asAdmin) {
  return app.inject({ method, url, headers })
}

/** An account to act on: its id, email and one session. */
interface Target { id: string, email: string, sessionId: string }

interface AdminRoute {
  method: Method
  path: string
  url: (target: Target) => string
  status: 200 | 204
}

/** Every route of the SPEC's table. */
const ROUTES: readonly AdminRoute[] = [
  { method: 'GET', path: '/admin/users?email=', url: (u) => `/admin/users?email=${encodeURIComponent(u.email)}`, status: 200 },
  { method: 'GET', path: '/admin/users/:id', url: (u) => `/admin/users/${u.id}`, status: 200 },
  { method: 'GET', path: '/admin/users/:id/sessions', url: (u) => `/admin/users/${u.id}/sessions`, status: 200 },
  { method: 'POST', path: '/admin/users/:id/revoke-sessions', url: (u) => `/admin/users/${u.id}/revoke-sessions`, status: 204 },
  { method: 'DELETE', path: '/admin/users/:id/sessions/:sessionId', url: (u) => `/admin/users/${u.id}/sessions/${u.sessionId}`, status: 204 },
  { method: 'POST', path: '/admin/users/:id/disable', url: (u) => `/admin/users/${u.id}/disable`, status: 204 },
  { method: 'POST', path: '/admin/users/:id/enable', url: (u) => `/admin/users/${u.id}/enable`, status: 204 },
  { method: 'DELETE', path: '/admin/users/:id', url: (u) => `/admin/users/${u.id}`, status: 204 },
  { method: 'GET', path: '/admin/users/:id/events', url: (u) => `/admin/users/${u.id}/events`, status: 200 },
]

const routeName = (route: AdminRoute) => `${route.method} ${route.path}`

async function newTarget (app: FastifyInstance): Promise<Target & { accessToken: string, refreshToken: string }> {
  const a = await register(app)
  return { id: a.user.id, email: a.email, sessionId: a.sessionId, accessToken: a.accessToken, refreshToken: a.refreshToken }
}

function isError (t: Test, res: LightMyRequestResponse, status: number, code: string, what: string) {
  t.equal(res.statusCode, status, `${what}: ${status}`)
  t.same(res.json(), { statusCode: status, error: res.json().error, code, message: res.json().message }, `${what}: the error shape`)
  t.equal(codeOf(res), code, `${what}: ${code}`)
}

t.test('every admin route: success, 401 without or with wrong credentials, 403 for a resource server, 404 for an unknown user', async (t) => {
  const { app } = await adminApp(t)
  for (const route of ROUTES) {
    const name = routeName(route)
    const target = await newTarget(app)
    const url = route.url(target)

    const none = await app.inject({ method: route.method, url })
    isError(t, none, 401, 'invalid_credentials', `${name} without credentials`)
    t.equal(none.headers['www-authenticate'], CHALLENGE, `${name}: a Basic challenge`)
    t.equal(none.headers['cache-control'], 'no-store')

    const wrong = await send(app, route.method, url, basic(ADMIN.id, randomSecret()))
    isError(t, wrong, 401, 'invalid_credentials', `${name} with a wrong secret`)
    t.equal(wrong.headers['www-authenticate'], CHALLENGE)
    const unknown = await send(app, route.method, url, basic('nobody', ADMIN.secret))
    isError(t, unknown, 401, 'invalid_credentials', `${name} with an unknown client id`)
    t.equal(unknown.body, wrong.body, `${name}: an unknown id and a wrong secret get the same answer`)
    const bearerToken = await send(app, route.method, url, bearer(target.accessToken))
    isError(t, bearerToken, 401, 'invalid_credentials', `${name} with a user's bearer token`)

    const resource = await send(app, route.method, url, basic(RESOURCE.id, RESOURCE.secret))
    isError(t, resource, 403, 'forbidden', `${name} with a resource server's credentials`)
    t.equal(resource.json().message, errorCatalogue.forbidden.message)
    t.notOk(resource.headers['www-authenticate'], `${name}: no challenge on 403`)
    const wrongResource = await send(app, route.method, url, basic(RESOURCE.id, randomSecret()))
    isError(t, wrongResource, 401, 'invalid_credentials', `${name} with a resource server's id and a wrong secret: 401, not 403`)

    t.equal((await me(app, target.accessToken)).statusCode, 200, `${name}: nothing happened to the account before the admin's call`)

    const nobody = { id: randomUUID(), email: uniqueEmail('nobody'), sessionId: randomUUID() }
    isError(t, await send(app, route.method, route.url(nobody)), 404, 'not_found', `${name} for an unknown user`)

    const ok = await send(app, route.method, url)
    t.equal(ok.statusCode, route.status, `${name} as an admin: ${route.status}`)
    t.equal(ok.headers['cache-control'], 'no-store')
    if (route.status === 204) t.equal(ok.body, '', `${name}: no body`)
  }
})

t.test('malformed ids and emails are 404 or 400, never a 5xx', async (t) => {
  const { app } = await adminApp(t)
  const target = await newTarget(app)
  const badIds = ['nope', randomUUID().toUpperCase(), `${randomUUID()}x`, "1' OR '1'='1", '%00', '..%2F..%2Fetc', 'x'.repeat(65), '%E2%80%AE']
  for (const route of ROUTES) {
    for (const bad of badIds) {
      const targets = route.path.includes(':sessionId') ? [{ ...target, id: bad, email: bad }, { ...target, sessionId: bad }] : [{ ...target, id: bad, email: bad }]
      for (const urlTarget of targets) {
        const res = await send(app, route.method, route.url(urlTarget))
        t.ok([400, 404].includes(res.statusCode), `${routeName(route)} with "${bad}": ${res.statusCode} ${codeOf(res)}`)
        t.ok(['validation_failed', 'not_found'].includes(codeOf(res)!), `${routeName(route)} with "${bad}": a catalogue code`)
      }
    }
  }
  isError(t, await send(app, 'GET', '/admin/users'), 400, 'validation_failed', 'GET /admin/users without an email')
  isError(t, await send(app, 'GET', '/admin/users?email='), 400, 'validation_failed', 'an empty email')
  isError(t, await send(app, 'GET', `/admin/users?email=${'a'.repeat(2000)}`), 400, 'validation_failed', 'an overlong email')
  isError(t, await send(app, 'GET', '/admin/users?email=not-an-email'), 404, 'not_found', 'a malformed email is no one')
  t.equal((await me(app, target.accessToken)).statusCode, 200, 'the account was not touched')
})

t.test('GET /admin/users finds an account by email (as sign-in compares it) or by id', async (t) => {
  const { app } = await adminApp(t)
  const a = await newTarget(app)
  const expected = { user: { id: a.id, email: a.email, createdAt: (await me(app, a.accessToken)).json().createdAt, disabledAt: null, tokenVersion: 0 } }
  const byEmail = await send(app, 'GET', `/admin/users?email=${encodeURIComponent(`  ${a.email.toUpperCase()} `)}`)
  t.equal(byEmail.statusCode, 200)
  t.same(byEmail.json(), expected, 'exactly {user: {id, email, createdAt, disabledAt, tokenVersion}}')
  t.same(Object.keys(byEmail.json().user), ['id', 'email', 'createdAt', 'disabledAt', 'tokenVersion'])
  t.same((await send(app, 'GET', `/admin/users/${a.id}`)).json(), expected)
  t.notMatch(byEmail.body, /passwordHash|argon2/, 'no hash')
})

t.test("GET /admin/users/:id/sessions lists the user's active sessions only, newest first", async (t) => {
  const { app, clock } = await adminApp(t)
  const a = await register(app, uniqueEmail(), PASSWORD, 'phone')
  clock.advance(1)
  const laptop = await login(app, a.email, PASSWORD, 'laptop')
  clock.advance(1)
  const tablet = await login(app, a.email, PASSWORD, 'tablet')
  await register(app)
  t.equal((await post(app, '/auth/logout', undefined, bearer(tablet.accessToken))).statusCode, 204)

  const res = await send(app, 'GET', `/admin/users/${a.user.id}/sessions`)
  t.equal(res.statusCode, 200)
  const { sessions } = res.json()
  t.same(sessions.map((s: { id: string }) => s.id), [laptop.sessionId, a.sessionId], 'active only, newest first')
  t.same(Object.keys(sessions[0]).sort(), ['createdAt', 'deviceName', 'expiresAt', 'id', 'ip', 'lastUsedAt', 'userAgent'])
  t.equal(sessions[0].deviceName, 'laptop')
  t.notMatch(res.body, /refreshTokenHash|seeded|tokenVersion/)
})

t.test('revoke-sessions is one UPDATE of one user row and one event, with 10,000 sessions on file', async (t) => {
  const statements: string[] = []
  let recording = false
  const { app, db } = await adminApp(t, { onQuery: (sql) => { if (recording) statements.push(sql) } })
  const a = await register(app)
  const b = await login(app, a.email)
  const other = await register(app)

  const snapshot = await seedSessions(db, a.user.id, 10_000)
  const before = await snapshot()

  recording = true
  const res = await send(app, 'POST', `/admin/users/${a.user.id}/revoke-sessions`)
  recording = false
  t.equal(res.statusCode, 204)

  assertOneBump(t, statements)
  t.equal(await snapshot(), before, 'no session row changed')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: a.user.id } })).tokenVersion, 1)

  for (const pair of [a, b]) {
    t.equal(codeOf(await me(app, pair.accessToken)), 'token_revoked')
    t.equal(codeOf(await refresh(app, pair.refreshToken)), 'refresh_token_invalid')
  }
  t.equal((await me(app, other.accessToken)).statusCode, 200, "another user's token keeps working")
  t.same((await send(app, 'GET', `/admin/users/${a.user.id}/sessions`)).json(), { sessions: [] })
  t.equal((await post(app, '/auth/login', { email: a.email, password: PASSWORD })).statusCode, 200, 'the user may sign in again')
})

t.test("DELETE /admin/users/:id/sessions/:sessionId ends that session only, and only the user's own", async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const other = await register(app)

  isError(t, await send(app, 'DELETE', `/admin/users/${a.user.id}/sessions/${other.sessionId}`), 404, 'not_found', "another user's session")
  t.equal((await me(app, other.accessToken)).statusCode, 200, "the other user's session lives")

  t.equal((await send(app, 'DELETE', `/admin/users/${a.user.id}/sessions/${b.sessionId}`)).statusCode, 204)
  t.equal(codeOf(await me(app, b.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, b.refreshToken)), 'refresh_token_invalid')
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'the other session of the user lives')
  t.equal((await send(app, 'DELETE', `/admin/users/${a.user.id}/sessions/${b.sessionId}`)).statusCode, 204, 'ending it again is done, not an error')
  t.same((await send(app, 'GET', `/admin/users/${a.user.id}/sessions`)).json().sessions.map((s: { id: string }) => s.id), [a.sessionId])
})

t.test("disable: the account's tokens die at once, sign-in and refresh are refused as for a wrong password; enable lets it sign in again", async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)
  const b = await login(app, a.email)

  t.equal((await send(app, 'POST', `/admin/users/${a.user.id}/disable`)).statusCode, 204)
  for (const pair of [a, b]) {
    const denied = await me(app, pair.accessToken)
    t.equal(denied.statusCode, 401)
    t.equal(codeOf(denied), 'token_revoked', 'an existing access token is revoked')
    t.equal(codeOf(await refresh(app, pair.refreshToken)), 'refresh_token_invalid', 'and its refresh token refused')
  }
  const user = (await send(app, 'GET', `/admin/users/${a.user.id}`)).json().user
  t.ok(user.disabledAt, 'disabledAt is set')
  t.equal(user.tokenVersion, 1, 'disabling bumped the version once')

  const rightPassword = await post(app, '/auth/login', { email: a.email, password: PASSWORD })
  const wrongPassword = await post(app, '/auth/login', { email: a.email, password: 'not the password' })
  const unknownEmail = await post(app, '/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD })
  t.equal(rightPassword.statusCode, 401)
  t.equal(codeOf(rightPassword), 'invalid_credentials')
  t.equal(rightPassword.body, wrongPassword.body, 'byte for byte the answer to a wrong password')
  t.equal(rightPassword.body, unknownEmail.body, 'and to an unknown email')
  t.equal(rightPassword.headers['www-authenticate'], wrongPassword.headers['www-authenticate'])

  t.equal((await send(app, 'POST', `/admin/users/${a.user.id}/disable`)).statusCode, 204, 'disabling again is done')
  t.equal((await send(app, 'GET', `/admin/users/${a.user.id}`)).json().user.tokenVersion, 1, 'and bumps nothing more')

  t.equal((await send(app, 'POST', `/admin/users/${a.user.id}/enable`)).statusCode, 204)
  t.same((await send(app, 'GET', `/admin/users/${a.user.id}`)).json().user.disabledAt, null)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked', 'enabling revives no token')
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid')
  const again = await post(app, '/auth/login', { email: a.email, password: PASSWORD })
  t.equal(again.statusCode, 200, 'sign-in works again')
  t.equal((await me(app, again.json().accessToken)).statusCode, 200)
  t.equal((await send(app, 'POST', `/admin/users/${a.user.id}/enable`)).statusCode, 204, 'enabling an enabled account is done')
})

t.test("delete: the account is gone for every route but its events, its tokens die and its email is free", async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)

  t.equal((await send(app, 'DELETE', `/admin/users/${a.user.id}`)).statusCode, 204)
  t.equal(codeOf(await me(app, a.accessToken)), 'token_revoked')
  t.equal(codeOf(await refresh(app, a.refreshToken)), 'refresh_token_invalid')
  for (const route of ROUTES.filter((route) => route.path !== '/admin/users/:id/events')) {
    isError(t, await send(app, route.method, route.url({ id: a.user.id, email: a.email, sessionId: a.sessionId })), 404, 'not_found',
      `${routeName(route)} after the deletion`)
  }
  // An incident is investigated after the erasure too: the events stay readable, without the user's addresses.
  const timeline = await send(app, 'GET', `/admin/users/${a.user.id}/events`)
  t.equal(timeline.statusCode, 200, 'the deleted account\'s events can still be read')
  t.match(timeline.json().events, [{ type: 'account_deleted', actor: 'admin', actorId: ADMIN.id }, { type: 'sign_in_succeeded', ip: null, userAgent: null }])
  isError(t, await send(app, 'GET', `/admin/users/${randomUUID()}/events`), 404, 'not_found', 'an id that never was a user\'s')
  const fresh = await post(app, '/auth/register', { email: a.email, password: PASSWORD })
  t.equal(fresh.statusCode, 201, 'the email can register again')
  t.not(fresh.json().user.id, a.user.id, 'as a new account')
})

t.test('every admin action, reads included, is on the timeline with actor admin and the client id', async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)
  const b = await login(app, a.email)
  const base = `/admin/users/${a.user.id}`
  const actions: Array<[Method, string, string]> = [
    ['GET', `/admin/users?email=${encodeURIComponent(a.email)}`, 'admin_read'],
    ['GET', base, 'admin_read'],
    ['GET', `${base}/sessions`, 'admin_read'],
    ['DELETE', `${base}/sessions/${b.sessionId}`, 'session_revoked'],
    ['POST', `${base}/revoke-sessions`, 'signed_out_everywhere'],
    ['POST', `${base}/disable`, 'account_disabled'],
    ['POST', `${base}/enable`, 'account_enabled'],
    ['GET', `${base}/events`, 'admin_read'],
  ]
  for (const [method, url] of actions) t.ok((await send(app, method, url)).statusCode < 300, `${method} ${url}`)

  const res = await send(app, 'GET', `${base}/events?limit=100`)
  t.equal(res.statusCode, 200)
  const events = res.json().events as Array<Record<string, unknown>>
  const byAdmin = events.filter((event) => event.actor === 'admin').reverse()
  t.same(byAdmin.map((event) => event.type), actions.map(([, , type]) => type), 'each action, in order')
  for (const event of byAdmin) {
    t.equal(event.actorId, ADMIN.id, `${String(event.type)}: the admin client's id`)
    t.equal(event.ip, '127.0.0.1', `${String(event.type)}: the admin's address`)
    t.equal(event.userAgent, USER_AGENT)
  }
  t.same(byAdmin[0]!.detail, { what: 'user' })
  t.same(byAdmin[3]!.detail, { reason: 'admin' })
  t.equal(byAdmin[3]!.sessionId, b.sessionId)
  t.same(Object.keys(byAdmin[0]!).sort(), ['actor', 'actorId', 'at', 'detail', 'id', 'ip', 'sessionId', 'type', 'userAgent'])
  const signUp = events.find((event) => event.type === 'sign_in_succeeded')
  t.equal(signUp?.actor, 'user', "the user's own actions are the user's")
  t.equal(signUp?.actorId, null)
})

t.test("the admin's view of a timeline: detail included, paged newest first with a cursor; bad paging is validation_failed", async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)
  for (let i = 0; i < 3; i++) await post(app, '/auth/login', { email: a.email, password: 'not the password' })
  await login(app, a.email)

  // Paged from the newest event at the first read: each read is recorded (admin_read) after it, newer than the cursor.
  const paged: string[] = []
  let next: string | undefined
  let pages = 0
  do {
    const page = await send(app, 'GET', `/admin/users/${a.user.id}/events?limit=2${next ? `&before=${next}` : ''}`)
    t.equal(page.statusCode, 200)
    t.ok(page.json().events.length <= 2)
    paged.push(...page.json().events.map((event: { id: string }) => event.id))
    next = page.json().next
    pages++
  } while (next !== undefined)
  t.equal(pages, Math.ceil(paged.length / 2))

  const all = (await send(app, 'GET', `/admin/users/${a.user.id}/events?limit=100`)).json()
  t.notOk('next' in all, 'one page holds it all: no next')
  const ids = all.events.map((event: { id: string }) => event.id)
  t.same(ids, [...ids].sort().reverse(), 'newest first')
  t.same(ids.slice(pages), paged, 'pages of 2 gave every event once, in order, with no gap')
  t.same(all.events.slice(0, pages).map((event: { type: string }) => event.type), Array(pages).fill('admin_read'), 'and the pages read since are recorded')
  const failed = all.events.filter((event: { type: string }) => event.type === 'sign_in_failed')
  t.equal(failed.length, 3)
  t.same(failed[0].detail, { reason: 'wrong_password' }, "an administrator sees a failed sign-in's reason")

  for (const query of ['limit=0', 'limit=101', 'limit=-1', 'limit=1.5', 'limit=abc', 'limit=', 'before=nope', `before=${randomUUID().toUpperCase()}`, 'before=']) {
    isError(t, await send(app, 'GET', `/admin/users/${a.user.id}/events?${query}`), 400, 'validation_failed', query)
  }
  t.equal((await send(app, 'GET', `/admin/users/${a.user.id}/events?limit=100&before=${randomUUID()}`)).statusCode, 200, 'any UUID is a cursor')
})

t.test('a stored admin client is an admin; a stored resource client is forbidden; a removed client stops working', async (t) => {
  const { app, db, clock } = await adminApp(t)
  const clients = createApiClients({ db, clock })
  const stored = await clients.add('console', 'admin')
  const feed = await clients.add('feed-reader', 'resource')
  const a = await register(app)

  const ok = await send(app, 'GET', `/admin/users/${a.user.id}`, basic(stored.id, stored.secret))
  t.equal(ok.statusCode, 200, 'a stored admin client is accepted')
  isError(t, await send(app, 'GET', `/admin/users/${a.user.id}`, basic(stored.id, randomSecret())), 401, 'invalid_credentials', 'its id with a wrong secret')
  isError(t, await send(app, 'GET', `/admin/users/${a.user.id}`, basic(feed.id, feed.secret)), 403, 'forbidden', 'a stored resource client')

  t.equal((await send(app, 'POST', `/admin/users/${a.user.id}/revoke-sessions`, basic(stored.id, stored.secret))).statusCode, 204)
  const events = (await send(app, 'GET', `/admin/users/${a.user.id}/events`)).json().events
  t.equal(events.find((event: { type: string }) => event.type === 'signed_out_everywhere')?.actorId, 'console', 'its actions carry its id')

  t.ok(await clients.remove(stored.id))
  clock.advance(CACHE_MS / 1000 + 1)
  isError(t, await send(app, 'GET', `/admin/users/${a.user.id}`, basic(stored.id, stored.secret)), 401, 'invalid_credentials',
    `a removed client, ${CACHE_MS} ms later`)
})

t.test('Basic credentials only: malformed headers and credentials in the query or body are 401 with a challenge', async (t) => {
  const { app } = await adminApp(t)
  const a = await register(app)
  const url = `/admin/users/${a.user.id}`
  const headers = [
    'Basic', 'Basic ', 'Basic !!!!', `Basic ${Buffer.from(ADMIN.id).toString('base64')}`, `Basic ${Buffer.from(`:${ADMIN.secret}`).toString('base64')}`,
    `Basic ${Buffer.from(`${ADMIN.id}:`).toString('base64')}`, `Bearer ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}`,
    `Digest username="${ADMIN.id}"`, `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}x`,
  ]
  for (const authorization of headers) {
    const res = await send(app, 'GET', url, { authorization })
    isError(t, res, 401, 'invalid_credentials', authorization.slice(0, 30))
    t.equal(res.headers['www-authenticate'], CHALLENGE)
  }
  isError(t, await send(app, 'GET', `${url}?client_id=${ADMIN.id}&client_secret=${ADMIN.secret}`, {}), 401, 'invalid_credentials', 'credentials in the query')
  const inBody = await app.inject({ method: 'POST', url: `${url}/disable`, payload: { client_id: ADMIN.id, client_secret: ADMIN.secret } })
  isError(t, inBody, 401, 'invalid_credentials', 'credentials in the body')
  t.equal((await me(app, a.accessToken)).statusCode, 200, 'nothing was disabled')
  t.equal((await send(app, 'GET', url, { authorization: `basic   ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}` })).statusCode, 200,
    'the scheme name is case-insensitive')
})

t.test('failed admin authentications are throttled with the resource servers\' counters: 429 past the limit, even with the right secret', async (t) => {
  const { app } = await adminApp(t, { env: { CLIENT_AUTH_MAX_FAILURES: '3', CLIENT_AUTH_MAX_CLIENT_FAILURES: '1000' } })
  const a = await register(app)
  const url = `/admin/users/${a.user.id}`
  for (let i = 0; i < 3; i++) isError(t, await send(app, 'GET', url, basic(ADMIN.id, randomSecret())), 401, 'invalid_credentials', `guess ${i + 1}`)
  const limited = await send(app, 'GET', url, basic(ADMIN.id, randomSecret()))
  isError(t, limited, 429, 'rate_limited', 'the fourth guess')
  t.ok(Number(limited.headers['retry-after']) > 0, 'with Retry-After')
  isError(t, await send(app, 'GET', url), 429, 'rate_limited', 'the right secret too, until the window ends')

  // A resource client's id guessed at through the admin API spends its budget at introspection too.
  for (let i = 0; i < 4; i++) await send(app, 'GET', url, basic(RESOURCE.id, randomSecret()))
  const introspect = await app.inject({ method: 'POST', url: '/auth/introspect', headers: basic(RESOURCE.id, RESOURCE.secret), payload: { token: 'x' } })
  isError(t, introspect, 429, 'rate_limited', 'introspection by the guessed-at resource client')
})

t.test('admin routes are under the per-IP rate limit', async (t) => {
  const { app } = await adminApp(t, { env: { RATE_LIMIT_MAX: '3' } })
  const url = `/admin/users/${randomUUID()}`
  for (let i = 0; i < 3; i++) t.equal((await send(app, 'GET', url)).statusCode, 404)
  isError(t, await send(app, 'GET', url), 429, 'rate_limited', 'the fourth request from one address')
})
