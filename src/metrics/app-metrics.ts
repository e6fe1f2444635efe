/**
 * Prometheus metrics of one vouch process, kept in a registry of its own
 * (src/metrics/server.ts serves it; in a cluster the primary sums the
 * workers', src/metrics/cluster.ts). The domain knows nothing of them:
 *
 * - what the domain reports as security events (sign-ins, replays,
 *   revocations) is counted by subscribing to its one seam, `events`;
 * - HTTP durations and the refresh route's outcomes come from Fastify hooks
 *   (the route's pattern, never the raw URL, so a path's ids cannot grow the
 *   label set);
 * - state (cache hits, the hash queue, the bus, streams) is read when
 *   scraped, from counters the services keep anyway;
 * - argon2 timings come from the `vouch:password-hash` diagnostics channel.
 *
 * Per request this costs one Map lookup and one histogram observation.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { passwordHashChannel, type PasswordHasher, type PasswordHashTiming } from '../crypto/passwords.js'
import { isDatabaseUnavailable } from '../db/errors.js'
import { DomainError } from '../errors.js'
import type { RevocationFeed } from '../domain/revocation-feed.js'
import type { SecurityEvent, SecurityEvents } from '../domain/security-events.js'
import type { InvalidationBus, SessionCache } from '../domain/session-cache.js'
import type { SessionWatch } from '../domain/session-watch.js'

/** What the metrics read, handed over by the composition root (src/app.ts). */
export interface MetricSources {
  events: SecurityEvents
  cache: SessionCache
  /** Absent for a lone instance, whose bus is always connected. */
  bus?: InvalidationBus | undefined
  passwords: PasswordHasher
  revocationFeed: RevocationFeed
  sessionWatch: SessionWatch
}

/** The label of requests that matched no route (a 404 of the router), whatever their URL. */
export const UNMATCHED_ROUTE = 'unmatched'

const REFRESH_ROUTE = '/auth/refresh'

/** Seconds; a cached authenticated request takes well under a millisecond, a sign-in tens of milliseconds. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const HASH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** How an event revokes access, if it does: its `kind` label. */
function revocationKind (event: SecurityEvent): string | undefined {
  switch (event.type) {
    case 'session_revoked': return event.reason
    case 'refresh_token_reused': return 'refresh_token_reused'
    case 'signed_out_everywhere': return event.keptSessionId === undefined ? 'signed_out_everywhere' : 'revoked_others'
    case 'password_changed': return 'password_changed'
    case 'password_reset_completed': return 'password_reset'
    case 'account_disabled': return 'account_disabled'
    case 'account_deleted': return 'account_deleted'
    default: return undefined
  }
}

