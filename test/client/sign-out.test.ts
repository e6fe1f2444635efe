/**
 * Each reason @vouch/client gives when it signs out, produced by the real
 * thing at a real vouch (issue 12, must-show 2): `logout` for this client's
 * own sign-out, `revoked` when the session was ended from another device,
 * `reuse_detected` when a thief's use of the refresh token makes the
 * legitimate client's next refresh a replay, `expired` when the session
 * outlived its lifetime. And the converse: a network failure never signs
 * anyone out.
 *
 * The background watch is off here (test/client/watch.test.ts covers it):
 * each client learns of its session's end at its next call.
 */
import t, { type Test } from 'tap'
import { createVouchClient, VouchError, type SignOutReason, type VouchClientOptions } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { createCuttableProxy } from '../helpers/proxy.js'
import { inspectableStorage, startApi, startSdkServer } from '../helpers/sdk.js'

function client (t: Test, options: VouchClientOptions) {
  const vouch = createVouchClient({ watch: false, ...options })
  t.teardown(() => vouch.close())
  const reasons: SignOutReason[] = []
  vouch.on('signedOut', ({ reason }) => reasons.push(reason))
  return { vouch, reasons }
}

const refreshAt = (base: string, refreshToken: string) =>
  fetch(`${base}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken }) })

async function rejection (promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (err: unknown) => err)
}

t.test("logout: 'logout', storage emptied, and the session is over at vouch", async (t) => {
  const server = await startSdkServer(t)
  const storage = inspectableStorage()
  const { vouch, reasons } = client(t, { baseUrl: server.base, storage })
  await vouch.register({ email: uniqueEmail('logout'), password: PASSWORD })
  const refreshToken = storage.held!.refreshToken!
  await vouch.logout()
  t.same(reasons, ['logout'])
  t.notOk(vouch.isSignedIn)
  t.equal(vouch.session, null)
  t.equal(storage.held, null, 'nothing left in storage')
  t.equal((await refreshAt(server.base, refreshToken)).status, 401, "the session's refresh token no longer works")
  await vouch.logout()
  t.same(reasons, ['logout'], 'a second logout has nothing to do and says nothing')
})

t.test("logoutAll: 'logout' here, and the user's other session ends too", async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('all')
  const here = client(t, { baseUrl: server.base })
  const there = client(t, { baseUrl: server.base })
  await here.vouch.register({ email, password: PASSWORD })
  await there.vouch.login({ email, password: PASSWORD })
  await here.vouch.logoutAll()
  t.same(here.reasons, ['logout'])
  const err = await rejection(there.vouch.me())
  t.ok(err instanceof VouchError && err.code === 'token_revoked', 'the other device is refused at its next call')
  t.same(there.reasons, ['revoked'], "and signs out with 'revoked'")
})

t.test("revoked from another device: 'revoked' at the next call, after the refresh that confirms it", async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('revoked')
  const phone = client(t, { baseUrl: server.base, deviceName: 'phone' })
  const laptop = client(t, { baseUrl: server.base, deviceName: 'laptop' })
  await phone.vouch.register({ email, password: PASSWORD })
  await laptop.vouch.login({ email, password: PASSWORD })
  const devices = await laptop.vouch.sessions()
  t.same(devices.map((d) => [d.deviceName, d.current]).sort(), [['laptop', true], ['phone', false]])

  await laptop.vouch.revokeSession(phone.vouch.session!.sessionId)
  const err = await rejection(phone.vouch.me())
  t.ok(err instanceof VouchError, 'a VouchError')
  t.equal((err as VouchError).code, 'token_revoked')
  t.equal((err as VouchError).status, 401)
  t.same(phone.reasons, ['revoked'])
  t.notOk(phone.vouch.isSignedIn)
  t.equal(server.requests('POST /auth/refresh'), 1, 'one refresh, to confirm the verdict before signing out')
  t.same(laptop.reasons, [], 'the device that did it is unaffected')
  t.equal((await laptop.vouch.me()).email, email)
})

t.test("a password changed on another device: 'revoked' there, while this device keeps its session with new tokens", async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('password')
  const here = client(t, { baseUrl: server.base })
  const there = client(t, { baseUrl: server.base })
  await here.vouch.register({ email, password: PASSWORD })
  await there.vouch.login({ email, password: PASSWORD })
  const refreshed: string[] = []
  here.vouch.on('refreshed', ({ session }) => refreshed.push(session.accessToken))
  const before = here.vouch.session!

  await here.vouch.changePassword({ currentPassword: PASSWORD, newPassword: 'a brand new passphrase' })
  t.equal(refreshed.length, 1, 'this device got new tokens (refreshed)')
  t.equal(here.vouch.session!.sessionId, before.sessionId, 'for the same session')
  t.equal((await here.vouch.me()).email, email, 'and keeps working')
  await rejection(there.vouch.me())
  t.same(there.reasons, ['revoked'])
  t.same(here.reasons, [])
  const wrong = await rejection(here.vouch.changePassword({ currentPassword: 'not it', newPassword: 'another passphrase' }))
  t.ok(wrong instanceof VouchError && wrong.code === 'invalid_credentials', 'a wrong current password is a typed error')
  t.ok(here.vouch.isSignedIn, 'and signs no one out')
})

t.test("revokeOtherSessions keeps this device; revoking this device's own session is a 'logout'", async (t) => {
  const server = await startSdkServer(t)
  const email = uniqueEmail('others')
  const here = client(t, { baseUrl: server.base })
  const there = client(t, { baseUrl: server.base })
  await here.vouch.register({ email, password: PASSWORD })
  await there.vouch.login({ email, password: PASSWORD })
  await here.vouch.revokeOtherSessions()
  t.equal((await here.vouch.sessions()).length, 1)
  await rejection(there.vouch.me())
  t.same(there.reasons, ['revoked'])
  await here.vouch.revokeSession(here.vouch.session!.sessionId)
  t.same(here.reasons, ['logout'])
})

t.test("a thief used the refresh token first: the device's next refresh is a replay, 'reuse_detected', and the thief is out too", async (t) => {
  const TTL = 30
  const server = await startSdkServer(t, { env: { ACCESS_TOKEN_TTL: String(TTL), REFRESH_REUSE_GRACE: '1' } })
  const storage = inspectableStorage()
  const { vouch, reasons } = client(t, { baseUrl: server.base, storage, now: () => server.clock.now().getTime() })
  await vouch.register({ email: uniqueEmail('theft'), password: PASSWORD })

  // The thief copies the refresh token out of the device's storage and uses it.
  const stolen = storage.held!.refreshToken!
  const thief = await refreshAt(server.base, stolen)
  t.equal(thief.status, 200, "the thief's refresh works: vouch cannot yet tell who is who")
  const thiefToken = (await thief.json() as { refreshToken: string }).refreshToken

  server.clock.advance(TTL + 5) // past the grace window, and past the device's access token
  const err = await rejection(vouch.me())
  t.ok(err instanceof VouchError, 'the call fails with a VouchError')
  t.same(reasons, ['reuse_detected'])
  t.notOk(vouch.isSignedIn)
  t.equal(storage.held, null)
  const after = await refreshAt(server.base, thiefToken)
  t.equal((await after.json() as { code: string }).code, 'refresh_token_invalid', "the thief's token died with the session")
})

t.test("a session past its lifetime: 'expired'", async (t) => {
  const server = await startSdkServer(t, { env: { ACCESS_TOKEN_TTL: '30', SESSION_LIFETIME: '60' } })
  const { vouch, reasons } = client(t, { baseUrl: server.base, now: () => server.clock.now().getTime() })
  await vouch.register({ email: uniqueEmail('expired'), password: PASSWORD })
  server.clock.advance(45)
  await vouch.me()
  t.same(reasons, [], 'before the end, the access token is refreshed as usual')
  server.clock.advance(20)
  await rejection(vouch.me())
  t.same(reasons, ['expired'])
  t.notOk(vouch.isSignedIn)
})

t.test('a session that ends early while its refresh token would still be valid is revoked, not expired', async (t) => {
  const server = await startSdkServer(t, { env: { ACCESS_TOKEN_TTL: '30', SESSION_LIFETIME: '600' } })
  const { vouch, reasons } = client(t, { baseUrl: server.base, now: () => server.clock.now().getTime() })
  const { session } = await vouch.register({ email: uniqueEmail('early'), password: PASSWORD })
  await server.db.session.update({ where: { id: session.sessionId }, data: { revokedAt: server.clock.now(), revokedReason: 'revoked_by_user' } })
  server.clock.advance(40)
  await rejection(vouch.me())
  t.same(reasons, ['revoked'])
})

t.test('a network failure never signs out: calls reject with the TypeError, tokens and storage stay, and everything works once vouch is back', async (t) => {
  const TTL = 30
  const server = await startSdkServer(t, { env: { ACCESS_TOKEN_TTL: String(TTL) } })
  const { port } = new URL(server.base)
  const proxy = await createCuttableProxy({ host: '127.0.0.1', port: Number(port) })
  t.teardown(() => proxy.cut())
  const api = await startApi(t, server.base)
  const storage = inspectableStorage()
  const { vouch, reasons } = client(t, { baseUrl: `http://127.0.0.1:${proxy.port}`, storage, now: () => server.clock.now().getTime() })
  await vouch.register({ email: uniqueEmail('offline'), password: PASSWORD })
  const stored = storage.held

  await proxy.cut()
  server.clock.advance(TTL + 10)
  const failures = [
    await rejection(vouch.me()),
    await rejection(vouch.refresh()),
    await rejection(vouch.sessions()),
    await rejection(vouch.logout()),
  ]
  for (const err of failures) t.ok(err instanceof TypeError && !(err instanceof VouchError), `rejected with the network's TypeError (${String(err)})`)
  const apiAnswer = await vouch.fetch(`${api.base}/api/profile`)
  t.equal(apiAnswer.status, 401, "vouch.fetch returns the API's own answer when the refresh cannot reach vouch")
  t.same(reasons, [], 'no sign-out')
  t.ok(vouch.isSignedIn)
  t.same(storage.held, stored, 'storage untouched')

  await proxy.start()
  t.equal((await vouch.fetch(`${api.base}/api/profile`)).status, 200, 'back online: the next call refreshes and succeeds')
  t.ok((await vouch.me()).email)
  t.same(reasons, [])
})

