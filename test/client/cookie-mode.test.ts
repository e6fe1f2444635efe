/**
 * @vouch/client in cookie mode against a real vouch, lightly: Node's fetch
 * has no cookie jar and sends no Origin, so the client is given a fetch that
 * does what a browser does for a page at APP_ORIGIN (test/helpers/
 * browser-fetch.ts: a jar honouring the cookies' Path and Max-Age=0, and the
 * Origin header). The browser tests
 * (test/browser/) cover cookie mode in Chromium, across tabs.
 *
 * Pinned here: no refresh token ever reaches the client (not in a body, not
 * in its session), every call carries Vouch-Mode: cookie, a "reload"
 * restores through the cookie with one refresh, concurrent calls with an
 * expired token share one refresh, logout leaves nothing to restore, and a
 * logout with an expired access token ends the session through the cookie
 * without refreshing first.
 */
import t, { type Test } from 'tap'
import { createVouchClient, type SignOutReason } from '@vouch/client'
import { browserLikeFetch } from '../helpers/browser-fetch.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startSdkServer } from '../helpers/sdk.js'

const APP_ORIGIN = 'http://app.localhost:8080'
const TTL = 30

async function cookieServer (t: Test) {
  return startSdkServer(t, { env: { COOKIE_ORIGINS: APP_ORIGIN, ACCESS_TOKEN_TTL: String(TTL) } })
}

t.test('cookie mode: the refresh token stays in the cookie; a reload restores with one refresh; logout leaves nothing', async (t) => {
  const server = await cookieServer(t)
  const browser = browserLikeFetch(APP_ORIGIN)
  const page = () => {
    const vouch = createVouchClient({ baseUrl: server.base, mode: 'cookie', fetch: browser.fetch, watch: false, now: () => server.clock.now().getTime() })
    t.teardown(() => vouch.close())
    return vouch
  }
  const first = page()
  t.equal(await first.restore(), false, 'no cookie yet: signed out, without an event')
  const { user } = await first.register({ email: uniqueEmail('cookie'), password: PASSWORD })
  t.same(browser.cookies().map(({ path }) => path), ['/auth/refresh', '/auth/logout'], 'vouch set the refresh cookie, for refresh and for logout')
  t.notOk('refreshToken' in (first.session as object), 'the session object has no refresh token')
  first.close()

  const second = page()
  const before = server.requests('POST /auth/refresh')
  t.equal(await second.restore(), true, 'a reload restores the session through the cookie')
  t.equal(server.requests('POST /auth/refresh') - before, 1, 'with one refresh')
  t.equal((await second.me()).id, user.id)

  server.clock.advance(TTL + 10)
  const profiles = await Promise.all(Array.from({ length: 20 }, () => second.me()))
  t.ok(profiles.every((p) => p.id === user.id))
  t.equal(server.requests('POST /auth/refresh') - before, 2, 'one more refresh for 20 concurrent calls with an expired token')

  await second.logout()
  t.same(browser.cookies(), [], 'logout cleared the cookie at both paths')
  const third = page()
  t.equal(await third.restore(), false, 'nothing to restore after logout')

  for (const { url, mode, credentials, body } of browser.seen) {
    t.equal(mode, 'cookie', `${url} carried Vouch-Mode: cookie`)
    t.equal(credentials, 'include', `${url} sent credentials`)
    t.notMatch(body, /refreshToken/, `${url}: no refresh token in the body`)
  }
})

t.test('cookie mode from an origin vouch does not list: a typed origin_not_allowed, not a sign-out', async (t) => {
  const server = await startSdkServer(t, { env: { COOKIE_ORIGINS: 'https://elsewhere.example' } })
  const browser = browserLikeFetch(APP_ORIGIN)
  const vouch = createVouchClient({ baseUrl: server.base, mode: 'cookie', fetch: browser.fetch, watch: false })
  t.teardown(() => vouch.close())
  await t.rejects(vouch.login({ email: uniqueEmail(), password: PASSWORD }), { name: 'VouchError', code: 'origin_not_allowed', status: 403 })
  await t.rejects(vouch.restore(), { code: 'origin_not_allowed' }, 'restore says why rather than "signed out"')
})

t.test('cookie mode: logout with an expired access token ends the session through the cookie, without refreshing first', async (t) => {
  const server = await cookieServer(t)
  const browser = browserLikeFetch(APP_ORIGIN)
  const vouch = createVouchClient({ baseUrl: server.base, mode: 'cookie', fetch: browser.fetch, watch: false, now: () => server.clock.now().getTime() })
  t.teardown(() => vouch.close())
  const signedOut: SignOutReason[] = []
  vouch.on('signedOut', ({ reason }) => { signedOut.push(reason) })
  const { session } = await vouch.register({ email: uniqueEmail('cookie'), password: PASSWORD })
  const held = browser.cookies()

  server.clock.advance(TTL + 10)
  const refreshes = server.requests('POST /auth/refresh')
  await vouch.logout()
  t.equal(server.requests('POST /auth/refresh'), refreshes, 'no refresh just to sign out')
  t.equal(server.requests('POST /auth/logout'), 1, 'one logout')
  t.same(signedOut, ['logout'], 'signed out, for logout')
  t.notOk(vouch.isSignedIn)
  t.same(browser.cookies(), [], 'the cookie is cleared at both paths')

  const replay = await fetch(`${server.base}/auth/refresh`, {
    method: 'POST', headers: { 'vouch-mode': 'cookie', origin: APP_ORIGIN, cookie: `${held[0]!.name}=${held[0]!.value}` },
  })
  t.equal(replay.status, 401)
  t.equal((await replay.json() as { code: string }).code, 'refresh_token_invalid', 'the session\'s refresh token is dead: the session ended')
  const row = await server.db.session.findUniqueOrThrow({ where: { id: session.sessionId }, select: { revokedAt: true } })
  t.ok(row.revokedAt, 'the session is revoked at vouch')
})
