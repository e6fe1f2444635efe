/**
 * One deployment, keys in its PostgreSQL database: instances that share only
 * DATABASE_URL and VOUCH_MASTER_KEY (and the URL clients reach them at, the
 * issuer) sign and verify with the same keys and refresh secret; nothing
 * else is distributed. An instance with another master secret, or none (it
 * generates one of its own), refuses to start and names VOUCH_MASTER_KEY,
 * and never adds a key of its own.
 */
import { access } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { dbOf, jwksKids, newMasterKey, PUBLIC_URL, startRefused, tempDir } from '../helpers/key-deployment.js'
import { call, startVouch } from '../helpers/process.js'
import { requirePostgres } from '../helpers/services.js'

const PASSWORD = 'shared database keys'
const exists = (file: string) => access(file).then(() => true, () => false)

if (await requirePostgres(t)) {
  const database = await createScratchDatabase('postgresql')
  t.teardown(() => database.drop())
  const dir = await tempDir(t)
  const masterKey = newMasterKey()
  // No SIGNING_KEYS, no REFRESH_TOKEN_SECRET: the keys are the database's.
  const shared = { DATABASE_URL: database.url, VOUCH_MASTER_KEY: masterKey, PUBLIC_URL, LOG_LEVEL: 'warn' }
  // Started on the file's test, so that both serve every subtest.
  const a = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'a') })
  const b = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'b') })
  const db = dbOf(t, database.url)
  const rowsOf = async () => ({
    keys: (await db.signingKey.findMany({ orderBy: { generation: 'asc' } })).map((row) => `${row.kid}:${row.generation}:${row.sealedPrivateJwk}`),
    secrets: (await db.sealedSecret.findMany({ orderBy: { name: 'asc' } })).map((row) => `${row.name}:${row.sealed}`),
  })

  t.test('tokens issued by either instance are accepted by the other, and both publish the same JWKS', async (t) => {
    const fromA = await call(a.base, '/auth/register', { body: { email: 'a@example.com', password: PASSWORD } })
    const fromB = await call(b.base, '/auth/register', { body: { email: 'b@example.com', password: PASSWORD } })
    t.equal(fromA.status, 201)
    t.equal(fromB.status, 201)

    t.equal((await call(b.base, '/auth/me', { token: fromA.body.accessToken })).status, 200, "B accepts A's access token")
    t.equal((await call(a.base, '/auth/me', { token: fromB.body.accessToken })).status, 200, "A accepts B's access token")

    const refreshed = await call(b.base, '/auth/refresh', { body: { refreshToken: fromA.body.refreshToken } })
    t.equal(refreshed.status, 200, "A's refresh token refreshes at B")
    t.equal((await call(a.base, '/auth/me', { token: refreshed.body.accessToken })).status, 200, "A accepts the access token B issued on refresh")
    const again = await call(a.base, '/auth/refresh', { body: { refreshToken: refreshed.body.refreshToken } })
    t.equal(again.status, 200, "B's rotated refresh token refreshes at A")

    const [kidsA, kidsB] = [await jwksKids(a), await jwksKids(b)]
    t.equal(kidsA.length, 1, 'one key')
    t.same(kidsB, kidsA, 'the same JWKS')
    t.equal(await db.signingKey.count(), 1, 'one key row for the deployment')
    t.same((await db.sealedSecret.findMany()).map((row) => row.name), ['refresh-token-secret'], 'one refresh secret for the deployment')
    for (const name of ['a', 'b']) {
      t.notOk(await exists(path.join(dir, name, 'master-key')), `${name}: no master key was generated (VOUCH_MASTER_KEY is set)`)
    }
  })

  t.test('an instance with another VOUCH_MASTER_KEY refuses to start, names VOUCH_MASTER_KEY and adds no key', async (t) => {
    const before = await rowsOf()
    const { code, output } = await startRefused(t, { ...shared, VOUCH_MASTER_KEY: newMasterKey(), DATA_DIR: path.join(dir, 'c') })
    t.not(code, 0, `exits non-zero (${code})`)
    t.match(output, /vouch: invalid configuration: VOUCH_MASTER_KEY: /, 'the message names VOUCH_MASTER_KEY')
    t.same(await rowsOf(), before, 'no key row or secret was added or changed')
    t.same(await jwksKids(a), before.keys.map((row) => row.split(':')[0]), 'the running instances keep their key')
  })

  t.test('an instance without VOUCH_MASTER_KEY (it generates one into its own DATA_DIR) refuses to start likewise', async (t) => {
    const before = await rowsOf()
    const { VOUCH_MASTER_KEY: _, ...withoutMasterKey } = shared
    const own = path.join(dir, 'd')
    const { code, output } = await startRefused(t, { ...withoutMasterKey, DATA_DIR: own })
    t.ok(await exists(path.join(own, 'master-key')), 'it did generate a master key of its own')
    t.not(code, 0, `exits non-zero (${code})`)
    t.match(output, /vouch: invalid configuration: VOUCH_MASTER_KEY: /, 'the message names VOUCH_MASTER_KEY')
    t.same(await rowsOf(), before, 'no key row or secret was added or changed')
    t.equal((await call(b.base, '/auth/login', { body: { email: 'a@example.com', password: PASSWORD } })).status, 200, 'the deployment still signs in')
  })
}
