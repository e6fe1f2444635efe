/**
 * The service's configuration: the only module that reads environment
 * variables. `loadConfig(env)` validates everything once and returns a frozen
 * object; a bad value throws a ConfigError naming the variable, and the
 * server exits with that message. Every variable is documented, with its
 * default, in .env.example.
 */
import { availableParallelism } from 'node:os'
import { weakSecretReason } from './crypto/secret-strength.js'
import type { ClientAuthThrottleSettings } from './limits/client-auth-throttle.js'
import { defaultMaxConnections, openFileLimit, type ConnectionLimits } from './http/connections.js'

export type SigningAlgorithm = 'EdDSA' | 'ES256'

export interface Argon2Params {
  /** KiB */
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
}

/** Allowance for clocks of instances that differ, in the revocation feed's overlap. */
const FEED_CLOCK_SKEW_MS = 2000

export interface Config {
  readonly host: string
  readonly port: number
  /**
   * Where clients reach vouch, without a trailing slash: PUBLIC_URL, else
   * JWT_ISSUER when it is an http(s) URL, else http://HOST:PORT. The base of
   * the metadata's URLs, of RESET_URL's default and of the default issuer.
   */
  readonly publicUrl: string
  /** True when publicUrl was derived from HOST and PORT (nothing said where clients reach vouch). */
  readonly publicUrlDerived: boolean
  /** Worker processes started by src/cluster.ts. */
  readonly workers: number
  /** Where Prometheus scrapes GET /metrics, never the public port: off while METRICS_PORT is unset. */
  readonly metrics: { readonly host: string, readonly port: number | undefined }
  readonly logLevel: string
  readonly trustProxy: boolean | number | string
  /** How long a client may hold a connection, and how many one process accepts. */
  readonly connections: ConnectionLimits
  readonly databaseUrl: string
  readonly database: {
    /** Most connections per process (PostgreSQL). */
    readonly poolSize: number
    /** Milliseconds before the server cancels a statement (PostgreSQL). */
    readonly statementTimeout: number
    /** Milliseconds to wait for a connection. */
    readonly connectTimeout: number
  }
  /** Where generated key material lives (signing keys, refresh-token secret). */
  readonly dataDir: string
  readonly tokens: {
    /** `iss`: JWT_ISSUER, else publicUrl. */
    readonly issuer: string
    readonly audience: string
    /** `client_id` (RFC 9068): the client the tokens are issued to, vouch's own first-party applications. */
    readonly clientId: string
    readonly algorithm: SigningAlgorithm
    /** SIGNING_KEYS, unparsed: one or more private keys as JWK (JSON) or PKCS#8 PEM. */
    readonly signingKeys: string | undefined
    /** REFRESH_TOKEN_SECRET, base64url, at least 32 bytes. */
    readonly refreshTokenSecret: string | undefined
    /** VOUCH_MASTER_KEY, base64url, at least 32 bytes: seals the key material stored in the database (else DATA_DIR/master-key). */
    readonly masterKey: string | undefined
    /** Seconds between automatic rotations of the stored signing keys; 0 = only `vouch keys rotate`. */
    readonly keyRotationInterval: number
    /** Seconds between re-reads of the stored keys (the safety net behind the bus's "keys changed"). */
    readonly keyReloadInterval: number
    /** Seconds. */
    readonly accessTokenTtl: number
    /** Seconds of clock skew tolerated when checking exp/nbf/iat. */
    readonly clockSkew: number
    /** Seconds a rotated-in key is published before it signs. */
    readonly keyPublishDelay: number
  }
  readonly sessions: {
    /** Absolute session lifetime, seconds. */
    readonly lifetime: number
    /** Seconds without a refresh after which a session lapses; 0 turns the limit off. */
    readonly idleTimeout: number
    /** Seconds during which an already-rotated refresh token is a benign duplicate. */
    readonly reuseGraceWindow: number
    /** MAX_SESSIONS_PER_USER: most active sessions per user, the least recently used revoked past it; 0 = no limit. */
    readonly maxPerUser: number
  }
  readonly cache: {
    /** Seconds a cached session check may be trusted (the bound if an invalidation is lost); 0 = no cache. */
    readonly ttl: number
    readonly maxEntries: number
    /** Bytes the cached entries may take, estimated (src/domain/session-cache.ts). */
    readonly maxBytes: number
  }
  readonly rateLimits: {
    /** Requests per IP per window on /auth routes. */
    readonly perIp: number
    /** Seconds. */
    readonly window: number
    readonly logins: {
      readonly perAccountAndIp: number
      readonly perAccount: number
      /** Seconds. */
      readonly window: number
    }
    /** Failed resource-server client authentications (introspection, the revocation feed). */
    readonly clients: ClientAuthThrottleSettings
  }
  readonly resets: {
    /** Seconds a reset token is valid. */
    readonly ttl: number
    /** Start a session for the caller after a successful reset. */
    readonly signIn: boolean
    /** Reset requests per email, and per IP, per window. */
    readonly perEmail: number
    readonly perIp: number
    /** Seconds. */
    readonly window: number
  }
  readonly mail: {
    readonly from: string
    /** The page of the reset link; `?token=…` is appended. */
    readonly resetUrl: string
    /** A template file replacing templates/password-reset.txt. */
    readonly resetTemplate: string | undefined
    /** A template file replacing templates/new-device.txt (the new-device alert). */
    readonly newDeviceTemplate: string | undefined
    /** SMTP; without it, messages go to DATA_DIR/outbox as .eml files. */
    readonly smtp: {
      readonly host: string
      readonly port: number
      /** TLS from the start (port 465); otherwise STARTTLS when offered. */
      readonly secure: boolean
      /** Refuse to send unless STARTTLS succeeds. */
      readonly requireTls: boolean
      readonly user: string | undefined
      readonly password: string | undefined
    } | undefined
  }
  /** Resource servers' client credentials (introspection, revocation feed): id → secret. */
  readonly resourceClients: ReadonlyMap<string, string>
  /** Admin clients' credentials (the admin API, /admin): id → secret; separate from resourceClients. */
  readonly adminClients: ReadonlyMap<string, string>
  readonly events: {
    /** EVENT_RETENTION_DAYS: days security events are kept; 0 = logged only, not stored. */
    readonly retentionDays: number
    /** NEW_DEVICE_ALERTS: mail the user when a new device signs in. */
    readonly newDeviceAlerts: boolean
  }
  /** Milliseconds between revocation-feed heartbeats (and its database polls). */
  readonly feedHeartbeat: number
  /** Milliseconds each revocation-feed poll re-reads before its cursor (see src/domain/revocation-feed.ts). */
  readonly feedOverlap: number
  /** Most revocation-feed streams per process (below connections.maxConnections); further ones are answered 503. */
  readonly feedMaxStreams: number
  /** Most session-watch streams (GET /auth/session/watch) per process, counted apart from the feed's; further ones are answered 503. */
  readonly sessionWatchMaxStreams: number
  /** Origins allowed to call vouch from a browser; empty = CORS closed. */
  readonly corsOrigins: readonly string[]
  /**
   * Cookie mode for browsers (see src/http/plugins/refresh-cookie.ts): the
   * refresh token travels only in an HttpOnly cookie, for requests that carry
   * `Vouch-Mode: cookie` from one of `origins`.
   */
  readonly cookies: {
    /** COOKIE_ORIGINS, plus vouch's own origins while the account page is on; empty = cookie mode off. */
    readonly origins: readonly string[]
    /**
     * vouch's own origins, as a browser on this machine may name them: the
     * public URL's, and for an http loopback URL (local development, a
     * derived default) the same port at localhost, 127.0.0.1 and [::1] too.
     * Same-origin to the account page: they need no CORS.
     */
    readonly ownOrigins: readonly string[]
    /** COOKIE_SECURE; default true, except when PUBLIC_URL is http:// on a loopback host (local development). */
    readonly secure: boolean
  }
  /** ACCOUNT_PAGE: serve the account page at /account (and the reset page that RESET_URL points to by default). */
  readonly accountPage: boolean
  /** API_DOCS: serve the OpenAPI document at /openapi.json and its reference page at /docs. */
  readonly apiDocs: boolean
  /** Optional: shares invalidations and rate-limit counters between instances. */
  readonly redisUrl: string | undefined
  /** Prefix of every Redis key and channel, so deployments can share a Redis. */
  readonly redisKeyPrefix: string
  /** Milliseconds a Redis command may wait for its answer; a hung Redis is noticed within twice that. */
  readonly redisCommandTimeout: number
  readonly passwords: {
    readonly minLength: number
    readonly maxLength: number
    readonly argon2: Argon2Params
  }
}