/** Registers vouch's metrics in `registry` and starts counting `app`'s requests. Call before the routes are registered. */
export function instrumentApp (app: FastifyInstance, registry: Registry, sources: MetricSources): void {
  const registers = [registry]

  const duration = new Histogram({
    name: 'vouch_http_request_duration_seconds',
    help: 'Time to answer a request, by route pattern, method and status (event streams are not timed: see the stream gauges).',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  })
  const signIns = new Counter({
    name: 'vouch_sign_ins_total',
    help: 'Sign-ins by outcome (succeeded, unknown_email, wrong_password, account_disabled, throttled) and method (password, registration, password_reset).',
    labelNames: ['outcome', 'method'] as const,
    registers,
  })
  const refreshes = new Counter({
    name: 'vouch_refreshes_total',
    help: 'POST /auth/refresh by outcome: succeeded, reused (a replayed token; its session was revoked), invalid, refused (anything else: bad request, rate limit, unavailable).',
    labelNames: ['outcome'] as const,
    registers,
  })
  const graceDuplicates = new Counter({
    name: 'vouch_refresh_grace_duplicates_total',
    help: 'Refreshes answered with the live token because they duplicated the last rotation within the grace window (counted as succeeded too).',
    registers,
  })
  const revocations = new Counter({
    name: 'vouch_revocations_total',
    help: 'Revocations by kind: one session (logout, revoked_by_user, token_revocation, session_limit, admin, refresh_token_reused) or all of a user\'s (signed_out_everywhere, revoked_others, password_changed, password_reset, account_disabled, account_deleted).',
    labelNames: ['kind'] as const,
    registers,
  })
  const securityEvents = new Counter({
    name: 'vouch_security_events_total',
    help: 'Security events published, by type.',
    labelNames: ['type'] as const,
    registers,
  })
  const databaseErrors = new Counter({
    name: 'vouch_database_errors_total',
    help: 'Database errors that reached a response: unavailable (answered 503) or other (answered 500).',
    labelNames: ['kind'] as const,
    registers,
  })
  const hashDuration = new Histogram({
    name: 'vouch_password_hash_duration_seconds',
    help: 'Time of one argon2 operation (hash or verify), not counting its wait in the queue.',
    labelNames: ['operation'] as const,
    buckets: HASH_BUCKETS,
    registers,
  })

  new Gauge({
    name: 'vouch_processes',
    help: 'vouch processes whose metrics this scrape covers: 1, or in a cluster the workers that answered.',
    registers,
  }).set(1)

  // State read when scraped.
  const { cache, bus, passwords, revocationFeed, sessionWatch } = sources
  let hitsSeen = 0
  let missesSeen = 0
  new Counter({
    name: 'vouch_session_cache_lookups_total',
    help: 'Session-state reads of authenticated requests: hit (answered from the cache) or miss (read from the database).',
    labelNames: ['result'] as const,
    registers,
    collect () {
      this.labels('hit').inc(cache.hits - hitsSeen)
      this.labels('miss').inc(cache.misses - missesSeen)
      hitsSeen = cache.hits
      missesSeen = cache.misses
    },
  })
  new Gauge({
    name: 'vouch_invalidation_bus_connected',
    help: '1 while the invalidation bus is connected (the session cache is trusted), else 0; in a cluster, the lowest of the workers.',
    aggregator: 'min',
    registers,
    collect () { this.set(bus === undefined || bus.healthy ? 1 : 0) },
  })
  new Gauge({
    name: 'vouch_revocation_feed_streams',
    help: 'Resource servers connected to the revocation feed (GET /auth/revocations).',
    registers,
    collect () { this.set(revocationFeed.subscribers) },
  })
  new Gauge({
    name: 'vouch_session_watch_streams',
    help: 'Web pages watching their session (session-watch event streams).',
    registers,
    collect () { this.set(sessionWatch.size) },
  })
  new Gauge({
    name: 'vouch_password_hash_queue',
    help: 'Password hashes running and waiting for a slot (state: running, waiting).',
    labelNames: ['state'] as const,
    registers,
    collect () {
      this.labels('running').set(passwords.queue?.running ?? 0)
      this.labels('waiting').set(passwords.queue?.waiting ?? 0)
    },
  })

  // Every outcome starts at 0, so that a rate is defined before the first one happens.
  for (const outcome of ['succeeded', 'unknown_email', 'wrong_password', 'account_disabled', 'throttled']) signIns.labels(outcome, 'password').inc(0)
  for (const outcome of ['succeeded', 'reused', 'invalid', 'refused']) refreshes.labels(outcome).inc(0)
  for (const kind of ['unavailable', 'other']) databaseErrors.labels(kind).inc(0)

  const unsubscribe = sources.events.subscribe((event) => {
    securityEvents.labels(event.type).inc()
    if (event.type === 'sign_in_succeeded') signIns.labels('succeeded', event.method).inc()
    else if (event.type === 'sign_in_failed') signIns.labels(event.reason, 'password').inc()
    else if (event.type === 'sign_in_throttled') signIns.labels('throttled', 'password').inc()
    else if (event.type === 'refresh_duplicate_in_grace') graceDuplicates.inc()
    const kind = revocationKind(event)
    if (kind !== undefined) revocations.labels(kind).inc()
  })

  const onHash = (message: unknown) => {
    const { operation, seconds } = message as PasswordHashTiming
    hashDuration.labels(operation).observe(seconds)
  }
  diagnosticsChannel.subscribe(passwordHashChannel.name, onHash)

  // Label children by "method route status": looking one up is cheaper than prom-client hashing the labels each time.
  const timers = new Map<string, ReturnType<typeof duration.labels>>()
  /** The error a request was answered with (onError runs before the error handler); only set on errors. */
  const errors = new WeakMap<FastifyRequest, FastifyError>()

  app.addHook('onError', (request, _reply, err, done) => {
    errors.set(request, err)
    if (isDatabaseUnavailable(err)) databaseErrors.labels('unavailable').inc()
    else if (err.name.startsWith('PrismaClient')) databaseErrors.labels('other').inc()
    done()
  })

  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE
    const status = reply.statusCode
    if (route === REFRESH_ROUTE) refreshes.labels(refreshOutcome(status, errors.get(request))).inc()
    const type = reply.getHeader('content-type')
    if (typeof type !== 'string' || !type.startsWith('text/event-stream')) {
      const key = `${request.method} ${route} ${status}`
      let timer = timers.get(key)
      if (timer === undefined) timers.set(key, timer = duration.labels(request.method, route, String(status)))
      timer.observe(reply.elapsedTime / 1000)
    }
    done()
  })

  app.addHook('onClose', (_app, done) => {
    unsubscribe()
    diagnosticsChannel.unsubscribe(passwordHashChannel.name, onHash)
    done()
  })
}

function refreshOutcome (status: number, err: FastifyError | undefined): string {
  if (status >= 200 && status < 300) return 'succeeded'
  if (err instanceof DomainError && err.code === 'refresh_token_reused') return 'reused'
  if (err instanceof DomainError && err.code === 'refresh_token_invalid') return 'invalid'
  return 'refused'
}
