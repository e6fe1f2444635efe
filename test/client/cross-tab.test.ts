/**
 * The cross-tab algorithm of @vouch/client, run in Node against a real vouch:
 * two clients with `crossTab: true` play two tabs of one origin. They talk
 * through Node's real BroadcastChannel (which connects channels of one name
 * within a process, as a browser does within an origin); Web Locks and
 * localStorage, which Node 20 lacks, are minimal in-process implementations
 * installed on globalThis for the test (a FIFO lock per name; a Map). The
 * browser tests (test/browser/) run the same scenarios in Chromium.
 *
 * The two "tabs" are in cookie mode and share one cookie jar, as tabs share
 * the browser's cookies.
 */
import t, { type Test } from 'tap'
import { createVouchClient, type SignOutReason } from '@vouch/client'
import { browserLikeFetch } from '../helpers/browser-fetch.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { startSdkServer } from '../helpers/sdk.js'

const APP_ORIGIN = 'http://app.localhost:8080'
const TTL = 30

/** Web Locks, reduced to what the client uses: exclusive locks granted in request order. */
function installBrowserShims (t: Test) {
  const g = globalThis as Record<string, unknown>
  const tails = new Map<string, Promise<unknown>>()
  const locks = {
    request<T> (name: string, callback: () => Promise<T>): Promise<T> {
      const granted = (tails.get(name) ?? Promise.resolve()).then(() => callback())
      tails.set(name, granted.catch(() => {}))
      return granted
    },
  }
  const items = new Map<string, string>()
  const localStorage = {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => { items.set(key, String(value)) },
    removeItem: (key: string) => { items.delete(key) },
  }
  const saved = { navigator: Object.getOwnPropertyDescriptor(g, 'navigator'), localStorage: Object.getOwnPropertyDescriptor(g, 'localStorage') }
  Object.defineProperty(g, 'navigator', { value: { locks }, configurable: true, writable: true })
  Object.defineProperty(g, 'localStorage', { value: localStorage, configurable: true, writable: true })
  t.teardown(() => {
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(g, name, descriptor)
      else delete g[name]
    }
  })
  return { items }
}

