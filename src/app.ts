/**
 * The composition root: `buildApp(deps)` wires the domain services, the
 * Fastify plugins, the routes and the error handler. It does not listen;
 * src/server.ts does. Tests call it directly and use `inject`.
 *
 * Request flow: http/ (schemas, authentication, routes, errors) →
 * domain/ (accounts, sessions, access tokens) → db/ and crypto/.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { pino, type DestinationStream } from 'pino'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { createDomain, type DomainDeps } from './domain/index.js'
import type { SecurityEvents } from './domain/security-events.js'
import { systemClock } from './domain/clock.js'
import { DomainError } from './errors.js'
import { clientError, frameworkError, registerErrorHandling } from './http/error-handler.js'
import { serverOptions } from './http/connections.js'
import { lingerOnEarlyErrors } from './http/lingering-close.js'
import { echoRequestId, requestIdFor } from './http/request-id.js'
import type { Redis } from 'ioredis'
import type { Registry } from 'prom-client'
import { createPasswordHasher } from './crypto/passwords.js'
import { authenticate } from './http/plugins/authenticate.js'
import { refreshCookie } from './http/plugins/refresh-cookie.js'
import { perIpRateLimit } from './http/plugins/rate-limit.js'
import { readinessCheck } from './http/readiness.js'
import { trustProxyOption } from './http/trust-proxy.js'
import { clientAuth } from './http/plugins/client-auth.js'
import { adminAuth } from './http/plugins/admin-auth.js'
import { apiDocs } from './http/plugins/openapi.js'
import { createClientCheck, createClientDirectory } from './http/plugins/client-directory.js'
import { memoryCounters } from './limits/counters.js'
import { resourceServerRoutes } from './http/routes/resource-servers.js'
import { securityHeaders } from './http/plugins/security-headers.js'
import { accountRoutes } from './http/routes/account.js'
import { adminRoutes } from './http/routes/admin.js'
import { authRoutes } from './http/routes/auth.js'
import { discoveryRoutes } from './http/routes/discovery.js'
import { metadataRoutes } from './http/routes/metadata.js'
import { tokenRevocationRoutes } from './http/routes/token-revocation.js'
import { sessionWatchRoutes } from './http/routes/session-watch.js'
import { accountPageRoutes } from './http/routes/account-page.js'
import { sessionRoutes } from './http/routes/sessions.js'
import type { Services } from './http/services.js'

export interface AppDeps extends DomainDeps {
  /** A pino logger; by default one at config.logLevel writing to stdout. */
  logger?: FastifyBaseLogger
  /** Holds the per-IP rate-limit counters when several instances share them. */
  redis?: Redis
  /** Where Prometheus metrics are kept (src/metrics); none when METRICS_PORT is unset. */
  metrics?: Registry
}

export const BODY_LIMIT = 64 * 1024

/** Never logged: credentials in headers. Bodies are not logged at all. */
export const LOG_REDACT = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]']

/**
 * The logger: credentials redacted, and request URLs logged without their
 * query string (a secret in a query, such as a reset link followed to the
 * wrong host, must not land in the logs).
 */
export function createLogger (level: string, destination?: DestinationStream): FastifyBaseLogger {
  return pino({
    level,
    redact: { paths: LOG_REDACT, censor: '[redacted]' },
    serializers: {
      req: (request: { method?: string, url?: string, host?: string, ip?: string, socket?: { remotePort?: number } }) => ({
        method: request.method,
        url: request.url?.split('?')[0],
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort,
      }),
    },
  }, destination)
}

