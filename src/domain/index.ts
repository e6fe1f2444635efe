/**
 * Wires the domain services together from their dependencies. The HTTP
 * composition root (src/app.ts) and domain-level tests both build the domain
 * through this one function.
 */
import type { Config } from '../config.js'
import type { Db } from '../db/client.js'
import type { KeySet } from '../crypto/keys.js'
import { createPasswordHasher, type PasswordHasher } from '../crypto/passwords.js'
import { createAccessTokens, type AccessTokens } from './access-tokens.js'
import { createAccounts, type Accounts } from './accounts.js'
import { systemClock, type Clock } from './clock.js'
import { createSessions, type Sessions } from './sessions.js'
import { createRevocationFeed, type RevocationFeed } from './revocation-feed.js'
import { createSessionWatch, MAX_WATCHES_PER_USER, WATCH_HEARTBEAT_MS, type SessionWatch } from './session-watch.js'
import { createPasswordResets, type PasswordResets, type ResetNotifier } from './password-resets.js'
import { createMailTransport, type MailTransport } from '../mail/transport.js'
import { createResetNotifier } from '../mail/reset-mail.js'
import { createNewDeviceAlerts, type NewDeviceAlerts } from '../mail/new-device-mail.js'
import { memoryCounters, type Counters } from '../limits/counters.js'
import { createLoginThrottle } from '../limits/login-throttle.js'
import { createSecurityEvents, type SecurityEvents } from './security-events.js'
import { createSessionCache, localBus, type InvalidationBus, type SessionCache } from './session-cache.js'
import { createTokenVersions } from './token-version.js'
import { createAdministration, type Administration } from './administration.js'
import { createApiClients, type ApiClients } from './api-clients.js'

export interface DomainDeps {
  config: Config
  db: Db
  keys: KeySet
  /** The key rotated refresh secrets are derived under. */
  refreshKey: Uint8Array
  clock?: Clock
  passwords?: PasswordHasher
  /** How other instances are told of revocations; a lone instance needs none. */
  bus?: InvalidationBus
  /** Where failed sign-ins and reset requests are counted; in process memory by default (Redis for several instances). */
  counters?: Counters
  /** Sends vouch's mail (reset links, new-device alerts); by default as configured (SMTP, or the DATA_DIR/outbox folder). */
  mail?: MailTransport
  /** Delivers password-reset links; by default by `mail`. */
  notifier?: ResetNotifier
  /** Told of failures in background work (sending reset mail and new-device alerts). */
  onBackgroundError?: (err: unknown) => void
  /** Where security events are stored and published; by default the database, kept config.events.retentionDays. */
  events?: SecurityEvents
}

export interface Domain {
  accessTokens: AccessTokens
  sessions: Sessions
  accounts: Accounts
  passwordResets: PasswordResets
  revocationFeed: RevocationFeed
  sessionWatch: SessionWatch
  cache: SessionCache
  events: SecurityEvents
  administration: Administration
  apiClients: ApiClients
  /** The new-device alert mail; undefined when NEW_DEVICE_ALERTS is off. */
  newDeviceAlerts: NewDeviceAlerts | undefined
}

export function createDomain ({
  config, db, keys, refreshKey, clock = systemClock, bus = localBus(), counters = memoryCounters(),
  passwords = createPasswordHasher(config.passwords.argon2),
  mail = createMailTransport(config.mail, config.dataDir),
  notifier = createResetNotifier(config.mail, mail),
  onBackgroundError = () => {},
  events = createSecurityEvents({ db, clock, settings: config.events, onListenerError: onBackgroundError }),
}: DomainDeps): Domain {
  const accessTokens = createAccessTokens(keys, {
    issuer: config.tokens.issuer,
    audience: config.tokens.audience,
    clientId: config.tokens.clientId,
    ttl: config.tokens.accessTokenTtl,
    clockSkew: config.tokens.clockSkew,
  }, clock)
  const cache = createSessionCache({ ttlMs: config.cache.ttl * 1000, maxEntries: config.cache.maxEntries, maxBytes: config.cache.maxBytes }, bus)
  const versions = createTokenVersions({ db, cache, events })
  const sessions = createSessions({ db, clock, accessTokens, refreshKey, settings: config.sessions, cache, events, versions })
  const accounts = createAccounts({
    db,
    passwords,
    sessions,
    policy: config.passwords,
    throttle: createLoginThrottle(counters, config.rateLimits.logins),
    versions,
    events,
  })
  const administration = createAdministration({ db, clock, versions, events, cache, settings: config.sessions })
  const apiClients = createApiClients({ db, clock, reserved: (id) => config.resourceClients.has(id) || config.adminClients.has(id) })
  const passwordResets = createPasswordResets({
    db, clock, passwords, policy: config.passwords, sessions, versions, notifier, counters,
    settings: config.resets, onBackgroundError,
  })
  const revocationFeed = createRevocationFeed({
    db, clock, cache, bus,
    settings: {
      maxTokenAge: config.tokens.accessTokenTtl + config.tokens.clockSkew,
      heartbeatMs: config.feedHeartbeat,
      overlapMs: config.feedOverlap,
      maxStreams: config.feedMaxStreams,
    },
    onError: (message, err) => onBackgroundError(err),
  })
  const sessionWatch = createSessionWatch({
    feed: revocationFeed, clock,
    settings: {
      maxWatchers: config.sessionWatchMaxStreams,
      maxPerUser: MAX_WATCHES_PER_USER,
      // Well within the idle timeout, or a quiet stream is cut.
      heartbeatMs: Math.min(WATCH_HEARTBEAT_MS, Math.floor(config.connections.idleTimeout / 2)),
      // The feed does not send a revocation again within 2 overlaps; a check may have read a cached state that old.
      recentMs: Math.max(2 * config.feedOverlap, config.cache.ttl * 1000),
    },
  })

  // Mail, after the sign-in committed, when a new device signs in (src/mail/new-device-mail.ts). The link opens the
  // account page's device list; without an account page the mail asks the user to review their devices, unlinked.
  const newDeviceAlerts = config.events.newDeviceAlerts
    ? createNewDeviceAlerts({
      events, db, transport: mail, clock, onError: onBackgroundError,
      settings: { devicesUrl: config.accountPage ? `${config.publicUrl}/account#devices` : undefined, template: config.mail.newDeviceTemplate },
    })
    : undefined

  return { accessTokens, sessions, accounts, passwordResets, revocationFeed, sessionWatch, cache, events, administration, apiClients, newDeviceAlerts }
}
