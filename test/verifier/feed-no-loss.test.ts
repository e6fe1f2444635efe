/**
 * The revocation feed cannot lose a revocation, however long its transaction
 * waited (issue 9, defect 1). A write's timestamp is assigned before it
 * commits; a logout-all that waits on a row lock held by another connection
 * commits seconds after its `updatedAt`. The feed must still deliver it to a
 * connected verifier within 1 s of the commit:
 *
 * - one instance, its overlap set far below the wait: the push after commit
 *   delivers it, whatever the overlap;
 * - two instances, the verifier following the one that did not write: on
 *   PostgreSQL the bus (NOTIFY) pushes it; on SQLite two separate processes
 *   share no bus at all, so the safety-net poll must find it, which it does
 *   because its overlap covers the longest a write can wait.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import pg from 'pg'
import t, { type Test } from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { createVerifier, VerifierError, type Verifier } from '@vouch/verifier'
import { TEST_PROVIDER } from '../helpers/app.js'
import { call, startVouch, type VouchProcess } from '../helpers/process.js'

const CLIENT = { id: 'feed-test', secret: randomBytes(32).toString('base64url') }
const ISSUER = 'http://vouch.test'
/** Longer than the feed's overlap in the first test, and than the first release's fixed 2 s overlap. */
const HOLD_MS = 3000
const TARGET_MS = 1000

async function deployment (t: Test, count: number, env: Record<string, string> = {}): Promise<{ url: string, instances: VouchProcess[] }> {
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-feed-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const instances: VouchProcess[] = []
  // One after the other (the first applies the migrations), sharing DATA_DIR and so the keys.
  for (let i = 0; i < count; i++) {
    instances.push(await startVouch(t, {
      DATABASE_URL: database.url, DATA_DIR: dir, JWT_ISSUER: ISSUER, LOG_LEVEL: 'warn',
      RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '100', ...env,
    }))
  }
  return { url: database.url, instances }
}

/** Holds the write lock on the user's row (PostgreSQL) or the database (SQLite) from another connection until `release`. */
async function holdLock (url: string, userId: string): Promise<{ release (): Promise<void> }> {
  if (url.startsWith('file:')) {
    const sqlite = new Database(url.slice('file:'.length))
    sqlite.prepare('BEGIN IMMEDIATE').run()
    return { release: async () => { sqlite.prepare('COMMIT').run(); sqlite.close() } }
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  await client.query('BEGIN')
  await client.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [userId])
  return { release: async () => { await client.query('COMMIT'); await client.end() } }
}

async function following (t: Test, vouchUrl: string): Promise<Verifier> {
  const verifier = createVerifier({ vouchUrl, issuer: ISSUER, audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret })
  t.teardown(() => verifier.close())
  await verifier.ready()
  return verifier
}

/** Milliseconds until the verifier refuses the token as revoked (Infinity if not within 3 × the target). */
async function revokedAfter (verifier: Verifier, token: string): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < 3 * TARGET_MS) {
    try {
      await verifier.verify(token)
    } catch (err) {
      if (err instanceof VerifierError && err.code === 'token_revoked') return performance.now() - start
      throw err
    }
    await sleep(20)
  }
  return Infinity
}

/** A logout-all on `writer` that waits HOLD_MS on a lock; resolves when it has been answered. */
async function slowLogoutAll (t: Test, url: string, writer: VouchProcess, user: { user: { id: string }, accessToken: string }) {
  const lock = await holdLock(url, user.user.id)
  const answered = call(writer.base, '/auth/logout-all', { method: 'POST', token: user.accessToken })
  await sleep(HOLD_MS)
  await lock.release()
  const res = await answered
  t.equal(res.status, 204, 'the logout-all waited on the lock, then committed')
}

t.test('a revocation that waited longer than the feed overlap on a lock reaches a connected verifier within 1 s of its commit', async (t) => {
  const { url, instances: [vouch] } = await deployment(t, 1, { REVOCATION_FEED_OVERLAP_MS: '300' })
  const alice = (await call(vouch!.base, '/auth/register', { body: { email: 'alice@example.com', password: 'feed no loss' } })).body
  const verifier = await following(t, vouch!.base)
  await verifier.verify(alice.accessToken)
  await slowLogoutAll(t, url, vouch!, alice)
  const after = await revokedAfter(verifier, alice.accessToken)
  t.ok(after < TARGET_MS, `refused ${after.toFixed(0)} ms after the logout-all answered (target < ${TARGET_MS} ms)`)
})

t.test('a slow revocation on another instance reaches a verifier within 1 s, by the bus or by the safety-net poll', async (t) => {
  const { url, instances: [a, b] } = await deployment(t, 2)
  const bob = (await call(b!.base, '/auth/register', { body: { email: 'bob@example.com', password: 'feed no loss' } })).body
  const verifier = await following(t, a!.base)
  await verifier.verify(bob.accessToken)
  await slowLogoutAll(t, url, b!, bob)
  const after = await revokedAfter(verifier, bob.accessToken)
  t.ok(after < TARGET_MS, `refused ${after.toFixed(0)} ms after B answered (target < ${TARGET_MS} ms)`)
  // A verifier that connects afterwards, from the beginning, gets it in its backlog.
  const late = await following(t, a!.base)
  const first = await late.verify(bob.accessToken).then(() => 'accepted', (err: VerifierError) => err.code)
  t.equal(first, 'token_revoked', 'a new verifier knows it from its first state')
})
