/**
 * @vouch/client's revocation push against a real vouch: a client keeping
 * GET /auth/session/watch open learns that its session was ended elsewhere
 * within seconds, without making a call; the client that changed the
 * password (and so moved the user's token version) ignores the version
 * event its own change caused and stays signed in; a stream that reports
 * the access token's expiry is followed by one refresh and a new stream.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createVouchClient, type SignOutReason } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startSdkServer, type SdkServer } from '../helpers/sdk.js'

const WITHIN_MS = 3000

function watching (t: Test, server: SdkServer) {
  const vouch = createVouchClient({ baseUrl: server.base, watch: true })
  t.teardown(() => vouch.close())
  const reasons: SignOutReason[] = []
  let signedOutAt = 0
  vouch.on('signedOut', ({ reason }) => {
    reasons.push(reason)
    signedOutAt = performance.now()
  })
  return { vouch, reasons, get signedOutAt () { return signedOutAt } }
}

async function until (condition: () => boolean, ms = WITHIN_MS * 2): Promise<boolean> {
  for (const deadline = performance.now() + ms; !condition();) {
    if (performance.now() > deadline) return false
    await sleep(20)
  }
  return true
}

/** Two devices of one user, the first watching; resolves once its stream is open. */
async function twoDevices (t: Test, env: Record<string, string> = {}) {
  const server = await startSdkServer(t, { env })
  const email = uniqueEmail('watch')
  const phone = watching(t, server)
  await phone.vouch.register({ email, password: PASSWORD })
  const laptop = createVouchClient({ baseUrl: server.base, watch: false })
  t.teardown(() => laptop.close())
  await laptop.login({ email, password: PASSWORD })
  t.ok(await until(() => server.requests('GET /auth/session/watch') >= 1), 'the watching client opened its stream')
  await sleep(200)
  return { server, phone, laptop }
}

t.test('a session revoked from another device: signed out (revoked) within seconds, without a call of its own', async (t) => {
  const { server, phone, laptop } = await twoDevices(t)
  const calls = () => server.requests('GET /auth/me') + server.requests('POST /auth/refresh')
  const before = calls()
  const start = performance.now()
  await laptop.revokeSession(phone.vouch.session!.sessionId)
  t.ok(await until(() => phone.reasons.length > 0), 'signed out')
  t.same(phone.reasons, ['revoked'])
  t.ok(phone.signedOutAt - start < WITHIN_MS, `after ${(phone.signedOutAt - start).toFixed(0)} ms (bound ${WITHIN_MS} ms)`)
  t.equal(calls(), before, 'pushed: the client asked vouch nothing')
  const opened = server.requests('GET /auth/session/watch')
  await sleep(1500)
  t.equal(server.requests('GET /auth/session/watch'), opened, 'and, signed out, does not reconnect')
})

t.test('sign-out everywhere from another device reaches the watching client', async (t) => {
  const { phone, laptop } = await twoDevices(t)
  await laptop.logoutAll()
  t.ok(await until(() => phone.reasons.length > 0))
  t.same(phone.reasons, ['revoked'])
})

t.test('the client that changed the password ignores the version event it caused, stays signed in, and watches on with the new token', async (t) => {
  const { server, phone, laptop } = await twoDevices(t)
  const other = watching(t, server)
  await other.vouch.login({ email: (await laptop.me()).email, password: PASSWORD })
  await sleep(300)
  const opened = server.requests('GET /auth/session/watch')
  await phone.vouch.changePassword({ currentPassword: PASSWORD, newPassword: 'a different passphrase' })
  t.ok(await until(() => other.reasons.length > 0), 'another watching client is signed out')
  t.same(other.reasons, ['revoked'])
  t.ok(await until(() => server.requests('GET /auth/session/watch') > opened), 'the changing client reconnected')
  await sleep(500)
  t.same(phone.reasons, [], 'and is still signed in')
  t.ok(phone.vouch.isSignedIn)
  t.ok((await phone.vouch.me()).id)
  // The new stream is live: a revocation now is pushed too.
  const start = performance.now()
  await laptop.login({ email: (await phone.vouch.me()).email, password: 'a different passphrase' })
  await laptop.revokeSession(phone.vouch.session!.sessionId)
  t.ok(await until(() => phone.reasons.length > 0))
  t.same(phone.reasons, ['revoked'])
  t.ok(phone.signedOutAt - start < WITHIN_MS)
})

t.test("the stream's expired event is followed by one refresh and a new stream", async (t) => {
  const TTL = 30
  const { server, phone } = await twoDevices(t, { ACCESS_TOKEN_TTL: String(TTL) })
  const refreshed: string[] = []
  phone.vouch.on('refreshed', ({ session }) => refreshed.push(session.accessToken))
  const opened = server.requests('GET /auth/session/watch')
  server.clock.advance(TTL + 10)
  t.ok(await until(() => refreshed.length === 1 && server.requests('GET /auth/session/watch') > opened), 'refreshed, then reconnected')
  t.equal(server.requests('POST /auth/refresh'), 1)
  t.same(phone.reasons, [])
})

t.test('a watch stream that keeps failing is reopened at most once a minute once the backoff has grown', async (t) => {
  const { retryDelay } = await import('../../packages/client/src/watch.js')
  for (const random of [() => 0, () => 0.5, () => 0.999]) {
    const delays = Array.from({ length: 12 }, (_, i) => retryDelay(i + 1, random))
    t.ok(delays[0]! >= 500 && delays[0]! <= 1000, `the first retry within a second (${delays[0]})`)
    for (let i = 1; i < 6; i++) t.ok(delays[i]! > delays[i - 1]! || delays[i]! >= 60_000, `grows: ${delays.slice(0, 7).join(', ')}`)
    for (const delay of delays.slice(6)) t.ok(delay >= 60_000 && delay <= 75_000, `from the seventh failure on, 60–75 s (${delay})`)
    const firstMinute = delays.reduce((acc, delay) => acc + delay, 0)
    t.ok(firstMinute / delays.length > 30_000, 'on average more than 30 s apart over 12 failures')
  }
})
