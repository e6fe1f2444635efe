/**
 * What a benchmarked vouch needs besides its build: a throw-away database,
 * a data folder (its signing keys), a refresh-token secret and a fixed
 * issuer, so that several processes on the same instance (one process, a
 * cluster, a profiled copy) accept each other's tokens; and users.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createScratchDatabase } from '../../src/db/scratch.js'
import type { Provider } from '../../src/db/schema.js'
import { Client, sleep } from './harness.js'

export const BENCH_ISSUER = 'http://vouch.bench'
export const BENCH_PASSWORD = 'benchmark password'

export interface Instance {
  provider: Provider
  /** DATABASE_URL, DATA_DIR, REFRESH_TOKEN_SECRET, JWT_ISSUER: the same for every process of this instance. */
  env: Record<string, string>
  drop (): Promise<void>
}

export async function createInstance (provider: Provider): Promise<Instance> {
  const database = await createScratchDatabase(provider)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-bench-data-'))
  return {
    provider,
    env: {
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      JWT_ISSUER: BENCH_ISSUER,
    },
    async drop () {
      await database.drop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

/**
 * A sign-in or registration: vouch caps the password hashes in flight and
 * answers 503 past the cap ("retry shortly"), which a client retries.
 */
export async function hashingRequest (client: Client, pathname: string, body: unknown, expected: number): Promise<Record<string, unknown>> {
  for (let attempt = 0; ; attempt++) {
    const res = await client.request('POST', pathname, { body })
    if (res.status === expected) return JSON.parse(res.body) as Record<string, unknown>
    if (res.status !== 503 || attempt >= 50) throw new Error(`POST ${pathname}: ${res.status} ${res.body.slice(0, 300)}`)
    await sleep(50 + Math.random() * 100)
  }
}

export interface BenchUser { email: string, accessToken: string, refreshToken: string }

/** Registers `count` users (POST /auth/register, 8 at a time: argon2 runs for each). */
export async function registerUsers (base: string, count: number, prefix: string): Promise<BenchUser[]> {
  const client = new Client(base, 8)
  try {
    const users: BenchUser[] = new Array(count)
    let next = 0
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++
        const email = `${prefix}-${i}@bench.example`
        const body = await hashingRequest(client, '/auth/register', { email, password: BENCH_PASSWORD }, 201)
        users[i] = { email, accessToken: body.accessToken as string, refreshToken: body.refreshToken as string }
      }
    }))
    return users
  } finally {
    client.close()
  }
}

/** One prebuilt request per user, for autocannon to cycle through. */
export const bearerRequests = (users: BenchUser[]) => users.map((u) => ({ headers: { authorization: `Bearer ${u.accessToken}` } }))
