/**
 * Builds the whole application on a fresh, migrated SQLite file in a temp
 * folder, with cheap argon2 parameters and a controllable clock. The OWASP
 * floor for argon2 is enforced by loadConfig; the cheap parameters here are
 * a test-only override (one test runs at production cost).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { createDomain } from '../../src/domain/index.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createDb, type Db } from '../../src/db/client.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import type { Provider } from '../../src/db/schema.js'
import { applyMigrations } from '../../src/db/migrate.js'
import type { KeySet } from '../../src/crypto/keys.js'
import { openKeyMaterial } from '../../src/domain/signing-keys.js'
import type { PasswordHasher } from '../../src/crypto/passwords.js'
import type { InvalidationBus } from '../../src/domain/session-cache.js'
import type { SecurityEvents } from '../../src/domain/security-events.js'
import { createTestClock, type TestClock } from './clock.js'

/**
 * Every suite sends thousands of requests from one address; rate limits are
 * lifted unless a test sets them (test/http/rate-limits.test.ts does).
 */
export const NO_RATE_LIMITS = Object.freeze({
  RATE_LIMIT_MAX: '1000000000', LOGIN_MAX_FAILURES: '1000000000', LOGIN_MAX_ACCOUNT_FAILURES: '1000000000',
  CLIENT_AUTH_MAX_FAILURES: '1000000000', CLIENT_AUTH_MAX_CLIENT_FAILURES: '1000000000',
})

export const CHEAP_ARGON2 = Object.freeze({ memoryCost: 1024, timeCost: 1, parallelism: 1 })

export interface TestContext {
  app: FastifyInstance
  db: Db
  clock: TestClock
  config: Config
  keys: KeySet
  dir: string
}

export interface TestOptions {
  /** Extra environment variables for loadConfig. */
  env?: Record<string, string>
  /** Keep production argon2 parameters. */
  productionArgon2?: boolean
  logger?: FastifyBaseLogger
  /** Called with every SQL statement the app's database client sends. */
  onQuery?: (sql: string) => void
  /** Use this database client instead of the migrated temp database's. */
  db?: Db
  /** Use these keys instead of generating new ones. */
  keys?: KeySet
  passwords?: PasswordHasher
  bus?: InvalidationBus
  /** Receives the domain's security events. */
  events?: SecurityEvents
}

/** Which database the suite runs on: VOUCH_TEST_DATABASE=postgresql, or SQLite by default. */
export const TEST_PROVIDER: Provider = process.env.VOUCH_TEST_DATABASE === 'postgresql' ? 'postgresql' : 'sqlite'

/**
 * A migrated, empty database of the suite's provider (a SQLite file, or a
 * throw-away PostgreSQL database), and a temp folder for key material; both
 * removed at teardown. With `onQuery`, every SQL statement is reported.
 */
export async function createTestDatabase (t: Test, onQuery?: (sql: string) => void): Promise<{ db: Db, dir: string, url: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-test-'))
  const scratch = await createScratchDatabase(TEST_PROVIDER)
  await applyMigrations(scratch.url)
  const db = createDb(scratch.url, onQuery ? { onQuery } : {})
  t.teardown(async () => {
    await db.$disconnect()
    await scratch.drop()
    await rm(dir, { recursive: true, force: true })
  })
  return { db, dir, url: scratch.url }
}

/** Everything the app is built from: database, config, keys and clock. */
async function createTestDeps (t: Test, options: TestOptions) {
  const { db, dir, url } = await createTestDatabase(t, options.onQuery)
  const loaded = loadConfig({ DATABASE_URL: url, DATA_DIR: dir, LOG_LEVEL: 'silent', ...NO_RATE_LIMITS, ...options.env })
  const config: Config = options.productionArgon2
    ? loaded
    : { ...loaded, passwords: { ...loaded.passwords, argon2: CHEAP_ARGON2 } }
  const material = await openKeyMaterial(config, db)
  const keys = options.keys ?? material.keys
  const { refreshKey } = material
  return {
    db: options.db ?? db,
    dir, config, keys, refreshKey, clock: createTestClock(),
    ...(options.passwords && { passwords: options.passwords }),
    ...(options.bus && { bus: options.bus }),
    ...(options.events && { events: options.events }),
  }
}

export async function createTestApp (t: Test, options: TestOptions = {}): Promise<TestContext> {
  const deps = await createTestDeps(t, options)
  const app = await buildApp({ ...deps, ...(options.logger && { logger: options.logger }) })
  t.teardown(() => app.close())
  const { db, clock, config, keys, dir } = deps
  return { app, db, clock, config, keys, dir }
}

/** The domain services without HTTP, on the same kind of database. */
export async function createTestDomain (t: Test, options: TestOptions = {}) {
  const deps = await createTestDeps(t, options)
  return { ...deps, domain: createDomain(deps) }
}
