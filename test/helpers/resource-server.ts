/**
 * A deployment for resource-server tests: vouch on a scratch database of the
 * suite's provider, and examples/resource-server.ts (GET /orders behind
 * @vouch/verifier) following it, both real processes, removed at teardown.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from './app.js'
import { startVouch } from './process.js'

export const RESOURCE_CLIENT = Object.freeze({ id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' })

/** vouch (with `env` on top of the defaults) and a resource server of RESOURCE_CLIENT. */
export async function resourceServerDeployment (t: Test, env: Record<string, string> = {}) {
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-rs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const vouch = await startVouch(t, {
    DATABASE_URL: database.url, DATA_DIR: dir, LOG_LEVEL: 'info',
    RESOURCE_CLIENTS: `${RESOURCE_CLIENT.id}:${RESOURCE_CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '500',
    JWT_ISSUER: 'http://vouch.test', ...env,
  })
  const api = await startVouch(t, {
    VOUCH_URL: vouch.base, VOUCH_ISSUER: 'http://vouch.test', VOUCH_CLIENT_ID: RESOURCE_CLIENT.id, VOUCH_CLIENT_SECRET: RESOURCE_CLIENT.secret,
    LOG_LEVEL: 'warn',
  }, 'examples/resource-server.ts', '/health')
  return { vouch, api }
}
