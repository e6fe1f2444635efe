/** The revocation cache's own rules, with a hand-driven bus and clock. */
import t from 'tap'
import { createSessionCache, entryBytes, type Invalidation, type InvalidationBus, type SessionState } from '../../src/domain/session-cache.js'

function fakeBus () {
  let handler: (event: Invalidation) => void = () => {}
  const reconnects: Array<() => void> = []
  const published: Invalidation[] = []
  const bus: InvalidationBus & { healthy: boolean } = {
    healthy: true,
    publish: (event) => { published.push(event) },
    subscribe: (h) => { handler = h },
    onReconnect: (h) => { reconnects.push(h) },
    close: async () => {},
  }
  return { bus, published, deliver: (event: Invalidation) => handler(event), reconnect: () => reconnects.forEach((h) => h()) }
}

const state = (userId: string, extra: Partial<SessionState> = {}): SessionState => ({
  userId, tokenVersion: 0, userVersion: 0, revokedAt: null, lastUsedAt: new Date(), expiresAt: new Date(Date.now() + 3600_000),
  user: { id: userId, email: `${userId}@example.com`, createdAt: new Date(0) }, ...extra,
})

function setup (settings = { ttlMs: 5000, maxEntries: 100, maxBytes: 1 << 22 }) {
  let now = 0
  const fake = fakeBus()
  const cache = createSessionCache(settings, fake.bus, () => now)
  let loads = 0
  const load = (value: SessionState | null) => async () => { loads += 1; return value }
  return { cache, fake, load, loads: () => loads, advance: (ms: number) => { now += ms } }
}

t.test('a read is cached until the TTL runs out', async (t) => {
  const { cache, load, loads, advance } = setup()
  await cache.read('s1', load(state('u1')))
  await cache.read('s1', load(state('u1')))
  t.equal(loads(), 1, 'second read served from the cache')
  advance(4999)
  await cache.read('s1', load(state('u1')))
  t.equal(loads(), 1)
  advance(1)
  await cache.read('s1', load(state('u1')))
  t.equal(loads(), 2, 'expired after the TTL')
})

t.test('a missing session is never cached', async (t) => {
  const { cache, load, loads } = setup()
  t.equal(await cache.read('gone', load(null)), null)
  await cache.read('gone', load(null))
  t.equal(loads(), 2)
})

t.test("this instance's own change drops the entries at once and tells the others", async (t) => {
  const { cache, fake, load, loads } = setup()
  await cache.read('s1', load(state('u1')))
  await cache.read('s2', load(state('u1')))
  await cache.read('s3', load(state('u2')))
  cache.userChanged('u1')
  t.same(fake.published, [{ kind: 'user', id: 'u1' }])
  t.equal(cache.get('s1'), undefined)
  t.equal(cache.get('s2'), undefined)
  t.ok(cache.get('s3'), "another user's session stays")
  cache.sessionChanged('s3')
  t.equal(cache.get('s3'), undefined)
  t.same(fake.published.at(-1), { kind: 'session', id: 's3' })
  await cache.read('s4', load(state('u3')))
  cache.sessionTouched('s4')
  t.equal(cache.get('s4'), undefined, 'a refreshed session is dropped locally')
  t.equal(fake.published.length, 2, 'but not broadcast')
  t.equal(loads(), 4)
})

t.test("another instance's invalidation drops the entries", async (t) => {
  const { cache, fake, load } = setup()
  await cache.read('s1', load(state('u1')))
  await cache.read('s2', load(state('u2')))
  fake.deliver({ kind: 'user', id: 'u1' })
  t.equal(cache.get('s1'), undefined)
  fake.deliver({ kind: 'session', id: 's2' })
  t.equal(cache.get('s2'), undefined)
})

t.test('a read that overlapped an invalidation is used but not cached', async (t) => {
  const { cache, fake } = setup()
  let finish!: (value: SessionState) => void
  const pending = cache.read('s1', () => new Promise((resolve) => { finish = resolve }))
  fake.deliver({ kind: 'user', id: 'u1' })
  finish(state('u1'))
  t.ok(await pending, 'the reader gets its result')
  t.equal(cache.get('s1'), undefined, 'but the possibly stale value is not kept')
})

t.test('nothing is trusted while the bus is down, and the cache is emptied when it returns', async (t) => {
  const { cache, fake, load, loads } = setup()
  await cache.read('s1', load(state('u1')))
  fake.bus.healthy = false
  t.equal(cache.get('s1'), undefined)
  await cache.read('s1', load(state('u1')))
  t.equal(loads(), 2, 'read from the database while the bus is down')
  fake.bus.healthy = true
  fake.reconnect()
  t.equal(cache.size, 0, 'emptied on reconnect: messages may have been missed')
})

t.test('a TTL of 0 turns the cache off', async (t) => {
  const { cache, load, loads } = setup({ ttlMs: 0, maxEntries: 100, maxBytes: 1 << 22 })
  await cache.read('s1', load(state('u1')))
  await cache.read('s1', load(state('u1')))
  t.equal(loads(), 2)
  t.equal(cache.size, 0)
})

t.test('memory is bounded: the oldest entries are evicted first', async (t) => {
  const { cache, load } = setup({ ttlMs: 5000, maxEntries: 3, maxBytes: 1 << 22 })
  for (const id of ['s1', 's2', 's3', 's4']) await cache.read(id, load(state(`user-of-${id}`)))
  t.equal(cache.size, 3)
  t.equal(cache.get('s1'), undefined, 'the oldest went')
  t.ok(cache.get('s4'))
})

t.test('memory is bounded in bytes as well: long emails take more room, the oldest go first', async (t) => {
  const short = entryBytes('s1', state('u1'))
  const { cache, load } = setup({ ttlMs: 5000, maxEntries: 1000, maxBytes: 3 * short })
  for (const id of ['s1', 's2', 's3']) await cache.read(id, load(state('u1')))
  t.equal(cache.size, 3)
  t.equal(cache.bytes, 3 * short)
  const long = state('u1', { user: { id: 'u1', email: `${'x'.repeat(200)}@example.com`, createdAt: new Date(0) } })
  await cache.read('s4', load(long))
  t.ok(cache.bytes <= 3 * short, `bytes ${cache.bytes} within the bound ${3 * short}`)
  t.equal(cache.get('s1'), undefined, 'the oldest went to make room')
  t.ok(cache.get('s4'), 'the new entry is held')
  const huge = state('u2', { user: { id: 'u2', email: `${'y'.repeat(10 * short)}@example.com`, createdAt: new Date(0) } })
  await cache.read('s5', load(huge))
  t.equal(cache.get('s5'), undefined, 'an entry larger than the whole bound is not cached')
  t.ok(cache.get('s4'), 'and evicts nothing')
  cache.userChanged('u1')
  t.equal(cache.bytes, 0, 'dropping entries gives their bytes back')
})
