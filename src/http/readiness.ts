/**
 * What GET /health/ready reports. The database is essential: without it no
 * token can be checked, so readiness fails (503). Redis and the invalidation
 * bus are not: without them the limits fail open and the revocation cache is
 * bypassed, and every answer stays correct, so readiness answers 200 with
 * status "degraded" and names the check that failed. A shared Redis failing
 * readiness would take every instance out of the load balancer at once and
 * turn a degraded service into an outage.
 */
import type { Redis } from 'ioredis'
import { redisAnswers } from '../bus/redis.js'
import type { Db } from '../db/client.js'
import type { InvalidationBus } from '../domain/session-cache.js'

export type CheckStatus = 'ok' | 'unavailable'

export interface Readiness {
  status: 'ok' | 'degraded' | 'unavailable'
  checks: {
    database: CheckStatus
    /** Present when Redis is configured: it answers a PING within its timeout. */
    redis?: CheckStatus
    /** The invalidation bus is connected (while it is not, the revocation cache is bypassed). */
    invalidations: CheckStatus
  }
  /** Why the database check failed: logged, never sent. */
  cause?: unknown
}

export interface ReadinessDeps {
  db: Db
  bus?: InvalidationBus | undefined
  redis?: { client: Redis, timeoutMs: number } | undefined
}

/** Runs the checks at once: readiness takes as long as the slowest. */
export function readinessCheck ({ db, bus, redis }: ReadinessDeps): () => Promise<Readiness> {
  const status = (ok: boolean): CheckStatus => ok ? 'ok' : 'unavailable'
  return async () => {
    const [database, redisOk] = await Promise.all([
      db.$queryRaw`SELECT 1`.then(() => ({ ok: true as const }), (cause: unknown) => ({ ok: false as const, cause })),
      redis && redisAnswers(redis.client, redis.timeoutMs),
    ])
    const checks: Readiness['checks'] = {
      database: status(database.ok),
      ...(redis && { redis: status(redisOk === true) }),
      invalidations: status(bus?.healthy ?? true),
    }
    if (!database.ok) return { status: 'unavailable', checks, cause: database.cause }
    return { status: Object.values(checks).every((check) => check === 'ok') ? 'ok' : 'degraded', checks }
  }
}
