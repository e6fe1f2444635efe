/**
 * Starting a vouch process: bring the database schema up to date, load (or
 * create) the key material, connect the invalidation bus, listen, and shut
 * down gracefully on SIGINT/SIGTERM. Entry points: src/server.ts (one
 * process) and src/cluster.ts (one worker per core).
 */
import cluster from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import { configWarnings, type Config } from './config.js'
import { buildApp, createLogger } from './app.js'
import { busKindFor, createBus } from './bus/index.js'
import { createRedisClient } from './bus/redis.js'
import { redisCounters } from './limits/counters.js'
import { createDb, prepareDatabase } from './db/client.js'
import { applyMigrations } from './db/migrate.js'
import { keepKeysCurrent, openKeyMaterial } from './domain/signing-keys.js'
import { tuneV8 } from './runtime.js'
import { createSecurityEvents } from './domain/security-events.js'
import { schedulePruning } from './domain/event-pruning.js'
import { keyUnkeyedSessions } from './domain/devices.js'

export { exitOnStartupError } from './runtime.js'

/**
 * What a process needs before it serves: an up-to-date schema and the key
 * material (created on first start). Cluster workers skip the migrations:
 * src/cluster.ts ran them, and created the keys, in a process of their own
 * before forking.
 */
export async function prepare (config: Config, { migrate = true } = {}) {
  tuneV8()
  if (migrate) {
    await prepareDatabase(config.databaseUrl)
    await applyMigrations(config.databaseUrl)
  }
  const db = createDb(config.databaseUrl, { pool: config.database })
  try {
    return { db, ...await openKeyMaterial(config, db) }
  } catch (err) {
    await db.$disconnect()
    throw err
  }
}

export async function serve (config: Config): Promise<void> {
  tuneV8()
  const logger = createLogger(config.logLevel)
  for (const warning of configWarnings(config)) logger.warn(warning)
  const { db, keys, refreshKey, store, notes } = await prepare(config, { migrate: !cluster.isWorker })
  for (const note of notes) logger.info(note)
  const warn = (message: string, err?: unknown) => logger.warn({ err }, message)
  const bus = createBus(config, warn)
  const redis = config.redisUrl === undefined ? undefined : createRedisClient(config.redisUrl, config.redisCommandTimeout)
  redis?.on('error', (err) => warn('redis error', err))
  // Stored keys rotate on schedule (one instance performs each rotation) and every instance follows within seconds.
  const upkeep = store && keepKeysCurrent(keys, store, {
    bus,
    intervalMs: config.tokens.keyReloadInterval * 1000,
    onError: (err) => warn('cannot re-read or rotate the signing keys', err),
    onRotated: (rotation) => logger.info({ rotation }, 'signing key rotated'),
  })
  // Built here (not by the domain's default) so that this process keeps it pruned: events older than EVENT_RETENTION_DAYS go, now and hourly.
  const events = createSecurityEvents({ db, settings: config.events, onListenerError: (err) => logger.error({ err }, 'background work failed') })
  const stopPruning = schedulePruning(events, { onError: (err) => warn('cannot prune security events', err) })
  // Sessions of a version before device keys get theirs (until then, no new-device alert for their users).
  keyUnkeyedSessions(db)
    .then((keyed) => { if (keyed > 0) logger.info({ keyed }, 'device keys given to sessions recorded before them') })
    .catch((err: unknown) => warn('cannot key the sessions recorded before device keys', err))
  // Prometheus metrics on METRICS_PORT (a cluster worker hands its registry to the primary, which serves the port).
  const metrics = config.metrics.port === undefined
    ? undefined
    : await (await import('./metrics/process.js')).startMetrics({ host: config.metrics.host, port: config.metrics.port }, (err) => warn('cannot collect the metrics', err))
  const app = await buildApp({
    config, db, keys, refreshKey, bus, logger, events, ...(metrics && { metrics: metrics.registry }),
    ...(redis && { redis, counters: redisCounters(redis, `${config.redisKeyPrefix}login-failures:`, (err) => warn('login throttle: redis unavailable, failing open', err)) }),
  })

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    upkeep?.stop()
    stopPruning()
    await app.close()
    await metrics?.close()
    await bus.close()
    redis?.disconnect()
    await db.$disconnect()
  })

  await app.listen({ host: config.host, port: config.port })
  // What resource servers must be told: tokens are refused for any other iss or aud.
  app.log.info({
    issuer: config.tokens.issuer, audience: config.tokens.audience, metadata: `${config.publicUrl}/.well-known/oauth-authorization-server`,
    kid: keys.current.kid, alg: keys.algorithm, invalidations: busKindFor(config),
    ...(metrics?.port !== undefined && { metrics: `http://${config.metrics.host}:${metrics.port}/metrics` }),
  }, 'ready')
}
