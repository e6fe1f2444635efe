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
import { memoryCounters, type Counters } from '../limits/counters.js'
import { createLoginThrottle } from '../limits/login-throttle.js'
import { createSessionCache, localBus, type InvalidationBus, type SessionCache } from './session-cache.js'

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
  /** Where failed sign-ins are counted; in process memory by default (Redis for several instances). */
  counters?: Counters
}

export interface Domain {
  accessTokens: AccessTokens
  sessions: Sessions
  accounts: Accounts
  cache: SessionCache
}

export function createDomain ({
  config, db, keys, refreshKey, clock = systemClock, passwords, bus = localBus(), counters = memoryCounters(),
}: DomainDeps): Domain {
  const accessTokens = createAccessTokens(keys, {
    issuer: config.tokens.issuer,
    audience: config.tokens.audience,
    ttl: config.tokens.accessTokenTtl,
    clockSkew: config.tokens.clockSkew,
  }, clock)
  const cache = createSessionCache({ ttlMs: config.cache.ttl * 1000, maxEntries: config.cache.maxEntries }, bus)
  const sessions = createSessions({ db, clock, accessTokens, refreshKey, settings: config.sessions, cache })
  const accounts = createAccounts({
    db,
    passwords: passwords ?? createPasswordHasher(config.passwords.argon2),
    sessions,
    policy: config.passwords,
    throttle: createLoginThrottle(counters, config.rateLimits.logins),
  })
  return { accessTokens, sessions, accounts, cache }
}
