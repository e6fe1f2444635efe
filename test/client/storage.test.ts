/**
 * Bearer mode's storage round trip with a real vouch: what one client stored
 * is picked up by the next one over the same storage (a page reload, an app
 * restart), and every refresh is written back, so that a restart never
 * revives a superseded refresh token (which, presented after the grace
 * window, would end the session as a replay). Checked with an asynchronous
 * custom adapter and with the localStorage adapter (over a minimal Storage
 * installed as globalThis.localStorage, since Node 20 has none).
 */
import t, { type Test } from 'tap'
import { createVouchClient, localStorageAdapter, type StoredTokens, type TokenStorage } from '@vouch/client'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { inspectableStorage, startSdkServer } from '../helpers/sdk.js'

class MinimalStorage {
  readonly items = new Map<string, string>()
  getItem (key: string) { return this.items.get(key) ?? null }
  setItem (key: string, value: string) { this.items.set(key, String(value)) }
  removeItem (key: string) { this.items.delete(key) }
}

async function roundTrip (t: Test, storage: TokenStorage, peek: () => Promise<StoredTokens | null>) {
  const server = await startSdkServer(t, { env: { REFRESH_REUSE_GRACE: '0' } })
  const open = () => {
    const vouch = createVouchClient({ baseUrl: server.base, storage, watch: false, now: () => server.clock.now().getTime() })
    t.teardown(() => vouch.close())
    return vouch
  }
  const email = uniqueEmail('stored')
  const first = open()
  t.equal(await first.restore(), false, 'nothing stored yet: signed out')
  await first.register({ email, password: PASSWORD })
  const stored = await peek()
  t.equal(stored?.sessionId, first.session!.sessionId, 'the session was stored')
  t.ok(stored?.refreshToken, 'with its refresh token (bearer mode)')
  first.close()

  const second = open()
  t.equal(await second.restore(), true, 'the next client picks it up')
  t.equal(second.session!.sessionId, stored!.sessionId)
  t.equal((await second.me()).email, email, 'and can use it')
  await second.refresh()
  const rotated = await peek()
  t.not(rotated?.refreshToken, stored?.refreshToken, 'the rotated refresh token was written back')
  second.close()

  // Past the grace window: a superseded token would now be a replay.
  server.clock.advance(5)
  const third = open()
  t.equal((await third.me()).email, email, 'a third client (restored by itself on its first call) refreshes with the current token')
  await third.refresh()
  t.ok(third.isSignedIn, 'no replay: still signed in')
  t.equal(server.requests('POST /auth/refresh'), 2)
  await third.logout()
  t.equal(await peek(), null, 'logout clears storage')
  const fourth = open()
  t.equal(await fourth.restore(), false)
}

t.test('an asynchronous custom adapter: stored, restored, rotated, cleared', async (t) => {
  const storage = inspectableStorage()
  await roundTrip(t, storage, async () => storage.held as StoredTokens | null)
})

t.test('localStorageAdapter: the same round trip, as JSON under its key', async (t) => {
  const area = new MinimalStorage()
  const g = globalThis as { localStorage?: unknown }
  g.localStorage = area
  t.teardown(() => { delete g.localStorage })
  await roundTrip(t, localStorageAdapter('app:vouch'), async () => {
    const raw = area.getItem('app:vouch')
    return raw === null ? null : JSON.parse(raw)
  })
})

t.test('what storage holds that cannot be used is treated as signed out, not as an error', async (t) => {
  const server = await startSdkServer(t)
  const custom = createVouchClient({
    baseUrl: server.base,
    watch: false,
    storage: { get: () => JSON.parse('{"accessToken":1}') as StoredTokens, set: () => {}, clear: () => {} },
  })
  t.teardown(() => custom.close())
  t.equal(await custom.restore(), false, "a custom adapter's junk")
  const area = new MinimalStorage()
  area.setItem('vouch:tokens', '{"not":"tokens"}')
  ;(globalThis as { localStorage?: unknown }).localStorage = area
  t.teardown(() => { delete (globalThis as { localStorage?: unknown }).localStorage })
  const builtIn = createVouchClient({ baseUrl: server.base, watch: false, storage: localStorageAdapter() })
  t.teardown(() => builtIn.close())
  t.equal(await builtIn.restore(), false, "another app's data under the key")
})
