/**
 * Every storage adapter keeps the same contract: nothing at first, what was
 * set comes back (a copy, not the caller's object), a second set replaces
 * the first, clear forgets. The Web Storage adapters are checked against a
 * minimal Storage implementation installed as globalThis.localStorage and
 * sessionStorage, since Node 20 has no Web Storage; the browser tests run
 * them on the real thing. A custom adapter, sync or async, is held to the
 * same contract.
 */
import t, { type Test } from 'tap'
import {
  DEFAULT_STORAGE_KEY, localStorageAdapter, memoryStorage, parseStoredTokens, sessionStorageAdapter, webStorageAdapter,
  type StoredTokens, type TokenStorage,
} from '../src/storage.js'

/** The part of the Web Storage interface the adapters use, plus what a Storage has (length, key, clear). */
class MinimalStorage {
  readonly #items = new Map<string, string>()
  get length () { return this.#items.size }
  key (index: number) { return [...this.#items.keys()][index] ?? null }
  getItem (key: string) { return this.#items.get(key) ?? null }
  setItem (key: string, value: string) { this.#items.set(key, String(value)) }
  removeItem (key: string) { this.#items.delete(key) }
  clear () { this.#items.clear() }
}

const tokens = (n: number): StoredTokens => ({
  accessToken: `access-${n}`, expiresAt: 1_000_000 + n, refreshToken: `refresh-${n}`, refreshExpiresAt: 2_000_000 + n, sessionId: `session-${n}`,
})

async function contract (t: Test, storage: TokenStorage) {
  t.equal(await storage.get(), null, 'nothing at first')
  const first = tokens(1)
  await storage.set(first)
  t.same(await storage.get(), first, 'what was set comes back')
  first.accessToken = 'changed by the caller afterwards'
  t.equal((await storage.get())?.accessToken, 'access-1', 'a copy was kept, not the caller\'s object')
  const read = await storage.get()
  read!.refreshToken = 'changed by a reader'
  t.equal((await storage.get())?.refreshToken, 'refresh-1', 'a read is a copy too')
  await storage.set(tokens(2))
  t.same(await storage.get(), tokens(2), 'a second set replaces the first')
  await storage.set({ ...tokens(3), gen: '4.ab' })
  t.same(await storage.get(), { ...tokens(3), gen: '4.ab' }, 'the generation mark is kept')
  await storage.clear()
  t.equal(await storage.get(), null, 'clear forgets')
  await storage.clear()
  t.equal(await storage.get(), null, 'clearing twice is fine')
}

function installArea (t: Test, name: 'localStorage' | 'sessionStorage') {
  const area = new MinimalStorage()
  const g = globalThis as Record<string, unknown>
  const before = Object.getOwnPropertyDescriptor(g, name)
  Object.defineProperty(g, name, { value: area, configurable: true, writable: true })
  t.teardown(() => {
    if (before) Object.defineProperty(g, name, before)
    else delete g[name]
  })
  return area
}

t.test('memoryStorage keeps the contract', (t) => contract(t, memoryStorage()))

t.test('each memoryStorage is its own', async (t) => {
  const a = memoryStorage()
  const b = memoryStorage()
  a.set(tokens(1))
  t.equal(b.get(), null)
})

for (const [name, adapter] of [['localStorage', localStorageAdapter], ['sessionStorage', sessionStorageAdapter]] as const) {
  t.test(`${name}Adapter keeps the contract, as JSON under its key`, async (t) => {
    const area = installArea(t, name)
    await contract(t, adapter())
    adapter().set(tokens(5))
    t.same(JSON.parse(area.getItem(DEFAULT_STORAGE_KEY)!), tokens(5), `stored under ${DEFAULT_STORAGE_KEY}`)
    adapter('app:vouch').set(tokens(6))
    t.same(JSON.parse(area.getItem('app:vouch')!), tokens(6), 'or under the key given')
    t.same(adapter().get(), tokens(5), 'keys do not interfere')
  })

  t.test(`${name}Adapter reads anything that is not its tokens as none`, async (t) => {
    const area = installArea(t, name)
    const storage = adapter()
    for (const raw of ['not json', 'null', '42', '"text"', '{}', JSON.stringify({ ...tokens(1), expiresAt: 'soon' }),
      JSON.stringify({ ...tokens(1), refreshToken: 7 }), JSON.stringify({ ...tokens(1), accessToken: '' })]) {
      area.setItem(DEFAULT_STORAGE_KEY, raw)
      t.equal(storage.get(), null, raw)
    }
  })

  t.test(`${name}Adapter looks the area up when used, and says so when there is none`, async (t) => {
    const storage = adapter()
    t.throws(() => storage.get(), new TypeError(`${name} is not available in this environment`))
    installArea(t, name)
    t.equal(storage.get(), null, 'created before the area existed, it works once it does')
  })
}

t.test('localStorage and sessionStorage adapters use their own areas', async (t) => {
  const local = installArea(t, 'localStorage')
  const session = installArea(t, 'sessionStorage')
  localStorageAdapter().set(tokens(1))
  t.equal(session.getItem(DEFAULT_STORAGE_KEY), null)
  t.ok(local.getItem(DEFAULT_STORAGE_KEY))
})

t.test('webStorageAdapter works over any Storage-like area', (t) => {
  const area = new MinimalStorage()
  return contract(t, webStorageAdapter(() => area))
})

t.test('a custom synchronous adapter keeps the contract', (t) => {
  let raw: string | undefined
  return contract(t, {
    get: () => raw === undefined ? null : parseStoredTokens(JSON.parse(raw)),
    set: (value) => { raw = JSON.stringify(value) },
    clear: () => { raw = undefined },
  })
})

t.test('a custom asynchronous adapter keeps the contract', (t) => {
  const kv = new Map<string, string>()
  const later = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), 1))
  return contract(t, {
    get: async () => { const raw = await later(kv.get('vouch')); return raw === undefined ? null : parseStoredTokens(JSON.parse(raw)) },
    set: async (value) => { await later(null); kv.set('vouch', JSON.stringify(value)) },
    clear: async () => { await later(null); kv.delete('vouch') },
  })
})

t.test('parseStoredTokens keeps only the known fields', async (t) => {
  t.same(parseStoredTokens({ ...tokens(1), extra: 'x' }), tokens(1))
  const { refreshToken: _r, ...cookieShape } = tokens(1)
  t.same(parseStoredTokens(cookieShape), cookieShape, 'no refresh token (cookie mode) is a valid shape')
})
