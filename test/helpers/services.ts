/**
 * The services some tests need besides Node: the PostgreSQL server that
 * createScratchDatabase makes throw-away databases on, a shared Redis
 * (VOUCH_TEST_REDIS_URL), and the redis-server executable for the suites
 * that run a Redis of their own. Each is probed once per test process, with
 * a short timeout. Where one is missing, a test that needs it skips with one
 * line saying what was skipped and how to run it, so that `npm test` passes
 * on a machine with Node alone.
 *
 * With VOUCH_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails
 * the test instead: CI must never pass by skipping. A run on PostgreSQL
 * (VOUCH_TEST_DATABASE=postgresql) always fails without its server: it was
 * asked for PostgreSQL, and a pass that skipped it would have tested nothing.
 */
import { execFile } from 'node:child_process'
import { Redis } from 'ioredis'
import pg from 'pg'
import type { Test } from 'tap'
import { DEFAULT_POSTGRES_ADMIN_URL } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from './app.js'

/** The shared Redis of the multi-instance and rate-limit suites. */
export const REDIS_URL = process.env.VOUCH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** The executable test/helpers/redis-server.ts starts a Redis of the test's own with. */
export const REDIS_SERVER = process.env.VOUCH_REDIS_SERVER ?? 'redis-server'

/** Long enough for a loaded machine's local server, short enough that a missing one costs little. */
const PROBE_TIMEOUT_MS = 2000

const servicesRequired = () => process.env.VOUCH_REQUIRE_SERVICES === '1'

/** Why a service cannot be used, or undefined when it answered. */
type Probe = Promise<string | undefined>

const probes = new Map<string, Probe>()

/** Each service is probed once per test process (tap runs each file in its own). */
function once (key: string, probe: () => Probe): Probe {
  let result = probes.get(key)
  if (result === undefined) {
    result = probe()
    probes.set(key, result)
  }
  return result
}

/** A system error's code (ECONNREFUSED, ENOENT): the message would repeat the address. */
function reasonOf (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as NodeJS.ErrnoException).code
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : err.message || err.name
}

/** A session on the server the scratch databases are made on: connect and SELECT 1. */
async function probePostgres (url: string): Probe {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS, query_timeout: PROBE_TIMEOUT_MS })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (err) {
    // Not awaited: ending a client that never connected may never settle.
    client.end().catch(() => {})
    return reasonOf(err)
  }
  await client.end()
  return undefined
}

/** A PING through the client vouch uses, with no retries and no offline queue. */
async function probeRedis (url: string): Probe {
  const client = new Redis(url, {
    lazyConnect: true, connectTimeout: PROBE_TIMEOUT_MS, commandTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false,
  })
  // The connection's own error (ECONNREFUSED); connect() only rejects with "Connection is closed".
  let failure: unknown
  client.on('error', (err) => { failure ??= err })
  try {
    await client.connect()
    await client.ping()
    return undefined
  } catch (err) {
    return reasonOf(failure ?? err)
  } finally {
    client.disconnect()
  }
}

function probeExecutable (file: string): Probe {
  return new Promise((resolve) => {
    execFile(file, ['--version'], { timeout: PROBE_TIMEOUT_MS }, (err) => resolve(err ? reasonOf(err) : undefined))
  })
}

/** `host:port` of a service URL, without its credentials. */
const addressOf = (url: string) => {
  const { hostname, port, protocol } = new URL(url)
  return `${hostname}:${port || (protocol === 'redis:' ? 6379 : 5432)}`
}

interface Need {
  /** What is missing: "no PostgreSQL server at 127.0.0.1:5432". */
  missing: string
  /** What the skip line says was skipped. */
  tests: string
  /** How to run them. */
  how: string
  /** Why this run cannot do without it whatever VOUCH_REQUIRE_SERVICES says, if it cannot. */
  requiredBy?: string
}

/** True when the service answered; otherwise skips `t` with one line (returning false) or, where required, throws. */
async function need (t: Test, probe: Probe, { missing, tests, how, requiredBy }: Need): Promise<boolean> {
  const reason = await probe
  if (reason === undefined) return true
  const required = requiredBy ?? (servicesRequired() ? 'VOUCH_REQUIRE_SERVICES=1' : undefined)
  if (required !== undefined) throw new Error(`${required} but ${missing} (${reason})`)
  t.plan(0, `${tests} skipped: ${missing} (${reason}; ${how})`)
  return false
}

/** The PostgreSQL server createScratchDatabase('postgresql') uses (user postgres, trust auth). */
export function requirePostgres (t: Test): Promise<boolean> {
  const url = DEFAULT_POSTGRES_ADMIN_URL
  return need(t, once(`postgres ${url}`, () => probePostgres(url)), {
    missing: `no PostgreSQL server at ${addressOf(url)}`,
    tests: 'PostgreSQL tests',
    how: 'start PostgreSQL there, trust auth for user postgres',
    ...(TEST_PROVIDER === 'postgresql' && { requiredBy: 'VOUCH_TEST_DATABASE=postgresql' }),
  })
}

/** The shared Redis (REDIS_URL unless told otherwise). */
export function requireRedis (t: Test, url = REDIS_URL): Promise<boolean> {
  return need(t, once(`redis ${url}`, () => probeRedis(url)), {
    missing: `no Redis at ${addressOf(url)}`,
    tests: 'Redis tests',
    how: 'start Redis there, or set VOUCH_TEST_REDIS_URL',
  })
}

/** The redis-server executable, for the tests that run (and freeze) a Redis of their own. */
export function requireRedisServer (t: Test): Promise<boolean> {
  return need(t, once(`redis-server ${REDIS_SERVER}`, () => probeExecutable(REDIS_SERVER)), {
    missing: `no ${REDIS_SERVER} to start`,
    tests: 'tests on a Redis of their own',
    how: 'install Redis, or set VOUCH_REDIS_SERVER',
  })
}

/** The services an instance started with `env` reaches besides its database: Redis when `env` sets REDIS_URL. */
export function requireServicesOf (t: Test, env: Record<string, string>): Promise<boolean> {
  return env.REDIS_URL === undefined ? Promise.resolve(true) : requireRedis(t, env.REDIS_URL)
}
