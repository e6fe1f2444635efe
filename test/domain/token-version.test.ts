/**
 * The one home of sign-out everywhere (src/domain/token-version.ts): a bump
 * is announced to the session cache (and so to the other instances and the
 * revocation feed) only once it committed, never for a transaction that
 * rolled back, and never for a bump whose conditions did not hold.
 */
import t, { type Test } from 'tap'
import { createTestDatabase } from '../helpers/app.js'
import { createSessionCache, type Invalidation, type InvalidationBus } from '../../src/domain/session-cache.js'
import { createSecurityEvents } from '../../src/domain/security-events.js'
import { createTokenVersions } from '../../src/domain/token-version.js'

async function setup (t: Test) {
  const { db } = await createTestDatabase(t)
  const published: Invalidation[] = []
  const bus: InvalidationBus = {
    publish: (event) => { published.push(event) },
    subscribe () {},
    healthy: true,
    onReconnect () {},
    close: async () => {},
  }
  const cache = createSessionCache({ ttlMs: 5000, maxEntries: 100, maxBytes: 1_000_000 }, bus)
  const versions = createTokenVersions({ db, cache, events: createSecurityEvents() })
  const user = await db.user.create({ data: { email: 'a@example.com', passwordHash: 'x' } })
  const version = async () => (await db.user.findUniqueOrThrow({ where: { id: user.id } })).tokenVersion
  return { db, versions, userId: user.id, published, version }
}

t.test('a bump returns the new version and is announced to the other instances', async (t) => {
  const { versions, userId, published, version } = await setup(t)
  t.equal(await versions.bump(userId), 1)
  t.equal(await version(), 1)
  t.same(published, [{ kind: 'user', id: userId }])
})

t.test('a bump whose conditions do not hold changes nothing and announces nothing', async (t) => {
  const { versions, userId, published, version } = await setup(t)
  t.equal(await versions.bump(userId, { expectedVersion: 7 }), null)
  t.equal(await versions.bump(userId, { where: { passwordHash: 'other' } }), null)
  t.equal(await version(), 0)
  t.same(published, [])
})

t.test('a bump in a transaction is announced after the commit, and not at all when it rolls back', async (t) => {
  const { versions, userId, published, version } = await setup(t)
  const result = await versions.transaction(async (_tx, bump) => {
    const bumped = await bump(userId, { expectedVersion: 0, data: { passwordHash: 'new' } })
    t.same(published, [], 'nothing announced before the commit')
    return bumped
  })
  t.equal(result, 1)
  t.same(published, [{ kind: 'user', id: userId }], 'announced once committed')

  await t.rejects(versions.transaction(async (_tx, bump) => {
    await bump(userId)
    throw new Error('rolled back')
  }), /rolled back/)
  t.equal(await version(), 1, 'the rolled-back bump left no trace')
  t.equal(published.length, 1, 'and was not announced')
})
