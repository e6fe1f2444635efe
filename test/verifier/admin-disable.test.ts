/**
 * Disabling an account through the admin API reaches resource servers: its
 * access tokens, which a resource server using @vouch/verifier had been
 * accepting, are refused there within a second (the revocation feed carries
 * the version bump), while other users' tokens keep working.
 */
import t from 'tap'
import { randomSecret } from '../../src/crypto/secrets.js'
import { resourceServerDeployment } from '../helpers/resource-server.js'
import { call, revokedAtResourceServerWithin } from '../helpers/process.js'

const BOUND_MS = 1000
const ADMIN = { id: 'ops', secret: randomSecret() }
const admin = { authorization: `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}` }
const CREDENTIALS = { email: 'alice@example.com', password: 'resource server' }

t.test("a disabled account's access tokens are refused by a resource server within 1 s, and its refresh tokens by vouch", async (t) => {
  const { vouch, api } = await resourceServerDeployment(t, { LOG_LEVEL: 'warn', ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}` })
  const ok = async (token: string) => (await call(api.base, '/orders', { token })).status === 200

  const phone = (await call(vouch.base, '/auth/register', { body: CREDENTIALS })).body
  const laptop = (await call(vouch.base, '/auth/login', { body: CREDENTIALS })).body
  const other = (await call(vouch.base, '/auth/register', { body: { email: 'bob@example.com', password: 'resource server' } })).body
  for (const pair of [phone, laptop, other]) t.ok(await ok(pair.accessToken), 'accepted at the resource server')

  t.equal((await call(vouch.base, `/admin/users/${phone.user.id}/disable`, { method: 'POST', headers: admin })).status, 204)
  for (const pair of [phone, laptop]) {
    const after = await revokedAtResourceServerWithin(api, pair.accessToken, BOUND_MS * 3)
    t.comment(`the disable reached the resource server in ${after.toFixed(1)} ms`)
    t.ok(after <= BOUND_MS, `refused at the resource server within ${BOUND_MS} ms`)
    t.equal((await call(vouch.base, '/auth/me', { token: pair.accessToken })).body.code, 'token_revoked', 'and at vouch')
    t.equal((await call(vouch.base, '/auth/refresh', { body: { refreshToken: pair.refreshToken } })).body.code, 'refresh_token_invalid')
  }
  t.equal((await call(vouch.base, '/auth/login', { body: CREDENTIALS })).body.code, 'invalid_credentials', 'no new session either')
  t.ok(await ok(other.accessToken), "another user's token keeps working at the resource server")
})