export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config, db, keys } = deps
  const passwords = deps.passwords ?? createPasswordHasher(config.passwords.argon2)
  const { accounts, sessions, passwordResets, revocationFeed, sessionWatch, events, administration, apiClients, cache } = createDomain({
    ...deps,
    passwords,
    onBackgroundError: deps.onBackgroundError ?? ((err) => app.log.error({ err }, 'background work failed')),
  })
  const services: Services = {
    accounts, sessions, passwordResets, revocationFeed, sessionWatch, administration, events, keys, db,
    issuer: config.tokens.issuer, audience: config.tokens.audience,
    readiness: readinessCheck({ db, bus: deps.bus, redis: deps.redis && { client: deps.redis, timeoutMs: config.redisCommandTimeout } }),
  }

  const app = Fastify({
    loggerInstance: deps.logger ?? createLogger(config.logLevel),
    bodyLimit: BODY_LIMIT,
    trustProxy: trustProxyOption(config.trustProxy),
    return503OnClosing: true,
    logController: new AccessLog(),
    // The request id (logged as reqId): a well-formed X-Request-Id, else a random UUID; never the raw header.
    genReqId: requestIdFor,
    requestIdHeader: false,
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: true, allErrors: false } },
    ...serverOptions(config.connections),
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.server.maxConnections = config.connections.maxConnections

  registerErrorHandling(app)
  echoRequestId(app) // the first onRequest hook: every later answer carries the id
  if (deps.metrics) {
    // Loaded only when wanted; its hooks time every route registered below.
    const { instrumentApp } = await import('./metrics/app-metrics.js')
    instrumentApp(app, deps.metrics, { events, cache, bus: deps.bus, passwords, revocationFeed, sessionWatch })
  }
  lingerOnEarlyErrors(app)
  logSecurityEvents(app.log, events)
  acceptJsonOnly(app)

  // vouch's own origins (listed for the account page's cookie mode) are same-origin: they need no CORS, and leaving
  // them out keeps CORS closed, at no per-request cost, when nothing else is configured.
  await app.register(securityHeaders, {
    corsOrigins: config.corsOrigins, cookieOrigins: config.cookies.origins.filter((origin) => !config.cookies.ownOrigins.includes(origin)),
  })
  await app.register(perIpRateLimit, {
    max: config.rateLimits.perIp, window: config.rateLimits.window, redis: deps.redis, keyPrefix: config.redisKeyPrefix,
  })
  await app.register(refreshCookie, { cookies: config.cookies })
  await app.register(authenticate, { sessions })
  // Resource and admin clients share one credential check: one budget per client id and IP.
  const directory = createClientDirectory({
    resourceClients: config.resourceClients, adminClients: config.adminClients, stored: apiClients,
    now: () => (deps.clock ?? systemClock).now().getTime(),
  })
  const check = createClientCheck({
    directory, counters: deps.counters ?? memoryCounters(), limits: config.rateLimits.clients,
    onThrottled: (event) => app.log.warn({ event }, 'client authentication throttled'),
  })
  await app.register(clientAuth, { check })
  await app.register(adminAuth, { check })
  if (config.apiDocs) await app.register(apiDocs, { publicUrl: config.publicUrl, cookies: config.cookies })
  await app.register(authRoutes, { services })
  await app.register(sessionRoutes, { services })
  await app.register(accountRoutes, { services })
  await app.register(discoveryRoutes, { services })
  await app.register(resourceServerRoutes, { services })
  await app.register(metadataRoutes, { services, publicUrl: config.publicUrl })
  await app.register(tokenRevocationRoutes, { services })
  await app.register(sessionWatchRoutes, { services })
  await app.register(adminRoutes, { services })
  if (config.accountPage) await app.register(accountPageRoutes)
  return app
}

/**
 * JSON is the only body type (anything else is 415). Body-less POSTs (logout,
 * revoke-others) sent with `Content-Type: application/json` are common, so an
 * empty JSON body counts as no body rather than a 400. Non-empty bodies go
 * through Fastify's default parser, which rejects `__proto__` and
 * `constructor` keys.
 */
function acceptJsonOnly (app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined)
      return
    }
    // No field vouch stores may hold NUL (PostgreSQL text cannot): refuse it up front, on every database alike.
    if (/\\u0000|\0/i.test(body as string)) {
      done(new DomainError('validation_failed', 'The request body contains a NUL character.'), undefined)
      return
    }
    parseJson(request, body as string, done)
  })
}

/**
 * The access log: one line per answered request ("request completed", or
 * "request errored" at error), carrying what Fastify's two default lines
 * did (method, URL without query, host and peer; status; time taken), and
 * for a refusal that names them, which user, session or client it
 * concerned (`refusal`: code and internal detail, never sent). Half
 * the logging cost per request, which at `info` is a good part of what a
 * cached request costs.
 */
class AccessLog extends LogController {
  override incomingRequest (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else if (request.refusal !== null) reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime, refusal: request.refusal }, 'request completed')
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}

/** Every security event leaves a log line: replays, throttled sign-ins and failed password checks as warnings, the rest as information. */
function logSecurityEvents (log: FastifyBaseLogger, events: SecurityEvents): void {
  events.subscribe((event) => {
    if (event.type === 'refresh_token_reused') {
      log.warn({ event }, 'superseded refresh token replayed: session revoked')
    } else if (event.type === 'sign_in_throttled') {
      log.warn({ event }, 'sign-in throttled')
    } else if (event.type === 'password_check_failed') {
      log.warn({ event }, 'signed-in caller failed a password check')
    } else {
      log.info({ event }, `security event: ${event.type}`)
    }
  })
}
