/**
 * The verifier and a lost revocation feed: once the connection has been down
 * for longer than `maxDisconnectedMs` it fails closed (or falls back to
 * introspection), and when the feed returns it catches up on every
 * revocation made meanwhile. The feed runs through a TCP proxy that the test
 * cuts and restores. (A feed that stays connected but silent is left after
 * `maxFeedSilenceMs`: test/verifier/failover.test.ts, a frozen instance.)
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createVerifier, VerifierError, type Verifier } from '@vouch/verifier'
import { createTestApp } from '../helpers/app.js'
import { bearer, post, register } from '../helpers/client.js'
import { createCuttableProxy } from '../helpers/proxy.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const SILENCE_MS = 1000
const DISCONNECTED_MS = 400

async function setup (t: Test, fallback: 'fail-closed' | 'introspect', maxFeedSilenceMs = SILENCE_MS) {
  const context = await createTestApp(t, {
    env: { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '200', JWT_ISSUER: 'http://vouch.test' },
  })
  await context.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (context.app.server.address() as { port: number }).port
  const proxy = await createCuttableProxy({ host: '127.0.0.1', port })
  t.teardown(() => proxy.cut())
  const direct = `http://127.0.0.1:${port}`
  const verifier = createVerifier({
    vouchUrl: `http://127.0.0.1:${proxy.port}`,
    jwksUrl: `${direct}/.well-known/jwks.json`,
    introspectionUrl: `${direct}/auth/introspect`,
    issuer: 'http://vouch.test', audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret,
    maxFeedSilenceMs, maxDisconnectedMs: DISCONNECTED_MS, fallback,
  })
  t.teardown(() => verifier.close())
  await verifier.ready()
  return { ...context, proxy, verifier }
}

async function outcome (verifier: Verifier, token: string): Promise<string> {
  try {
    await verifier.verify(token)
    return 'accepted'
  } catch (err) {
    if (err instanceof VerifierError) return err.code
    throw err
  }
}

t.test('a dropped feed fails closed after maxDisconnectedMs, not the silence bound, and on its return no revocation made meanwhile is missed', async (t) => {
  // The silence bound is the default 15 s: only the lost connection may close the verifier this fast.
  const { app, proxy, verifier } = await setup(t, 'fail-closed', 15_000)
  const alice = await register(app)
  const bob = await register(app)
  t.equal(await outcome(verifier, alice.accessToken), 'accepted')

  await proxy.cut()
  const cutAt = performance.now()
  // While the feed is down, alice signs out everywhere.
  await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))
  let closedAfter = Infinity
  while (performance.now() - cutAt < 5000) {
    if (await outcome(verifier, bob.accessToken) === 'revocation_feed_unavailable') { closedAfter = performance.now() - cutAt; break }
    await sleep(20)
  }
  t.comment(`failed closed ${closedAfter.toFixed(0)} ms after the feed was cut (maxDisconnectedMs ${DISCONNECTED_MS} ms)`)
  // The bound counts from the moment the verifier saw the connection go, which is after the cut.
  t.ok(closedAfter >= DISCONNECTED_MS / 2, 'a short gap does not fail closed at once')
  t.ok(closedAfter <= 1000, 'but within the 1 s target it does, long before the 15 s silence bound')
  t.equal(await outcome(verifier, alice.accessToken), 'revocation_feed_unavailable', 'never open: no token is accepted')

  await proxy.start()
  const restoredAt = performance.now()
  while (!verifier.feedLive && performance.now() - restoredAt < 10_000) await sleep(20)
  t.ok(verifier.feedLive, 'the feed reconnects by itself')
  t.comment(`recovered ${(performance.now() - restoredAt).toFixed(0)} ms after the feed returned`)
  t.equal(await outcome(verifier, alice.accessToken), 'token_revoked', 'the revocation made during the outage was caught up')
  t.equal(await outcome(verifier, bob.accessToken), 'accepted', "other users' tokens work again")
})

t.test('with fallback: introspect, a lost feed falls back to asking vouch', async (t) => {
  const { app, proxy, verifier } = await setup(t, 'introspect')
  const alice = await register(app)
  const bob = await register(app)
  await proxy.cut()
  await sleep(SILENCE_MS * 2)
  t.notOk(verifier.feedLive)
  await post(app, '/auth/logout', undefined, bearer(alice.accessToken))
  t.equal(await outcome(verifier, bob.accessToken), 'accepted', 'a live token is confirmed by introspection')
  t.equal(await outcome(verifier, alice.accessToken), 'token_revoked', 'a revoked one is refused')
})

t.test('the verifier picks up a rotated-in signing key without a restart', async (t) => {
  const { app, keys, db, dir } = await createTestApp(t, {
    env: { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '200', JWT_ISSUER: 'http://vouch.test' },
  })
  const { createSigningKeyStore, keepKeysCurrent } = await import('../../src/domain/signing-keys.js')
  const { loadSealer } = await import('../../src/crypto/sealing.js')
  const { localBus } = await import('../../src/domain/session-cache.js')
  const store = createSigningKeyStore(db, await loadSealer(undefined, dir), { algorithm: 'EdDSA', publishDelay: 0.3, retireAfter: 60, rotationInterval: 0, dataDir: dir })
  const upkeep = keepKeysCurrent(keys, store, { bus: localBus(), intervalMs: 50, onError: (err) => { throw err }, onRotated: () => {} })
  t.teardown(upkeep.stop)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const verifier = createVerifier({
    vouchUrl: base, issuer: 'http://vouch.test', audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret, jwksCooldownMs: 100,
  })
  t.teardown(() => verifier.close())
  await verifier.ready()
  const before = await register(app)
  t.equal(await outcome(verifier, before.accessToken), 'accepted')

  await store.rotate({ force: true })
  await sleep(600)
  const after = await register(app)
  const { decodeProtectedHeader } = await import('jose')
  t.not(decodeProtectedHeader(after.accessToken).kid, decodeProtectedHeader(before.accessToken).kid, 'signed by the new key')
  t.equal(await outcome(verifier, after.accessToken), 'accepted', 'the new key is fetched on first sight')
  t.equal(await outcome(verifier, before.accessToken), 'accepted', 'the old key still verifies until it retires')
})
