/**
 * MAX_SESSIONS_PER_USER across processes: the session a sign-in beyond the
 * limit revokes dies at a resource server using @vouch/verifier (through the
 * revocation feed) within a second, like any revoked session, while the
 * sessions that stay keep working there.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { resourceServerDeployment } from '../helpers/resource-server.js'
import { call, revokedAtResourceServerWithin, type VouchProcess } from '../helpers/process.js'

const BOUND_MS = 1000
const CREDENTIALS = { email: 'alice@example.com', password: 'resource server' }

const rejectedWithin = (api: VouchProcess, token: string) => revokedAtResourceServerWithin(api, token, BOUND_MS * 3)

t.test('with a limit of 3, the session a fourth sign-in revokes is refused by a resource server within 1 s', async (t) => {
  const { vouch, api } = await resourceServerDeployment(t, { LOG_LEVEL: 'warn', MAX_SESSIONS_PER_USER: '3' })
  const ok = async (token: string) => (await call(api.base, '/orders', { token })).status === 200

  const first = (await call(vouch.base, '/auth/register', { body: CREDENTIALS })).body
  const others = []
  for (let i = 0; i < 2; i++) {
    await sleep(20) // distinct lastUsedAt: the registration's session is the least recently used
    others.push((await call(vouch.base, '/auth/login', { body: CREDENTIALS })).body)
  }
  t.ok(await ok(first.accessToken), 'the first session is accepted at the resource server')

  await sleep(20)
  const fourth = await call(vouch.base, '/auth/login', { body: CREDENTIALS })
  t.equal(fourth.status, 200)
  const after = await rejectedWithin(api, first.accessToken)
  t.comment(`the limit's revocation reached the resource server in ${after.toFixed(1)} ms`)
  t.ok(after <= BOUND_MS, `refused at the resource server within ${BOUND_MS} ms`)
  t.equal((await call(vouch.base, '/auth/me', { token: first.accessToken })).body.code, 'token_revoked', 'and at vouch')
  t.equal((await call(vouch.base, '/auth/refresh', { body: { refreshToken: first.refreshToken } })).body.code, 'refresh_token_invalid')
  for (const pair of [...others, fourth.body]) t.ok(await ok(pair.accessToken), 'a session within the limit keeps working')
})
