/**
 * Per-IP request limits on every /auth and /admin route (@fastify/rate-limit),
 * counted in Redis when one is configured so that the limit holds across
 * instances.
 * The stricter per-account limit on failed sign-ins is the domain's
 * (src/limits/login-throttle.ts). If Redis is unreachable, or hung past the
 * client's command timeout (src/bus/redis.ts), the limit fails open
 * (skipOnError): availability over throttling.
 */
import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { DomainError } from '../../errors.js'

export interface RateLimitOptions {
  max: number
  /** Seconds. */
  window: number
  redis?: Redis | undefined
  /** Prefix of the Redis keys. */
  keyPrefix: string
}

export const perIpRateLimit = fp<RateLimitOptions>(async (app, { max, window, redis, keyPrefix }) => {
  await app.register(rateLimit, {
    global: true,
    max,
    timeWindow: window * 1000,
    ...(redis && { redis }),
    nameSpace: `${keyPrefix}rate-limit:`,
    skipOnError: true,
    allowList: (request) => !request.url.startsWith('/auth/') && !request.url.startsWith('/admin/'),
    errorResponseBuilder: (_request, context) =>
      new DomainError('rate_limited', `Too many requests; retry in ${context.after}.`, { retryAfter: Math.ceil(context.ttl / 1000) }),
  })
}, { name: 'vouch-rate-limit', fastify: '5.x' })