t.test('a 5xx or 429 from vouch during a refresh is not a sign-out either', async (t) => {
  const server = await startSdkServer(t, { env: { ACCESS_TOKEN_TTL: '30' } })
  let failNext = 0
  const { vouch, reasons } = client(t, {
    baseUrl: server.base,
    now: () => server.clock.now().getTime(),
    // vouch's own answers, except refreshes answered by an overloaded front (a 503 with Retry-After, then a 429).
    fetch: async (input, init) => {
      if (String(input).endsWith('/auth/refresh') && failNext > 0) {
        failNext -= 1
        const status = failNext === 1 ? 503 : 429
        return new Response(JSON.stringify({ statusCode: status, error: 'x', code: status === 503 ? 'service_unavailable' : 'rate_limited', message: 'later' }),
          { status, headers: { 'content-type': 'application/json', 'retry-after': '7' } })
      }
      return fetch(input, init)
    },
  })
  await vouch.register({ email: uniqueEmail('busy'), password: PASSWORD })
  failNext = 2
  const first = await rejection(vouch.refresh())
  t.ok(first instanceof VouchError && first.code === 'service_unavailable' && first.retryAfter === 7)
  const second = await rejection(vouch.refresh())
  t.ok(second instanceof VouchError && second.code === 'rate_limited')
  t.same(reasons, [])
  t.ok(vouch.isSignedIn)
  await vouch.refresh()
})
