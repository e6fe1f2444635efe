/**
 * Disabling an account through the admin API of one instance ends its
 * tokens on every instance: a second instance that had them cached refuses
 * them within the revocation bound, over Redis pub/sub or PostgreSQL
 * LISTEN/NOTIFY (on SQLite without Redis, within the cache TTL), and no
 * instance lets the account sign in or refresh.
 */
import t from 'tap'
import { randomSecret } from '../../src/crypto/secrets.js'
import { BUS_VARIANTS, rejectedBy, twoInstances, within } from '../helpers/instances.js'
import { call } from '../helpers/process.js'
import { requireServicesOf } from '../helpers/services.js'

const ADMIN = { id: 'ops', secret: randomSecret() }
const admin = { authorization: `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}` }

for (const variant of BUS_VARIANTS) {
  t.test(`${variant.name}: an account disabled on A has its tokens refused by B within ${variant.boundMs} ms, and cannot sign in or refresh anywhere`, async (t) => {
    if (!await requireServicesOf(t, variant.env)) return
    const [a, b] = await twoInstances(t, { ...variant.env, ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}` })
    const credentials = { email: 'disabled@example.com', password: 'two instances' }
    const phone = (await call(a.base, '/auth/register', { body: credentials })).body
    const laptop = (await call(b.base, '/auth/login', { body: credentials })).body
    const other = (await call(b.base, '/auth/register', { body: { email: 'other@example.com', password: 'two instances' } })).body

    for (const instance of [a, b, b]) {
      for (const pair of [phone, laptop]) {
        t.equal((await call(instance.base, '/auth/me', { token: pair.accessToken })).status, 200, 'accepted (and cached) by both')
      }
    }
    const res = await call(a.base, `/admin/users/${phone.user.id}/disable`, { method: 'POST', headers: admin })
    t.equal(res.status, 204)
    const elapsed = await within(variant.boundMs, async () =>
      await rejectedBy(b, phone.accessToken)() && await rejectedBy(b, laptop.accessToken)())
    t.comment(`B refused both tokens ${elapsed.toFixed(1)} ms after A answered the disable`)
    t.ok(elapsed <= variant.boundMs, `by B within ${variant.boundMs} ms (took ${elapsed.toFixed(1)} ms)`)
    for (const pair of [phone, laptop]) {
      t.equal((await call(a.base, '/auth/me', { token: pair.accessToken })).body.code, 'token_revoked', 'and by A')
    }
    for (const instance of [a, b]) {
      for (const pair of [phone, laptop]) {
        const refreshed = await call(instance.base, '/auth/refresh', { body: { refreshToken: pair.refreshToken } })
        t.equal(refreshed.status, 401)
        t.equal(refreshed.body.code, 'refresh_token_invalid', 'its refresh tokens are refused')
      }
      const signIn = await call(instance.base, '/auth/login', { body: credentials })
      t.equal(signIn.status, 401)
      t.equal(signIn.body.code, 'invalid_credentials', 'and it cannot sign in')
    }
    t.equal((await call(b.base, '/auth/me', { token: other.accessToken })).status, 200, "another user's token is unaffected")
  })
}
