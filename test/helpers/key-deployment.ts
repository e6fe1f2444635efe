/**
 * A deployment whose signing keys live in its database (no SIGNING_KEYS, no
 * REFRESH_TOKEN_SECRET): real vouch processes sharing DATABASE_URL, and
 * VOUCH_MASTER_KEY where the test says so, each with its own DATA_DIR. For
 * the suites under test/keys/.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { createDb, type Db } from '../../src/db/client.js'
import { call, startVouch, type VouchProcess } from './process.js'

/** A fresh master secret, as VOUCH_MASTER_KEY takes it (base64url, 32 bytes). */
export const newMasterKey = (): string => randomBytes(32).toString('base64url')

/** Instances of one deployment are reached at one URL: the issuer their tokens carry. */
export const PUBLIC_URL = 'http://vouch.test'

/** A temp folder, removed at teardown. */
export async function tempDir (t: Test, prefix = 'vouch-keys-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Prisma on `url` (already migrated by a server's start), disconnected at teardown. */
export function dbOf (t: Test, url: string): Db {
  const db = createDb(url)
  t.teardown(() => db.$disconnect())
  return db
}

/** The kids the instance publishes, in order. */
export async function jwksKids (instance: VouchProcess): Promise<string[]> {
  const res = await call(instance.base, '/.well-known/jwks.json')
  if (res.status !== 200) throw new Error(`JWKS: ${res.status}`)
  return (res.body.keys as Array<{ kid: string }>).map((key) => key.kid)
}

/**
 * Starts a process that is expected to refuse to start: resolves with its
 * exit code and output. Fails the test (and stops the process) if it serves.
 */
export async function startRefused (t: Test, env: Record<string, string>): Promise<{ code: number, output: string }> {
  let started: VouchProcess
  try {
    started = await startVouch(t, env)
  } catch (err) {
    const match = /^vouch exited with (-?\d+):\n([\s\S]*)$/.exec((err as Error).message)
    if (match === null) throw err
    return { code: Number(match[1]), output: match[2]! }
  }
  await started.stop()
  t.fail('the process started and served; it should have refused to start')
  return { code: 0, output: started.output() }
}