/** A configuration mistake; the message names the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  constructor (readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`)
  }
}

/** OWASP's minimum for argon2id: m = 19 MiB, t = 2, p = 1. */
export const OWASP_ARGON2_MINIMUM: Argon2Params = Object.freeze({ memoryCost: 19_456, timeCost: 2, parallelism: 1 })

export const PASSWORD_MAX_LENGTH = 256

type Env = Readonly<Record<string, string | undefined>>

export function loadConfig (env: Env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }

  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = read(name)
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`)
    const value = Number(raw)
    if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
    return value
  }

  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = read(name) ?? fallback
    if (!allowed.includes(raw as T)) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`)
    return raw as T
  }

  const bool = (name: string, fallback: boolean): boolean => {
    const raw = read(name)
    if (raw === undefined) return fallback
    if (raw === 'true' || raw === '1') return true
    if (raw === 'false' || raw === '0') return false
    throw new ConfigError(name, `expected true or false, got "${raw}"`)
  }

  const smtp = (): Config['mail']['smtp'] => {
    const host = read('SMTP_HOST')
    if (host === undefined) return undefined
    const secure = bool('SMTP_SECURE', false)
    return {
      host,
      port: int('SMTP_PORT', secure ? 465 : 587, 1, 65_535),
      secure,
      requireTls: bool('SMTP_REQUIRE_TLS', false),
      user: read('SMTP_USER'),
      password: read('SMTP_PASSWORD'),
    }
  }

  const origins = (name: string): string[] => {
    const raw = read(name)
    if (raw === undefined) return []
    const list = raw.split(',').map((origin) => origin.trim()).filter(Boolean)
    for (const origin of list) {
      if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
        throw new ConfigError(name, `"${origin}" is not an origin such as https://app.example.com`)
      }
    }
    return list
  }

  const cookies = (publicUrl: string, accountPage: boolean): Config['cookies'] => {
    const own = new URL(publicUrl)
    const local = own.protocol === 'http:' && isLoopback(own.hostname)
    const ownOrigins = local
      ? [own.origin, ...['localhost', '127.0.0.1', '[::1]'].map((host) => `http://${host}${own.port === '' ? '' : `:${own.port}`}`)]
      : [own.origin]
    const list = origins('COOKIE_ORIGINS')
    if (accountPage) list.push(...ownOrigins)
    return { origins: [...new Set(list)], ownOrigins: [...new Set(ownOrigins)], secure: bool('COOKIE_SECURE', !local) }
  }

  const clients = (name: 'RESOURCE_CLIENTS' | 'ADMIN_CLIENTS'): Map<string, string> => {
    const raw = read(name)
    const map = new Map<string, string>()
    for (const pair of raw?.split(',').map((p) => p.trim()).filter(Boolean) ?? []) {
      const colon = pair.indexOf(':')
      const id = pair.slice(0, colon)
      const secret = pair.slice(colon + 1)
      if (colon <= 0 || !/^[\w.-]+$/.test(id)) {
        throw new ConfigError(name, 'expected id:secret pairs separated by commas')
      }
      const weak = weakSecretReason(secret)
      if (weak !== undefined) {
        throw new ConfigError(name, `the secret of client "${id}" is too weak (${weak}): ` +
          'use at least 32 random characters (128 bits or more), e.g. openssl rand -base64 32')
      }
      map.set(id, secret)
    }
    return map
  }

  const url = (name: string, fallback: string): string => {
    const raw = read(name) ?? fallback
    if (!URL.canParse(raw)) throw new ConfigError(name, `must be a URL, got "${raw}"`)
    return raw
  }

  /** Where clients reach vouch: said by PUBLIC_URL (or an http(s) JWT_ISSUER), or derived from where it listens. */
  const publicUrl = (host: string, port: number): { url: string, derived: boolean } => {
    const raw = read('PUBLIC_URL')
    if (raw !== undefined) {
      const parsed = URL.canParse(raw) ? new URL(raw) : undefined
      if (parsed === undefined || !/^https?:$/.test(parsed.protocol) || raw.includes('?') || raw.includes('#') ||
          parsed.username !== '' || parsed.password !== '') {
        throw new ConfigError('PUBLIC_URL', `must be an http(s) URL without query, fragment or credentials, such as https://auth.example.com, got "${raw}"`)
      }
      return { url: withoutTrailingSlash(parsed), derived: false }
    }
    const issuer = read('JWT_ISSUER')
    if (issuer !== undefined && /^https?:\/\/[^?#]*$/i.test(issuer) && URL.canParse(issuer)) {
      return { url: withoutTrailingSlash(new URL(issuer)), derived: false }
    }
    if (port === 0) {
      throw new ConfigError('PUBLIC_URL', 'PORT=0 lets the system choose the port at start-up, so the issuer cannot be ' +
        'derived from it: set PUBLIC_URL (or JWT_ISSUER)')
    }
    // A wildcard address is not one a client can use; on this machine, localhost reaches it.
    const name = host === '0.0.0.0' || host === '::' || host === '[::]' ? 'localhost' : host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
    const derived = `http://${name}:${port}`
    if (!URL.canParse(derived)) throw new ConfigError('HOST', `cannot be part of a URL (${derived}); set PUBLIC_URL`)
    return { url: withoutTrailingSlash(new URL(derived)), derived: true }
  }

  const clientId = (): string => {
    const raw = read('JWT_CLIENT_ID') ?? 'vouch'
    // RFC 6749 appendix A.1: client_id = *VSCHAR.
    if (!/^[\x20-\x7E]{1,255}$/.test(raw)) {
      throw new ConfigError('JWT_CLIENT_ID', `must be 1 to 255 printable ASCII characters, got "${raw}"`)
    }
    return raw
  }

  const databaseUrl = (): string => {
    const raw = read('DATABASE_URL') ?? 'file:./data/vouch.db'
    const sqlite = raw.startsWith('file:') && raw.length > 'file:'.length
    const postgres = /^postgres(ql)?:\/\//.test(raw) && URL.canParse(raw)
    if (!sqlite && !postgres) {
      throw new ConfigError('DATABASE_URL', 'must be a SQLite file URL (file:./data/vouch.db) or a postgresql:// URL')
    }
    return raw
  }

  const trustProxy = (): boolean | number | string => {
    const raw = read('TRUST_PROXY')
    if (raw === undefined || raw === 'false') return false
    if (raw === 'true') return true
    if (/^\d+$/.test(raw)) return Number(raw)
    if (/^[\d.:a-fA-F/,\s]+$/.test(raw)) return raw
    throw new ConfigError('TRUST_PROXY', `expected true, false, a hop count or a list of addresses, got "${raw}"`)
  }

  const redisUrl = (): string | undefined => {
    const raw = read('REDIS_URL')
    if (raw !== undefined && (!/^rediss?:\/\//.test(raw) || !URL.canParse(raw))) {
      throw new ConfigError('REDIS_URL', `must be a redis:// or rediss:// URL, got "${raw}"`)
    }
    return raw
  }

  const secret = (name: string): string | undefined => {
    const raw = read(name)
    if (raw !== undefined && (!/^[A-Za-z0-9_-]+$/.test(raw) || Buffer.from(raw, 'base64url').length < 32)) {
      throw new ConfigError(name, 'must be base64url encoding at least 32 random bytes')
    }
    return raw
  }

  const connections = (): ConnectionLimits => {
    const requestTimeout = int('HTTP_REQUEST_TIMEOUT_MS', 10_000, 100, 600_000)
    const headersTimeout = int('HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000)
    if (headersTimeout > requestTimeout) {
      throw new ConfigError('HTTP_HEADERS_TIMEOUT_MS', `must not exceed HTTP_REQUEST_TIMEOUT_MS (${requestTimeout}), got ${headersTimeout}`)
    }
    return {
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 5000, 100, 600_000),
      idleTimeout: int('HTTP_IDLE_TIMEOUT_MS', 30_000, 200, 3_600_000),
      maxConnections: int('HTTP_MAX_CONNECTIONS', defaultMaxConnections(openFileLimit()), 1, 1_000_000),
    }
  }

  /**
   * A cap on never-ending streams per process, by default a share of the
   * connection cap (the feed's half, the session watch's quarter), so that
   * streams never hold the connections that sign-ins need.
   */
  const streamCap = (name: string, streams: string, share: number, maxConnections: number): number => {
    const value = int(name, Math.max(1, Math.floor(maxConnections * share)), 1, 1_000_000)
    if (read(name) !== undefined && value >= maxConnections) {
      throw new ConfigError(name, `must be below HTTP_MAX_CONNECTIONS (${maxConnections}), ` +
        `or ${streams} can hold every connection; got ${value}`)
    }
    return value
  }

  const argon2: Argon2Params = {
    memoryCost: int('ARGON2_MEMORY_KIB', OWASP_ARGON2_MINIMUM.memoryCost, OWASP_ARGON2_MINIMUM.memoryCost, 4_194_304),
    timeCost: int('ARGON2_TIME_COST', OWASP_ARGON2_MINIMUM.timeCost, OWASP_ARGON2_MINIMUM.timeCost, 100),
    parallelism: int('ARGON2_PARALLELISM', OWASP_ARGON2_MINIMUM.parallelism, 1, 16),
  }

  const database = {
    poolSize: int('DB_POOL_SIZE', 10, 1, 1000),
    statementTimeout: int('DB_STATEMENT_TIMEOUT_MS', 5000, 100, 600_000),
    connectTimeout: int('DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
  }
  const httpLimits = connections()

  const host = read('HOST') ?? '127.0.0.1'
  const port = int('PORT', 3000, 0, 65_535)
  const served = publicUrl(host, port)
  const accountPage = bool('ACCOUNT_PAGE', true)
  const resourceClients = clients('RESOURCE_CLIENTS')
  const adminClients = clients('ADMIN_CLIENTS')
  for (const id of adminClients.keys()) {
    // One id, one kind: an id in both would make "which credentials are these" depend on the secret.
    if (resourceClients.has(id)) throw new ConfigError('ADMIN_CLIENTS', `client "${id}" is also in RESOURCE_CLIENTS; admin clients need ids of their own`)
  }

  const config: Config = {
    host,
    port,
    publicUrl: served.url,
    publicUrlDerived: served.derived,
    workers: int('WORKERS', availableParallelism(), 1, 256),
    metrics: { host: read('METRICS_HOST') ?? '127.0.0.1', port: read('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 0, 65_535) },
    logLevel: oneOf('LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    trustProxy: trustProxy(),
    connections: httpLimits,
    databaseUrl: databaseUrl(),
    database,
    dataDir: read('DATA_DIR') ?? './data',
    tokens: {
      issuer: url('JWT_ISSUER', served.url),
      audience: read('JWT_AUDIENCE') ?? 'vouch',
      clientId: clientId(),
      algorithm: oneOf<SigningAlgorithm>('SIGNING_ALG', 'EdDSA', ['EdDSA', 'ES256']),
      signingKeys: read('SIGNING_KEYS'),
      refreshTokenSecret: secret('REFRESH_TOKEN_SECRET'),
      masterKey: secret('VOUCH_MASTER_KEY'),
      keyRotationInterval: int('KEY_ROTATION_INTERVAL', 30 * 86_400, 0, 10 * 365 * 86_400),
      keyReloadInterval: int('KEY_RELOAD_INTERVAL', 30, 1, 3600),
      accessTokenTtl: int('ACCESS_TOKEN_TTL', 900, 30, 86_400),
      clockSkew: int('CLOCK_SKEW', 5, 0, 300),
      keyPublishDelay: int('KEY_PUBLISH_DELAY', 600, 0, 86_400),
    },
    sessions: {
      lifetime: int('SESSION_LIFETIME', 1_209_600, 60),
      idleTimeout: int('SESSION_IDLE_TIMEOUT', 0, 0),
      reuseGraceWindow: int('REFRESH_REUSE_GRACE', 10, 0, 300),
      // Off by default: turned on, it revokes sessions a deployment may rely
      // on (scripts that sign in per run and never sign out); see .env.example.
      maxPerUser: int('MAX_SESSIONS_PER_USER', 0, 0, 100_000),
    },
    cache: {
      ttl: int('REVOCATION_CACHE_TTL', 5, 0, 300),
      maxEntries: int('REVOCATION_CACHE_SIZE', 100_000, 1, 10_000_000),
      maxBytes: int('REVOCATION_CACHE_MAX_BYTES', 32 * 1024 * 1024, 64 * 1024, 2 ** 40),
    },
    rateLimits: {
      perIp: int('RATE_LIMIT_MAX', 3000, 1),
      window: int('RATE_LIMIT_WINDOW', 60, 1, 86_400),
      logins: {
        perAccountAndIp: int('LOGIN_MAX_FAILURES', 20, 1),
        perAccount: int('LOGIN_MAX_ACCOUNT_FAILURES', 100, 1),
        window: int('LOGIN_FAILURE_WINDOW', 900, 1, 86_400),
      },
      clients: {
        perClientAndIp: int('CLIENT_AUTH_MAX_FAILURES', 10, 1),
        perClient: int('CLIENT_AUTH_MAX_CLIENT_FAILURES', 100, 1),
        window: int('CLIENT_AUTH_FAILURE_WINDOW', 900, 1, 86_400),
      },
    },
    resets: {
      ttl: int('RESET_TOKEN_TTL', 1800, 60, 86_400),
      signIn: bool('RESET_SIGNS_IN', false),
      perEmail: int('RESET_MAX_PER_EMAIL', 5, 1),
      perIp: int('RESET_MAX_PER_IP', 20, 1),
      window: int('RESET_RATE_WINDOW', 3600, 1, 86_400),
    },
    mail: {
      from: read('MAIL_FROM') ?? 'vouch <no-reply@localhost>',
      resetUrl: url('RESET_URL', `${served.url}/account/reset-password`),
      resetTemplate: read('RESET_EMAIL_TEMPLATE'),
      newDeviceTemplate: read('NEW_DEVICE_EMAIL_TEMPLATE'),
      smtp: smtp(),
    },
    resourceClients,
    adminClients,
    events: {
      retentionDays: int('EVENT_RETENTION_DAYS', 90, 0, 36_500),
      newDeviceAlerts: bool('NEW_DEVICE_ALERTS', true),
    },
    feedHeartbeat: int('REVOCATION_FEED_HEARTBEAT_MS', 5000, 100, 60_000),
    // The longest a write's timestamp can precede its commit (a pool connection, then the statement or transaction), plus clock skew.
    feedOverlap: int('REVOCATION_FEED_OVERLAP_MS', database.connectTimeout + database.statementTimeout + FEED_CLOCK_SKEW_MS, 0, 3_600_000),
    feedMaxStreams: streamCap('REVOCATION_FEED_MAX_STREAMS', 'feed streams', 1 / 2, httpLimits.maxConnections),
    sessionWatchMaxStreams: streamCap('SESSION_WATCH_MAX_STREAMS', 'session watches', 1 / 4, httpLimits.maxConnections),
    corsOrigins: origins('CORS_ORIGINS'),
    cookies: cookies(served.url, accountPage),
    accountPage,
    apiDocs: bool('API_DOCS', true),
    redisUrl: redisUrl(),
    redisKeyPrefix: read('REDIS_KEY_PREFIX') ?? 'vouch:',
    redisCommandTimeout: int('REDIS_COMMAND_TIMEOUT_MS', 50, 50, 60_000),
    passwords: {
      minLength: int('PASSWORD_MIN_LENGTH', 8, 8, PASSWORD_MAX_LENGTH),
      maxLength: PASSWORD_MAX_LENGTH,
      argon2,
    },
  }
  if (config.connections.idleTimeout < 2 * config.feedHeartbeat) {
    throw new ConfigError('HTTP_IDLE_TIMEOUT_MS', `must be at least twice REVOCATION_FEED_HEARTBEAT_MS (${config.feedHeartbeat}), ` +
      `or revocation-feed streams, silent between heartbeats, are cut; got ${config.connections.idleTimeout}`)
  }
  return deepFreeze(config)
}

/**
 * Values that are valid but unsafe in production, as sentences for the
 * start-up log (src/start.ts warns with each).
 */
export function configWarnings (config: Config): string[] {
  const warnings: string[] = []
  const everyAddress = typeof config.trustProxy === 'string' &&
    config.trustProxy.split(',').some((entry) => /^(0\.0\.0\.0|::)\/0$/.test(entry.trim()))
  if (config.trustProxy === true || everyAddress) {
    warnings.push(`TRUST_PROXY=${String(config.trustProxy)} trusts any X-Forwarded-For header: a client can choose the IP ` +
      'that the per-IP limits count and the device list shows. List the proxies\' addresses instead ' +
      '(TRUST_PROXY=10.0.0.0/8), or their number (TRUST_PROXY=1) if vouch can be reached only through them.')
  }
  if (config.publicUrlDerived && !isLoopback(config.host)) {
    warnings.push(`Neither PUBLIC_URL nor JWT_ISSUER is set: vouch signs tokens as issuer ${config.tokens.issuer}, and its ` +
      `metadata points there, derived from HOST=${config.host} and PORT=${config.port}. Resource servers that reach ` +
      'vouch at another URL refuse every token: a production deployment must set PUBLIC_URL to the URL clients use ' +
      '(e.g. PUBLIC_URL=https://auth.example.com).')
  }
  const publicUrl = new URL(config.publicUrl)
  if (!config.publicUrlDerived && config.cookies.origins.length > 0 && config.cookies.secure && publicUrl.protocol === 'http:') {
    warnings.push(`PUBLIC_URL=${config.publicUrl} is plain http on a host that is not this machine: browsers drop the Secure ` +
      'refresh cookie it sets, so cookie mode (and the account page, which uses it) cannot keep anyone signed in. Serve ' +
      'vouch over https (PUBLIC_URL=https://…), or turn the account page off (ACCOUNT_PAGE=false) and leave COOKIE_ORIGINS empty.')
  }
  if (!config.accountPage && config.mail.resetUrl === `${config.publicUrl}/account/reset-password`) {
    warnings.push('ACCOUNT_PAGE=false turns off the reset page that RESET_URL points to by default: the links in reset mails ' +
      'would lead nowhere. Set RESET_URL to your own reset page (it receives the token as ?token=…).')
  }
  const stored = config.tokens.signingKeys === undefined || config.tokens.refreshTokenSecret === undefined
  if (stored && config.tokens.masterKey === undefined && config.databaseUrl.startsWith('postgres')) {
    warnings.push('VOUCH_MASTER_KEY is not set: the key material in the PostgreSQL database is sealed under a master key ' +
      `generated into ${config.dataDir}/master-key. Every instance of the deployment needs that same secret: set ` +
      'VOUCH_MASTER_KEY to it on each (an instance with another one refuses to start).')
  }
  return warnings
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || /^127(\.\d{1,3}){3}$/.test(host) || host === '::1' || host === '[::1]'
}

/** A URL's text without the slash URL adds after a bare origin (or that PUBLIC_URL ended with). */
function withoutTrailingSlash (url: URL): string {
  return url.href.replace(/\/+$/, '')
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
