/**
 * @vouch/client's refresh against a real vouch (issue 12, must-show 2):
 * however many calls need new tokens at once, exactly one refresh reaches
 * vouch (counted by vouch itself), and a 401 token_expired from the
 * application's API is cured by that one refresh and one retry per call.
 *
 * Time: vouch runs on the test clock. A client given `now` from the same
 * clock knows its access token has expired and refreshes before sending; a
 * client on the real clock does not, and learns it from the API's 401 (as
 * one on a device whose clock is behind would).
 */
import t from 'tap'
import { createVouchClient, type VouchClient } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startApi, startSdkServer } from '../helpers/sdk.js'

const TTL = 30
const ENV = { ACCESS_TOKEN_TTL: String(TTL) }

function client (t: Parameters<typeof startSdkServer>[0], base: string, now?: () => number): VouchClient {
  const vouch = createVouchClient({ baseUrl: base, watch: false, ...(now && { now }) })
  t.teardown(() => vouch.close())
  return vouch
}

t.test('50 concurrent vouch.fetch calls with an expired access token: one refresh reaches vouch, and every call succeeds', async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const api = await startApi(t, server.base)
  const vouch = client(t, server.base, () => server.clock.now().getTime())
  const { user } = await vouch.register({ email: uniqueEmail('fifty'), password: PASSWORD })
  const refreshed: string[] = []
  vouch.on('refreshed', ({ session }) => refreshed.push(session.accessToken))
  const before = vouch.session!.accessToken

  server.clock.advance(TTL + 10)
  const responses = await Promise.all(Array.from({ length: 50 }, () => vouch.fetch(`${api.base}/api/profile`)))

  t.same(responses.map((r) => r.status), Array(50).fill(200), 'every call succeeded')
  const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ user: string }>))
  t.ok(bodies.every((body) => body.user === user.id), 'as the user')
  t.equal(server.requests('POST /auth/refresh'), 1, 'exactly one refresh reached vouch')
  t.equal(api.calls, 50, 'no call needed a retry: the token was refreshed before they were sent')
  t.equal(refreshed.length, 1, 'one refreshed event')
  t.not(vouch.session!.accessToken, before)
})

t.test('a 401 token_expired from the API: one refresh for 50 concurrent calls, each retried once with the new token', async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const api = await startApi(t, server.base)
  const vouch = client(t, server.base) // the real clock: the client believes its token is still fresh
  await vouch.register({ email: uniqueEmail('retry'), password: PASSWORD })

  server.clock.advance(TTL + 10)
  const responses = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    vouch.fetch(`${api.base}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) })))

  t.same(responses.map((r) => r.status), Array(50).fill(200), 'every call succeeded on its retry')
  const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ echo: { i: number } }>))
  t.same(bodies.map((body) => body.echo.i), Array.from({ length: 50 }, (_, i) => i), 'each retry carried its own body again')
  t.equal(server.requests('POST /auth/refresh'), 1, 'exactly one refresh reached vouch')
  t.equal(api.calls, 100, 'each call was sent twice: refused, then retried once')
  t.ok(vouch.isSignedIn)
})

t.test("the retry happens once: a call the API still refuses after the refresh gets the API's 401", async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const api = await startApi(t, server.base)
  const vouch = client(t, server.base)
  await vouch.register({ email: uniqueEmail('once'), password: PASSWORD })
  const response = await vouch.fetch(`${api.base}/api/always-expired`)
  t.equal(response.status, 401)
  t.equal((await response.json() as { code: string }).code, 'token_expired')
  t.equal(api.calls, 2, 'sent, refreshed, retried once, no more')
  t.equal(server.requests('POST /auth/refresh'), 1)
  t.ok(vouch.isSignedIn, 'still signed in: vouch refreshed the session without complaint')
})

t.test("a 401 that is not about the token's age is returned as it is, with no refresh", async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const api = await startApi(t, server.base)
  const vouch = client(t, server.base)
  const response = await vouch.fetch(`${api.base}/api/profile`)
  t.equal(response.status, 401, 'signed out: sent without a token, refused')
  t.equal((await response.json() as { code: string }).code, 'invalid_token')
  t.equal(server.requests('POST /auth/refresh'), 0)
  t.equal(api.calls, 1)
})

t.test("vouch's own routes get the same treatment: me() after the token expired at vouch refreshes once and retries", async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const vouch = client(t, server.base)
  const { user } = await vouch.register({ email: uniqueEmail('me'), password: PASSWORD })
  server.clock.advance(TTL + 10)
  const profiles = await Promise.all(Array.from({ length: 10 }, () => vouch.me()))
  t.ok(profiles.every((profile) => profile.id === user.id))
  t.equal(server.requests('POST /auth/refresh'), 1)
  t.equal(server.requests('GET /auth/me'), 20, 'ten refused, ten retried')
})

t.test('concurrent explicit refresh() calls share one request; a later one sends its own', async (t) => {
  const server = await startSdkServer(t, { env: ENV })
  const vouch = client(t, server.base)
  await vouch.register({ email: uniqueEmail('explicit'), password: PASSWORD })
  const sessions = await Promise.all(Array.from({ length: 20 }, () => vouch.refresh()))
  t.equal(new Set(sessions.map((s) => s.accessToken)).size, 1, 'everyone got the same tokens')
  t.equal(server.requests('POST /auth/refresh'), 1)
  await vouch.refresh()
  t.equal(server.requests('POST /auth/refresh'), 2, 'a refresh asked for after the first completed is a new one')
})
