/**
 * A real vouch server and a separate resource-server process
 * (examples/resource-server.ts, using @vouch/verifier/fastify): tokens are
 * checked with no call to vouch per request, and revocations made at vouch
 * reach the resource server within a second.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { resourceServerDeployment } from '../helpers/resource-server.js'
import { call, revokedAtResourceServerWithin, type VouchProcess } from '../helpers/process.js'

const BOUND_MS = 1000

const deployment = (t: Test) => resourceServerDeployment(t)

/** Requests vouch has logged so far. */
const requestsAt = (vouch: VouchProcess) => vouch.output().split('\n').filter((line) => line.includes('"request completed"')).length

const rejectedWithin = (api: VouchProcess, token: string) => revokedAtResourceServerWithin(api, token, BOUND_MS * 3)

const register = async (vouch: VouchProcess, email: string) =>
  (await call(vouch.base, '/auth/register', { body: { email, password: 'resource server' } })).body

t.test('the resource server accepts valid tokens without calling vouch per request', async (t) => {
  const { vouch, api } = await deployment(t)
  const alice = await register(vouch, 'alice@example.com')
  // The first verification fetches vouch's JWKS once; it is cached from then on.
  const warm = requestsAt(vouch)
  t.equal((await call(api.base, '/orders', { token: alice.accessToken })).status, 200)
  await sleep(100)
  t.comment(`the first verification cost vouch ${requestsAt(vouch) - warm} request(s) (the JWKS)`)
  const before = requestsAt(vouch)
  for (let i = 0; i < 50; i++) {
    const res = await call(api.base, '/orders', { token: alice.accessToken })
    t.equal(res.status, 200)
    t.equal(res.body.owner, alice.user.id)
  }
  await sleep(100)
  t.equal(requestsAt(vouch) - before, 0, 'vouch saw no request for 50 verified calls')
  const refused = await call(api.base, '/orders', { token: 'garbage' })
  t.equal(refused.status, 401)
  t.equal(refused.body.code, 'invalid_token')
})

t.test('logout-all, password change and a single-session revoke reach the resource server within 1 s', async (t) => {
  const { vouch, api } = await deployment(t)
  const alice = await register(vouch, 'alice@example.com')
  const bob = await register(vouch, 'bob@example.com')
  const ok = async (token: string) => (await call(api.base, '/orders', { token })).status === 200

  // logout-all
  t.ok(await ok(alice.accessToken))
  t.equal((await call(vouch.base, '/auth/logout-all', { method: 'POST', token: alice.accessToken })).status, 204)
  const afterLogoutAll = await rejectedWithin(api, alice.accessToken)
  t.comment(`logout-all reached the resource server in ${afterLogoutAll.toFixed(1)} ms`)
  t.ok(afterLogoutAll <= BOUND_MS, `logout-all within ${BOUND_MS} ms`)
  t.ok(await ok(bob.accessToken), "another user's token keeps working")

  // password change from one device kills the other
  const phone = (await call(vouch.base, '/auth/login', { body: { email: 'alice@example.com', password: 'resource server' } })).body
  const laptop = (await call(vouch.base, '/auth/login', { body: { email: 'alice@example.com', password: 'resource server' } })).body
  t.ok(await ok(laptop.accessToken))
  const changed = await call(vouch.base, '/auth/password', { body: { currentPassword: 'resource server', newPassword: 'a new passphrase' }, token: phone.accessToken })
  t.equal(changed.status, 200)
  const afterPassword = await rejectedWithin(api, laptop.accessToken)
  t.comment(`a password change reached the resource server in ${afterPassword.toFixed(1)} ms`)
  t.ok(afterPassword <= BOUND_MS, `password change within ${BOUND_MS} ms`)
  t.ok(await ok(changed.body.accessToken), "the changing device's new token is accepted")

  // one session
  const bobTablet = (await call(vouch.base, '/auth/login', { body: { email: 'bob@example.com', password: 'resource server' } })).body
  t.equal((await call(vouch.base, `/auth/sessions/${bobTablet.sessionId}`, { method: 'DELETE', token: bob.accessToken })).status, 204)
  const afterRevoke = await rejectedWithin(api, bobTablet.accessToken)
  t.comment(`a session revoke reached the resource server in ${afterRevoke.toFixed(1)} ms`)
  t.ok(afterRevoke <= BOUND_MS, `session revoke within ${BOUND_MS} ms`)
  t.ok(await ok(bob.accessToken), "the user's other session keeps working")
})
