/**
 * Issue 11, must-show 2: a cached `GET /auth/me` profile changes when the
 * user's data changes, on the instance that made the change and on another.
 * The change here is account deletion: two vouch processes share one
 * database and an invalidation bus, both answer /auth/me for the user
 * several times (warming whatever they cache: the token check today, the
 * profile too once it is cached), the account is deleted through A; A must
 * refuse at once, B within the bus's delivery bound, and neither may ever
 * hand out the old profile after that.
 *
 * The cache TTL is set far beyond the bound, so only the bus can explain B's
 * answer.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TEST_PROVIDER } from '../helpers/app.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { REDIS_URL, twoInstances } from '../helpers/instances.js'
import { call, type JsonResponse, type VouchProcess } from '../helpers/process.js'
import { requireServicesOf } from '../helpers/services.js'

const BOUND_MS = 1000
const WARM_CALLS = 5
const LONG_TTL = { REVOCATION_CACHE_TTL: '60' }

const buses: Array<{ name: string, env: Record<string, string> }> = [
  { name: 'Redis pub/sub', env: { REDIS_URL, ...LONG_TTL } },
  ...TEST_PROVIDER === 'postgresql' ? [{ name: 'PostgreSQL LISTEN/NOTIFY', env: { ...LONG_TTL } }] : [],
]

const me = (instance: VouchProcess, token: string) => call(instance.base, '/auth/me', { token })
const revoked = (res: JsonResponse) => res.status === 401 && res.body?.code === 'token_revoked'

for (const bus of buses) {
  t.test(`${bus.name}: a cached /auth/me profile is gone after account deletion, at once on A and within ${BOUND_MS} ms on B`, async (t) => {
    if (!await requireServicesOf(t, bus.env)) return
    const [a, b] = await twoInstances(t, bus.env)
    const email = uniqueEmail('profile')
    const registered = (await call(a.base, '/auth/register', { body: { email, password: PASSWORD } })).body
    // A second device, signed in through B: a profile cached per user must go too, not only per session.
    const other = (await call(b.base, '/auth/login', { body: { email, password: PASSWORD } })).body
    const profile = { id: registered.user.id, email, createdAt: registered.user.createdAt }
    const tokens = [registered.accessToken, other.accessToken] as string[]

    for (let i = 0; i < WARM_CALLS; i++) {
      for (const instance of [a, b]) {
        for (const token of tokens) {
          const res = await me(instance, token)
          t.equal(res.status, 200, 'the profile is served before deletion')
          t.same(res.body, profile, 'and it is the profile')
        }
      }
    }

    const deleted = await call(a.base, '/auth/account', { method: 'DELETE', body: { password: PASSWORD }, token: registered.accessToken })
    t.equal(deleted.status, 204, 'the account is deleted through A')

    // A made the change: exact at once, for either token.
    for (const token of tokens) {
      const res = await me(a, token)
      t.ok(revoked(res), `A refuses at once (${res.status} ${res.body?.code})`)
    }

    // B hears of it through the bus: poll, bounded; until then only the old profile may appear.
    const start = performance.now()
    let refusedAfter = Infinity
    while (performance.now() - start < BOUND_MS * 3) {
      const answers = await Promise.all(tokens.map((token) => me(b, token)))
      for (const res of answers) {
        if (res.status === 200) t.same(res.body, profile, 'before B hears of the deletion it may only serve the profile it had')
      }
      if (answers.every(revoked)) {
        refusedAfter = performance.now() - start
        break
      }
      await sleep(10)
    }
    t.comment(`B refused both tokens ${refusedAfter.toFixed(1)} ms after A answered the deletion`)
    t.ok(refusedAfter <= BOUND_MS, `B refuses within ${BOUND_MS} ms (took ${refusedAfter.toFixed(1)} ms)`)

    // And never the old profile again, on either instance.
    for (let i = 0; i < WARM_CALLS; i++) {
      for (const instance of [a, b]) {
        for (const token of tokens) {
          const res = await me(instance, token)
          t.ok(revoked(res), `no profile after deletion (${instance === a ? 'A' : 'B'}: ${res.status} ${res.body?.code})`)
        }
      }
    }
  })
}
