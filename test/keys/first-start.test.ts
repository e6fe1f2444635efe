/**
 * The first start is atomic: two processes started at the same moment on one
 * empty DATA_DIR and one empty database (no VOUCH_MASTER_KEY, no
 * SIGNING_KEYS) end with one master-key file that both use, one key row,
 * one refresh secret, and the same kid in their JWKS. On SQLite (a file in
 * that DATA_DIR, the embedded default) and on PostgreSQL.
 */
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { decodeProtectedHeader } from 'jose'
import { loadSealer } from '../../src/crypto/sealing.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { dbOf, jwksKids, PUBLIC_URL, tempDir } from '../helpers/key-deployment.js'
import { call, startVouch, type VouchProcess } from '../helpers/process.js'
import { requirePostgres } from '../helpers/services.js'

const CREATED = 'created the first signing key'

/** When the process logged "ready" (epoch ms). */
const readyAt = (instance: VouchProcess): number =>
  (JSON.parse(instance.output().split('\n').find((line) => line.includes('"msg":"ready"'))!) as { time: number }).time

async function firstStart (t: Test, databaseUrl: (dataDir: string) => Promise<string>): Promise<void> {
  const dataDir = await tempDir(t, 'vouch-first-start-')
  const url = await databaseUrl(dataDir)
  const env = { DATABASE_URL: url, DATA_DIR: dataDir, PUBLIC_URL, LOG_LEVEL: 'info' }
  const [a, b] = await Promise.all([startVouch(t, env), startVouch(t, env)]) as [VouchProcess, VouchProcess]

  const files = (await readdir(dataDir)).filter((name) => name.startsWith('master-key'))
  t.same(files, ['master-key'], 'one master-key file, no temporary file left behind')
  const db = dbOf(t, url)
  const rows = await db.signingKey.findMany()
  t.equal(rows.length, 1, 'exactly one key row')
  t.equal(await db.sealedSecret.count(), 1, 'exactly one refresh secret')
  const [kidsA, kidsB] = [await jwksKids(a), await jwksKids(b)]
  t.same(kidsA, [rows[0]!.kid], "A publishes the row's kid")
  t.same(kidsB, kidsA, 'B publishes the same kid')
  const sealer = await loadSealer(undefined, dataDir)
  t.ok(sealer.open(rows[0]!.sealedPrivateJwk, `signing-key:${rows[0]!.kid}`), 'the row was sealed under the master-key file')
  const created = [a, b].filter((instance) => instance.output().includes(CREATED)).length
  t.equal(created, 1, 'one of the two created the key (the other read it)')
  t.comment(`the two were ready ${Math.abs(readyAt(a) - readyAt(b))} ms apart`)

  // Both work with that key and that refresh secret.
  const user = await call(a.base, '/auth/register', { body: { email: 'first@example.com', password: 'first start' } })
  t.equal(user.status, 201, 'registered at A')
  t.equal(decodeProtectedHeader(user.body.accessToken).kid, rows[0]!.kid, 'A signs with it')
  t.equal((await call(b.base, '/auth/me', { token: user.body.accessToken })).status, 200, "B accepts A's token")
  const refreshed = await call(b.base, '/auth/refresh', { body: { refreshToken: user.body.refreshToken } })
  t.equal(refreshed.status, 200, "B refreshes A's refresh token")
  t.equal((await call(a.base, '/auth/me', { token: refreshed.body.accessToken })).status, 200, "A accepts B's token")
  await Promise.all([a.stop(), b.stop()])
}

t.test('sqlite in the shared DATA_DIR: two processes at once end with one master key and one key', (t) =>
  firstStart(t, async (dataDir) => `file:${path.join(dataDir, 'vouch.db')}`))

t.test('postgresql: two processes at once on an empty database end with one master key and one key', async (t) => {
  if (!await requirePostgres(t)) return
  await firstStart(t, async () => {
    const database = await createScratchDatabase('postgresql')
    t.teardown(() => database.drop())
    return database.url
  })
})
