/**
 * @vouch/client in cookie mode against a real vouch, lightly: Node's fetch
 * has no cookie jar and sends no Origin, so the client is given a fetch that
 * does what a browser does for a page at APP_ORIGIN (a minimal jar honouring
 * the cookie's Path and Max-Age, and the Origin header). The browser tests
 * (test/browser/) cover cookie mode in Chromium, across tabs.
 *
 * Pinned here: no refresh token ever reaches the client (not in a body, not
 * in its session), every call carries Vouch-Mode: cookie, a "reload"
 * restores through the cookie with one refresh, concurrent calls with an
 * expired token share one refresh, and logout leaves nothing to restore.
 */
import t, { type Test } from 'tap'
import { createVouchClient, type FetchLike } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startSdkServer } from '../helpers/sdk.js'

const APP_ORIGIN = 'http://app.localhost:8080'
const TTL = 30

/** A browser's fetch for a page at APP_ORIGIN, reduced to what cookie mode needs; records what it saw. */
function browserLikeFetch () {
  const jar = new Map<string, { value: string, path: string }>()
  const seen: Array<{ url: string, mode: string | null, credentials: string | undefined, body: string }> = []
  const fetchImpl: FetchLike = async (input, init = {}) => {
    const url = new URL(String(input))
    const headers = new Headers(init.headers)
    headers.set('origin', APP_ORIGIN)
    if (init.credentials === 'include') {
      const cookies = [...jar].filter(([, c]) => url.pathname.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`)
      if (cookies.length > 0) headers.set('cookie', cookies.join('; '))
    }
    const response = await fetch(url, { ...init, headers })
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim())
      const name = pair.slice(0, pair.indexOf('='))
      const value = pair.slice(pair.indexOf('=') + 1)
      const path = attributes.find((a) => /^path=/i.test(a))?.slice(5) ?? '/'
      if (attributes.some((a) => /^max-age=0$/i.test(a)) || value === '') jar.delete(name)
      else jar.set(name, { value, path })
    }
    const body = await response.clone().text()
    seen.push({ url: url.pathname, mode: headers.get('vouch-mode'), credentials: init.credentials, body })
    return response
  }
  return { fetch: fetchImpl, jar, seen }
}

async function cookieServer (t: Test) {
  return startSdkServer(t, { env: { COOKIE_ORIGINS: APP_ORIGIN, ACCESS_TOKEN_TTL: String(TTL) } })
}

t.test('cookie mode: the refresh token stays in the cookie; a reload restores with one refresh; logout leaves nothing', async (t) => {
  const server = await cookieServer(t)
  const browser = browserLikeFetch()
  const page = () => {
    const vouch = createVouchClient({ baseUrl: server.base, mode: 'cookie', fetch: browser.fetch, watch: false, now: () => server.clock.now().getTime() })
    t.teardown(() => vouch.close())
    return vouch
  }
  const first = page()
  t.equal(await first.restore(), false, 'no cookie yet: signed out, without an event')
  const { user } = await first.register({ email: uniqueEmail('cookie'), password: PASSWORD })
  t.equal(browser.jar.size, 1, 'vouch set the refresh cookie')
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
  t.equal(browser.jar.size, 0, 'logout cleared the cookie')
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
  const browser = browserLikeFetch()
  const vouch = createVouchClient({ baseUrl: server.base, mode: 'cookie', fetch: browser.fetch, watch: false })
  t.teardown(() => vouch.close())
  await t.rejects(vouch.login({ email: uniqueEmail(), password: PASSWORD }), { name: 'VouchError', code: 'origin_not_allowed', status: 403 })
  await t.rejects(vouch.restore(), { code: 'origin_not_allowed' }, 'restore says why rather than "signed out"')
})
