/**
 * Two real vouch processes of one deployment: one database, the same signing
 * key, refresh secret and issuer, each its own DATA_DIR; `env` adds the
 * invalidation bus (REDIS_URL) or anything else. Everything is removed at
 * teardown. A test that starts them with REDIS_URL guards with
 * requireServicesOf (./services.ts) first.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from './app.js'
import { call, startVouch, type VouchProcess } from './process.js'
import { REDIS_URL } from './services.js'

export { REDIS_URL }

/** How a revocation reaches the other instance, and how soon it must: each multi-instance suite runs once per variant. */
export interface BusVariant { name: string, env: Record<string, string>, boundMs: number }

const PROPAGATION_MS = 1000

export const BUS_VARIANTS: readonly BusVariant[] = [
  { name: 'Redis pub/sub', env: { REDIS_URL }, boundMs: PROPAGATION_MS },
  TEST_PROVIDER === 'postgresql'
    ? { name: 'PostgreSQL LISTEN/NOTIFY', env: {}, boundMs: PROPAGATION_MS }
    : { name: 'no channel, cache TTL 1 s', env: { REVOCATION_CACHE_TTL: '1' }, boundMs: 1000 + 500 },
]

/** True once `instance` refuses `token` as revoked. */
export const rejectedBy = (instance: VouchProcess, token: string) => async (): Promise<boolean> => {
  const res = await call(instance.base, '/auth/me', { token })
  return res.status === 401 && res.body.code === 'token_revoked'
}

/** A deployment's shared configuration on a scratch database; `start(name)` starts one more instance of it (its own DATA_DIR). */
export async function instanceDeployment (t: Test, env: Record<string, string>): Promise<{ start (name: string): Promise<VouchProcess> }> {
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-instances-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // Instances of one deployment share the key material and the URL clients reach them at (the issuer) through configuration.
  const shared = {
    DATABASE_URL: database.url,
    PUBLIC_URL: 'http://vouch.test',
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
    ...env,
  }
  return { start: (name) => startVouch(t, { ...shared, DATA_DIR: path.join(dir, name) }) }
}

export async function twoInstances (t: Test, env: Record<string, string>): Promise<[VouchProcess, VouchProcess]> {
  const deployment = await instanceDeployment(t, env)
  const a = await deployment.start('a')
  const b = await deployment.start('b')
  return [a, b]
}

/** Polls until `check` is true, for at most three times `boundMs`; resolves with the milliseconds it took (Infinity if never). */
export async function within (boundMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < boundMs * 3) {
    if (await check()) return performance.now() - start
    await sleep(5)
  }
  return Infinity
}