async function browser (t: Test, env: Record<string, string> = {}, watch = false) {
  const shims = installBrowserShims(t)
  const server = await startSdkServer(t, { env: { COOKIE_ORIGINS: APP_ORIGIN, ACCESS_TOKEN_TTL: String(TTL), ...env } })
  const fetchImpl = browserLikeFetch(APP_ORIGIN).fetch // one cookie jar for all tabs
  const tab = () => {
    const vouch = createVouchClient({
      baseUrl: server.base, mode: 'cookie', crossTab: true, watch, fetch: fetchImpl, now: watch ? Date.now : () => server.clock.now().getTime(),
    })
    t.teardown(() => vouch.close())
    const reasons: SignOutReason[] = []
    vouch.on('signedOut', ({ reason }) => reasons.push(reason))
    return { vouch, reasons }
  }
  return { server, tab, shims }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

async function signedInTabs (t: Test, env?: Record<string, string>, watch = false) {
  const setup = await browser(t, env, watch)
  const a = setup.tab()
  const email = uniqueEmail('tabs')
  await a.vouch.register({ email, password: PASSWORD })
  const b = setup.tab()
  t.equal(await b.vouch.restore(), true, 'the second tab restores the session through the shared cookie')
  await settle()
  return { ...setup, a, b, email }
}

t.test('two tabs with an expired access token call at the same instant: one refresh reaches vouch, both keep working, nobody is signed out', async (t) => {
  const { server, a, b } = await signedInTabs(t)
  t.equal(a.vouch.session!.accessToken, b.vouch.session!.accessToken, 'the first tab took the token the second one got')
  const refreshesBefore = server.requests('POST /auth/refresh')

  server.clock.advance(TTL + 10)
  const calls = [...Array.from({ length: 25 }, () => a.vouch.me()), ...Array.from({ length: 25 }, () => b.vouch.me())]
  const profiles = await Promise.all(calls)

  t.equal(new Set(profiles.map((p) => p.id)).size, 1, 'all 50 calls answered, for the user')
  t.equal(server.requests('POST /auth/refresh') - refreshesBefore, 1, 'exactly one refresh reached vouch for both tabs')
  await settle()
  t.equal(a.vouch.session!.accessToken, b.vouch.session!.accessToken, 'both tabs hold the new token')
  t.same([a.reasons, b.reasons], [[], []], 'nobody signed out')
})

t.test('tabs that refresh one after another each use the newest cookie: no replay, however often', async (t) => {
  const { server, a, b } = await signedInTabs(t, { REFRESH_REUSE_GRACE: '0' })
  for (let i = 0; i < 5; i++) {
    server.clock.advance(TTL + 10)
    await (i % 2 === 0 ? a : b).vouch.me()
    await settle()
  }
  t.same([a.reasons, b.reasons], [[], []])
  t.ok((await b.vouch.me()).id)
})

t.test('signing out in one tab signs out the other, with the same reason', async (t) => {
  const { a, b } = await signedInTabs(t)
  await a.vouch.logout()
  await settle()
  t.same(a.reasons, ['logout'])
  t.same(b.reasons, ['logout'], 'the other tab heard it')
  t.notOk(b.vouch.isSignedIn)
})

t.test('a password change in one tab keeps the other tab signed in, with the new tokens', async (t) => {
  const { a, b } = await signedInTabs(t)
  const refreshed: string[] = []
  b.vouch.on('refreshed', ({ session }) => refreshed.push(session.accessToken))
  await a.vouch.changePassword({ currentPassword: PASSWORD, newPassword: 'another long passphrase' })
  await settle()
  t.equal(refreshed.length, 1, 'the other tab got the re-keyed tokens')
  t.equal(b.vouch.session!.accessToken, a.vouch.session!.accessToken)
  t.ok((await b.vouch.me()).id, 'and they work')
  t.same([a.reasons, b.reasons], [[], []])
})

t.test('a tab opened while another refreshes takes its tokens instead of refreshing again', async (t) => {
  const { server, a, tab } = await signedInTabs(t)
  server.clock.advance(TTL + 10)
  const before = server.requests('POST /auth/refresh')
  // Tab A's refresh is under way (it holds the lock) when tab C opens and restores.
  const call = a.vouch.me()
  const c = tab()
  const [restored] = await Promise.all([c.vouch.restore(), call])
  t.equal(restored, true)
  t.equal(server.requests('POST /auth/refresh') - before, 1, "tab C sent nothing: it waited for the lock and took A's new tokens")
  t.equal(c.vouch.session!.accessToken, a.vouch.session!.accessToken)
})

async function until (condition: () => boolean, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; !condition();) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return true
}

t.test('one tab watches for the browser: revoked from another device, every tab signs out (revoked) within seconds', async (t) => {
  const { server, a, b, email } = await signedInTabs(t, {}, true)
  t.ok(await until(() => server.requests('GET /auth/session/watch') >= 1), 'a stream is open')
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(server.requests('GET /auth/session/watch'), 1, 'one stream for two tabs: the holder of the watch lock')
  const laptop = createVouchClient({ baseUrl: server.base, watch: false })
  t.teardown(() => laptop.close())
  await laptop.login({ email, password: PASSWORD })
  await laptop.revokeSession(a.vouch.session!.sessionId)
  t.ok(await until(() => a.reasons.length > 0 && b.reasons.length > 0), 'both tabs signed out')
  t.same([a.reasons, b.reasons], [['revoked'], ['revoked']])
})

t.test('a password change in the tab that does not watch: the watching tab takes its new tokens before judging the version event, and nobody is signed out', async (t) => {
  const { server, a, b } = await signedInTabs(t, {}, true)
  t.ok(await until(() => server.requests('GET /auth/session/watch') >= 1))
  await new Promise((resolve) => setTimeout(resolve, 300))
  const opened = server.requests('GET /auth/session/watch')
  // Tab A holds the watch lock (it was created first); tab B changes the password.
  await b.vouch.changePassword({ currentPassword: PASSWORD, newPassword: 'yet another passphrase' })
  t.ok(await until(() => server.requests('GET /auth/session/watch') > opened), "the watching tab saw the version event and reconnected")
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same([a.reasons, b.reasons], [[], []], 'nobody signed out')
  t.equal(a.vouch.session!.accessToken, b.vouch.session!.accessToken)
  t.ok((await a.vouch.me()).id)
})
