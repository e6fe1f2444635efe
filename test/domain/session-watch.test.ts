/**
 * The session watch cannot miss a revocation that lands between the check
 * of a page's token (request authentication) and the start of its watch:
 * whether other pages were being watched (the revocation was heard and is
 * remembered) or none were (the feed's backlog is read as following
 * starts). Domain services on a real database; no HTTP.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createTestDomain } from '../helpers/app.js'
import type { Domain } from '../../src/domain/index.js'
import type { RevocationBatch } from '../../src/domain/revocation-feed.js'
import type { WatchEnd, WatchedToken } from '../../src/domain/session-watch.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'

/** A user with two sessions, each as a checked token would be watched. */
async function twoSessions (domain: Domain) {
  const account = await domain.accounts.register(uniqueEmail(), PASSWORD)
  const tokens: WatchedToken[] = []
  for (const device of ['phone', 'laptop']) {
    const pair = await domain.sessions.start(account, { deviceName: device })
    const principal = await domain.sessions.authenticate(pair.accessToken)
    tokens.push({ ...principal, expiresAt: Math.floor(Date.now() / 1000) + 3600 })
  }
  return tokens as [WatchedToken, WatchedToken]
}

/** Watches `token`; resolves with how the watch ended. */
function watch (t: Test, domain: Domain, token: WatchedToken) {
  let ended!: (end: WatchEnd) => void
  const end = new Promise<WatchEnd>((resolve) => { ended = resolve })
  t.teardown(domain.sessionWatch.watch(token, { ended, heartbeat: () => {} }))
  return end
}

/** Resolves once the feed has fanned out a batch that `match` accepts: every follower has heard it. */
function heard (t: Test, domain: Domain, match: (batch: RevocationBatch) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const unsubscribe = domain.revocationFeed.subscribe({ revocations: (batch) => { if (match(batch)) resolve() }, heartbeat () {}, failed () {} })
    t.teardown(unsubscribe)
  })
}

const within = <T>(promise: Promise<T>, ms = 5000) =>
  Promise.race([promise, sleep(ms).then(() => { throw new Error(`not within ${ms} ms`) })])

t.test('a watch of a session revoked after its token was checked, while other pages were watched, ends at once (remembered)', async (t) => {
  const { domain } = await createTestDomain(t)
  const [phone, laptop] = await twoSessions(domain)
  const elsewhere = watch(t, domain, (await twoSessions(domain))[0])
  const told = heard(t, domain, (batch) => batch.sessions.includes(laptop.sessionId))
  await domain.sessions.revoke(phone, laptop.sessionId)
  await within(told)

  t.same(await within(watch(t, domain, laptop)), { reason: 'revoked', sessionId: laptop.sessionId })
  const stillWatching = await Promise.race([elsewhere.then(() => true), sleep(100).then(() => false)])
  t.notOk(stillWatching, "another user's watch goes on")
})

t.test('a watch of a token whose version moved after it was checked ends at once, with the minVersion', async (t) => {
  const { domain } = await createTestDomain(t)
  const [phone] = await twoSessions(domain)
  watch(t, domain, (await twoSessions(domain))[0])
  const told = heard(t, domain, (batch) => batch.users.some((user) => user.id === phone.userId))
  await domain.sessions.endAll(phone.userId)
  await within(told)

  t.same(await within(watch(t, domain, phone)), { reason: 'revoked', minVersion: phone.version + 1 })
})

t.test('a watch of a session revoked after its token was checked, while nothing was watched, ends once the backlog is read', async (t) => {
  const { domain } = await createTestDomain(t)
  const [phone, laptop] = await twoSessions(domain)
  await domain.sessions.revoke(phone, laptop.sessionId)
  t.equal(domain.sessionWatch.size, 0, 'nothing watched: the revocation reached no watch')

  t.same(await within(watch(t, domain, laptop)), { reason: 'revoked', sessionId: laptop.sessionId })
  const phoneEnd = watch(t, domain, phone)
  const ended = await Promise.race([phoneEnd.then(() => true), sleep(200).then(() => false)])
  t.notOk(ended, 'the session that stays is watched on')
})

t.test('a token already past its exp ends at once, expired', async (t) => {
  const { domain } = await createTestDomain(t)
  const [phone] = await twoSessions(domain)
  t.same(await within(watch(t, domain, { ...phone, expiresAt: Math.floor(Date.now() / 1000) - 1 })), { reason: 'expired' })
})
