/**
 * Prometheus metrics (src/metrics): each counter moves by exactly what the
 * traffic did (read before and after, compared by delta), request durations
 * are labelled by route pattern, never by raw URL, the gauges follow the
 * streams that are open, and GET /metrics is served on its own port only:
 * the public port answers it 404.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openKeyMaterial } from '../../src/domain/signing-keys.js'
import { serveMetrics } from '../../src/metrics/server.js'
import { CHEAP_ARGON2, NO_RATE_LIMITS, createTestDatabase } from '../helpers/app.js'
import { createTestClock } from '../helpers/clock.js'
import { PASSWORD, bearer, login, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'
import { openEventStream } from '../helpers/event-stream.js'
import { sample, parseExposition, type Scrape } from '../helpers/metrics.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const AUTHORIZATION = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`

/** The app, with metrics in a registry of its own served on an ephemeral loopback port, as src/start.ts does. */
async function metricsApp (t: Test) {
  const { db, dir, url } = await createTestDatabase(t)
  const loaded = loadConfig({ DATABASE_URL: url, DATA_DIR: dir, LOG_LEVEL: 'silent', ...NO_RATE_LIMITS, RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` })
  const config = { ...loaded, passwords: { ...loaded.passwords, argon2: CHEAP_ARGON2 } }
  const { keys, refreshKey } = await openKeyMaterial(config, db)
  const registry = new Registry()
  const app = await buildApp({ config, db, keys, refreshKey, clock: createTestClock(), metrics: registry })
  t.teardown(() => app.close())
  const endpoint = await serveMetrics({ host: '127.0.0.1', port: 0 }, registry)
  t.teardown(() => endpoint.close())
  const scrape = async (): Promise<Scrape> => {
    const res = await fetch(`http://127.0.0.1:${endpoint.port}/metrics`)
    t.equal(res.status, 200, 'GET /metrics answers on the metrics port')
    t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
    return parseExposition(await res.text())
  }
  return { app, scrape, metricsPort: endpoint.port }
}

/** `after - before` for each named sample. */
function deltas (before: Scrape, after: Scrape, name: string, labelSets: Array<Record<string, string>>) {
  return labelSets.map((labels) => sample(after, name, labels) - sample(before, name, labels))
}

t.test('sign-ins, refreshes (a replay counted as reused), revocations and hashes move their counters by exactly what happened', async (t) => {
  const { app, scrape } = await metricsApp(t)
  const before = await scrape()

  const email = uniqueEmail('metrics')
  const registered = await register(app, email) // sign-in succeeded (registration), one hash
  const signedIn = await login(app, email) // succeeded (password), one verify
  t.equal((await post(app, '/auth/login', { email, password: 'not the password at all' })).statusCode, 401) // wrong_password, one verify
  t.equal((await post(app, '/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD })).statusCode, 401) // unknown_email, one (dummy) verify
  t.equal((await refresh(app, signedIn.refreshToken)).statusCode, 200) // succeeded
  // The superseded token again, from another client: a replay, which revokes the session.
  const replay = await post(app, '/auth/refresh', { refreshToken: signedIn.refreshToken }, { 'user-agent': 'somebody else' })
  t.equal(replay.json().code, 'refresh_token_reused')
  t.equal((await refresh(app, 'not-a-refresh-token')).statusCode, 401) // invalid
  t.equal((await post(app, '/auth/logout-all', undefined, bearer(registered.accessToken))).statusCode, 204) // signed out everywhere

  const after = await scrape()
  t.same(deltas(before, after, 'vouch_sign_ins_total', [
    { outcome: 'succeeded', method: 'registration' },
    { outcome: 'succeeded', method: 'password' },
    { outcome: 'wrong_password', method: 'password' },
    { outcome: 'unknown_email', method: 'password' },
    { outcome: 'account_disabled', method: 'password' },
    { outcome: 'throttled', method: 'password' },
  ]), [1, 1, 1, 1, 0, 0], 'sign-ins by outcome and method')
  t.same(deltas(before, after, 'vouch_refreshes_total', [
    { outcome: 'succeeded' }, { outcome: 'reused' }, { outcome: 'invalid' }, { outcome: 'refused' },
  ]), [1, 1, 1, 0], 'refreshes by outcome')
  t.same(deltas(before, after, 'vouch_revocations_total', [
    { kind: 'refresh_token_reused' }, { kind: 'signed_out_everywhere' }, { kind: 'logout' },
  ]), [1, 1, 0], 'revocations by kind')
  t.same(deltas(before, after, 'vouch_security_events_total', [
    { type: 'sign_in_succeeded' }, { type: 'sign_in_failed' }, { type: 'refresh_token_reused' }, { type: 'signed_out_everywhere' },
  ]), [2, 2, 1, 1], 'security events by type')
  t.same(deltas(before, after, 'vouch_password_hash_duration_seconds_count', [{ operation: 'hash' }, { operation: 'verify' }]), [1, 3],
    'one hash (the registration), three verifications (good, wrong, unknown email against the dummy hash)')
  t.same(deltas(before, after, 'vouch_http_request_duration_seconds_count', [
    { method: 'POST', route: '/auth/login', status_code: '200' },
    { method: 'POST', route: '/auth/login', status_code: '401' },
    { method: 'POST', route: '/auth/refresh', status_code: '401' },
  ]), [1, 2, 2], 'request durations by route pattern, method and status')
  t.equal(sample(after, 'vouch_password_hash_queue', { state: 'waiting' }), 0)
  t.equal(sample(after, 'vouch_invalidation_bus_connected'), 1)
  t.same(deltas(before, after, 'vouch_database_errors_total', [{ kind: 'unavailable' }, { kind: 'other' }]), [0, 0])
})

t.test('authenticated requests count as session-cache misses then hits; durations carry the route pattern, never the raw URL', async (t) => {
  const { app, scrape } = await metricsApp(t)
  const { accessToken, sessionId } = await register(app)
  const before = await scrape()
  t.equal((await me(app, accessToken)).statusCode, 200) // read from the database, then cached
  t.equal((await me(app, accessToken)).statusCode, 200)
  t.equal((await me(app, accessToken)).statusCode, 200)
  const after = await scrape()
  // Each GET /auth/me reads the session's state twice (the bearer check, then the profile): one miss, then all hits.
  t.same(deltas(before, after, 'vouch_session_cache_lookups_total', [{ result: 'miss' }, { result: 'hit' }]), [1, 5])

  const other = await register(app)
  t.equal((await app.inject({ method: 'DELETE', url: `/auth/sessions/${other.sessionId}`, headers: bearer(other.accessToken) })).statusCode, 204)
  t.equal((await app.inject({ method: 'GET', url: `/no/such/${sessionId}` })).statusCode, 404)
  const last = await scrape()
  t.equal(sample(last, 'vouch_http_request_duration_seconds_count', { method: 'DELETE', route: '/auth/sessions/:id', status_code: '204' }), 1)
  t.equal(sample(last, 'vouch_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1)
  t.same(deltas(after, last, 'vouch_revocations_total', [{ kind: 'revoked_by_user' }]), [1])
  const keys = [...last.keys()]
  t.notOk(keys.some((key) => key.includes(sessionId) || key.includes(other.sessionId)), 'no label holds an id from a URL')
})

t.test('the feed and session-watch gauges count the streams open at scrape time', async (t) => {
  const { app, scrape } = await metricsApp(t)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const { accessToken } = await register(app)
  t.equal(sample(await scrape(), 'vouch_revocation_feed_streams'), 0)

  const feed = await openEventStream(t, `${base}/auth/revocations`, { authorization: AUTHORIZATION })
  t.equal(feed.status, 200)
  await feed.next((event) => event.event === 'ready')
  const watch = await openEventStream(t, `${base}/auth/session/watch`, bearer(accessToken))
  t.equal(watch.status, 200)
  await watch.next((event) => event.event === 'ready')
  const open = await scrape()
  t.equal(sample(open, 'vouch_revocation_feed_streams'), 1)
  t.equal(sample(open, 'vouch_session_watch_streams'), 1)
  t.notOk([...open.keys()].some((key) => key.includes('/auth/revocations')), 'an open stream is not timed as a request')

  feed.close()
  watch.close()
  // The server sees the close a moment later.
  const deadline = Date.now() + 10_000
  let closed = await scrape()
  while ((sample(closed, 'vouch_revocation_feed_streams') > 0 || sample(closed, 'vouch_session_watch_streams') > 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    closed = await scrape()
  }
  t.equal(sample(closed, 'vouch_revocation_feed_streams'), 0)
  t.equal(sample(closed, 'vouch_session_watch_streams'), 0)
})

t.test('GET /metrics is not on the public port; the metrics port serves nothing else', async (t) => {
  const { app, metricsPort } = await metricsApp(t)
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'not_found')
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/auth/me`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST' })).status, 404)
})

t.test('without a registry the app has no metrics hooks and still answers /metrics 404', async (t) => {
  const { db, dir, url } = await createTestDatabase(t)
  const config = loadConfig({ DATABASE_URL: url, DATA_DIR: dir, LOG_LEVEL: 'silent' })
  t.equal(config.metrics.port, undefined, 'METRICS_PORT unset: metrics off')
  t.equal(config.metrics.host, '127.0.0.1')
  t.same(loadConfig({ DATABASE_URL: url, DATA_DIR: dir, METRICS_PORT: '9464' }).metrics, { host: '127.0.0.1', port: 9464 })
  const { keys, refreshKey } = await openKeyMaterial(config, db)
  const app: FastifyInstance = await buildApp({ config, db, keys, refreshKey })
  t.teardown(() => app.close())
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
})
