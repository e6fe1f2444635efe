/**
 * The verifier and a lost revocation feed: it fails closed once the feed has
 * been silent for longer than its bound (or falls back to introspection),
 * and when the feed returns it catches up on every revocation made meanwhile.
 * The feed runs through a TCP proxy that the test cuts and restores.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createVerifier, VerifierError, type Verifier } from '../../src/verifier/index.js'
import { createTestApp } from '../helpers/app.js'
import { bearer, post, register } from '../helpers/client.js'
import { createCuttableProxy } from '../helpers/proxy.js'

const CLIENT = { id: 'orders', secret: 'orders-secret-0123456789' }
const SILENCE_MS = 1000

async function setup (t: Test, fallback: 'fail-closed' | 'introspect') {
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
    maxFeedSilenceMs: SILENCE_MS, fallback,
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

t.test('a lost feed fails closed after the bound, and on its return no revocation made meanwhile is missed', async (t) => {
  const { app, proxy, verifier } = await setup(t, 'fail-closed')
  const alice = await register(app)
  const bob = await register(app)
  t.equal(await outcome(verifier, alice.accessToken), 'accepted')

  await proxy.cut()
  const cutAt = performance.now()
  // While the feed is down, alice signs out everywhere.
  await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))
  let closedAfter = Infinity
  while (performance.now() - cutAt < SILENCE_MS * 5) {
    if (await outcome(verifier, bob.accessToken) === 'revocation_feed_unavailable') { closedAfter = performance.now() - cutAt; break }
    await sleep(20)
  }
  t.comment(`failed closed ${closedAfter.toFixed(0)} ms after the feed was cut (bound ${SILENCE_MS} ms)`)
  // The bound counts from the last heartbeat heard (every 200 ms), not from the cut itself.
  t.ok(closedAfter >= SILENCE_MS / 2, 'a short gap does not fail closed at once')
  t.ok(closedAfter <= SILENCE_MS * 3, 'but once the bound has passed, it does')
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
  const { app, keys, dir } = await createTestApp(t, {
    env: { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '200', JWT_ISSUER: 'http://vouch.test' },
  })
  const { rotateKeyFile, watchKeyFile } = await import('../../src/crypto/key-rotation.js')
  t.teardown(watchKeyFile(keys, dir, 50, (err) => { throw err }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const verifier = createVerifier({
    vouchUrl: base, issuer: 'http://vouch.test', audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret, jwksCooldownMs: 100,
  })
  t.teardown(() => verifier.close())
  await verifier.ready()
  const before = await register(app)
  t.equal(await outcome(verifier, before.accessToken), 'accepted')

  await rotateKeyFile({ dataDir: dir, algorithm: 'EdDSA', publishDelay: 0.3, retireAfter: 60 })
  await sleep(600)
  const after = await register(app)
  const { decodeProtectedHeader } = await import('jose')
  t.not(decodeProtectedHeader(after.accessToken).kid, decodeProtectedHeader(before.accessToken).kid, 'signed by the new key')
  t.equal(await outcome(verifier, after.accessToken), 'accepted', 'the new key is fetched on first sight')
  t.equal(await outcome(verifier, before.accessToken), 'accepted', 'the old key still verifies until it retires')
})
