/**
 * GET /auth/events (SPEC.md, "The user's own account"): the caller's own
 * security timeline, newest first, paged by cursor; the user's view leaves
 * out what is internal (a failed sign-in's reason, the admin client's id).
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, post, register, uniqueEmail } from '../helpers/client.js'
import { randomSecret } from '../../src/crypto/secrets.js'

interface UserEvent { id: string, type: string, at: string, sessionId: string | null, ip: string | null, userAgent: string | null, actor: string }

function timeline (app: FastifyInstance, accessToken: string, query = '') {
  return app.inject({ method: 'GET', url: `/auth/events${query}`, headers: bearer(accessToken) })
}

t.test("the caller's timeline: their own events only, newest first, without detail or the admin's id", async (t) => {
  const admin = { id: 'ops-console', secret: randomSecret() }
  const { app } = await createTestApp(t, { env: { ADMIN_CLIENTS: `${admin.id}:${admin.secret}` } })
  const a = await register(app, uniqueEmail(), PASSWORD, 'phone')
  const other = await register(app)
  await post(app, '/auth/login', { email: a.email, password: 'not the password' })
  await post(app, '/auth/login', { email: other.email, password: 'not the password' })
  const laptop = await login(app, a.email, PASSWORD, 'laptop')
  t.equal((await post(app, '/auth/logout', undefined, bearer(laptop.accessToken))).statusCode, 204)
  const basic = { authorization: `Basic ${Buffer.from(`${admin.id}:${admin.secret}`).toString('base64')}` }
  t.equal((await app.inject({ method: 'GET', url: `/admin/users/${a.user.id}/sessions`, headers: basic })).statusCode, 200)

  const res = await timeline(app, a.accessToken)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  const { events } = res.json() as { events: UserEvent[] }
  t.notOk('next' in res.json(), 'one page: no next')
  const types = events.map((event) => event.type).filter((type) => type !== 'new_device')
  t.same(types, ['admin_read', 'session_revoked', 'sign_in_succeeded', 'sign_in_failed', 'sign_in_succeeded'], 'newest first')
  const ids = events.map((event) => event.id)
  t.same(ids, [...ids].sort().reverse(), 'ids descending')
  for (const event of events) {
    t.same(Object.keys(event).sort(), ['actor', 'at', 'id', 'ip', 'sessionId', 'type', 'userAgent'], `${event.type}: the user's view`)
  }
  t.equal(events[0]!.actor, 'admin', 'an administrator\'s look is on the timeline')
  t.equal(events.find((event) => event.type === 'session_revoked')?.sessionId, laptop.sessionId)
  t.equal(events.find((event) => event.type === 'sign_in_failed')?.ip, '127.0.0.1')
  t.notMatch(res.body, /wrong_password|"reason"|"detail"|"actorId"/, "no failed sign-in's reason, no detail")
  t.notMatch(res.body, new RegExp(admin.id), "no admin client's id")
  t.notMatch(res.body, new RegExp(other.user.id), "nothing of the other user's")
  t.notOk(events.some((event) => event.sessionId === other.sessionId))

  const theirs = (await timeline(app, other.accessToken)).json() as { events: UserEvent[] }
  t.same(theirs.events.map((event) => event.type).filter((type) => type !== 'new_device'), ['sign_in_failed', 'sign_in_succeeded'],
    "the other user sees only their own")
})

t.test('the timeline pages by cursor: no overlap, no gap, 50 a page by default', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)
  for (let i = 0; i < 54; i++) await post(app, '/auth/login', { email: a.email, password: `wrong ${i}` })
  const all = (await timeline(app, a.accessToken, '?limit=100')).json() as { events: UserEvent[], next?: string }
  t.notOk(all.next)
  t.equal(all.events.length, 55, 'the sign-up and 54 failures')

  const first = (await timeline(app, a.accessToken)).json() as { events: UserEvent[], next?: string }
  t.equal(first.events.length, 50, '50 by default')
  t.equal(first.next, first.events[49]!.id, 'next is the last event of the page')

  for (const size of [1, 7, 55]) {
    const paged: string[] = []
    let next: string | undefined
    do {
      const res = await timeline(app, a.accessToken, `?limit=${size}${next === undefined ? '' : `&before=${next}`}`)
      t.equal(res.statusCode, 200)
      const page = res.json() as { events: UserEvent[], next?: string }
      t.ok(page.events.length <= size)
      paged.push(...page.events.map((event) => event.id))
      next = page.next
    } while (next !== undefined)
    t.same(paged, all.events.map((event) => event.id), `pages of ${size}: every event once, in order`)
  }

  t.same((await timeline(app, a.accessToken, `?before=${all.events.at(-1)!.id}`)).json(), { events: [] }, 'nothing before the oldest')
})

t.test('the timeline needs a live bearer token, and a well-formed cursor and limit', async (t) => {
  const { app } = await createTestApp(t)
  const a = await register(app)

  const none = await app.inject({ method: 'GET', url: '/auth/events' })
  t.equal(none.statusCode, 401)
  t.equal(codeOf(none), 'invalid_token')
  t.equal(none.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(codeOf(await timeline(app, 'not.a.token')), 'invalid_token')

  for (const query of ['limit=0', 'limit=101', 'limit=-3', 'limit=2.5', 'limit=ten', 'limit=', 'before=', 'before=nope',
    `before=${randomUUID().toUpperCase()}`, `before=${randomUUID()}x`, "before=1' OR '1'='1"]) {
    const res = await timeline(app, a.accessToken, `?${encodeURI(query)}`)
    t.equal(res.statusCode, 400, query)
    t.equal(codeOf(res), 'validation_failed', query)
  }
  t.equal((await timeline(app, a.accessToken, `?limit=1&before=${randomUUID()}`)).statusCode, 200, 'any UUID is a cursor')

  t.equal((await post(app, '/auth/logout-all', undefined, bearer(a.accessToken))).statusCode, 204)
  const revoked = await timeline(app, a.accessToken)
  t.equal(revoked.statusCode, 401)
  t.equal(codeOf(revoked), 'token_revoked')
})
