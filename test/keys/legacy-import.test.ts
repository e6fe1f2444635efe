/**
 * Upgrading from the version that kept its key material in DATA_DIR files
 * (signing-keys.json, refresh-token-secret): the first start of this version
 * imports both into the database, sealed under the master key, and removes
 * the files; access and refresh tokens issued before the upgrade stay valid;
 * later starts import nothing. The previous version is played by a server
 * given that key and secret through SIGNING_KEYS and REFRESH_TOKEN_SECRET,
 * which signs and derives exactly as it did.
 */
import { randomBytes } from 'node:crypto'
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { calculateJwkThumbprint, decodeProtectedHeader } from 'jose'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { loadSealer } from '../../src/crypto/sealing.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import type { Provider } from '../../src/db/schema.js'
import { NO_RATE_LIMITS, TEST_PROVIDER } from '../helpers/app.js'
import { dbOf, PUBLIC_URL, tempDir } from '../helpers/key-deployment.js'
import { call, startVouch } from '../helpers/process.js'
import { requirePostgres } from '../helpers/services.js'

const PASSWORD = 'upgraded in place'
const exists = (file: string) => access(file).then(() => true, () => false)
const IMPORTED = /imported .* into the database, sealed under the master key/

async function upgrade (t: Test, provider: Provider): Promise<void> {
  const database = await createScratchDatabase(provider)
  t.teardown(() => database.drop())
  const dataDir = path.join(await tempDir(t), 'data')
  await mkdir(dataDir, { mode: 0o700 })

  // DATA_DIR as the previous version left it.
  const jwk = await generatePrivateJwk('EdDSA')
  const keySet = JSON.stringify({ keys: [jwk] })
  const secret = randomBytes(32).toString('base64url')
  const keyFile = path.join(dataDir, 'signing-keys.json')
  const secretFile = path.join(dataDir, 'refresh-token-secret')
  await writeFile(keyFile, keySet, { mode: 0o600 })
  await writeFile(secretFile, secret + '\n', { mode: 0o600 })
  const kid = await calculateJwkThumbprint(jwk)
  // One URL for the deployment across restarts (the issuer; ports differ from start to start here).
  const env = { DATABASE_URL: database.url, DATA_DIR: dataDir, PUBLIC_URL, LOG_LEVEL: 'info', ...NO_RATE_LIMITS }

  const previous = await startVouch(t, { ...env, SIGNING_KEYS: keySet, REFRESH_TOKEN_SECRET: secret })
  const issued = await call(previous.base, '/auth/register', { body: { email: 'upgrade@example.com', password: PASSWORD } })
  t.equal(issued.status, 201, 'registered before the upgrade')
  t.equal(decodeProtectedHeader(issued.body.accessToken).kid, kid, 'signed with the key of the file')
  t.equal(await previous.stop(), 0, 'the previous version stopped cleanly')
  const db = dbOf(t, database.url)
  t.equal(await db.signingKey.count(), 0, 'nothing stored before the upgrade')

  const upgraded = await startVouch(t, env)
  t.match(upgraded.output(), IMPORTED, 'the first start logs the import')
  t.equal((await call(upgraded.base, '/auth/me', { token: issued.body.accessToken })).status, 200, 'the access token issued before the upgrade is accepted')
  const refreshed = await call(upgraded.base, '/auth/refresh', { body: { refreshToken: issued.body.refreshToken } })
  t.equal(refreshed.status, 200, 'the refresh token issued before the upgrade refreshes')
  t.equal(decodeProtectedHeader(refreshed.body.accessToken).kid, kid, 'the imported key keeps signing')

  const rows = await db.signingKey.findMany()
  t.match(rows, [{ kid, generation: 1, retiresAt: null }], 'the key is now the one row, under its old kid')
  const sealer = await loadSealer(undefined, dataDir)
  t.same(JSON.parse(sealer.open(rows[0]!.sealedPrivateJwk, `signing-key:${kid}`)), jwk, 'the row seals the very key of the file')
  const stored = await db.sealedSecret.findUniqueOrThrow({ where: { name: 'refresh-token-secret' } })
  t.equal(sealer.open(stored.sealed, 'secret:refresh-token-secret'), secret, 'the refresh secret is stored, sealed')
  t.notOk(await exists(keyFile), 'signing-keys.json was removed')
  t.notOk(await exists(secretFile), 'refresh-token-secret was removed')
  t.ok((await readFile(path.join(dataDir, 'master-key'), 'utf8')).trim().length >= 43, 'a master key was generated into DATA_DIR')
  t.equal(await upgraded.stop(), 0)

  const next = await startVouch(t, env)
  t.notMatch(next.output(), IMPORTED, 'the next start imports nothing')
  t.same(await db.signingKey.findMany(), rows, 'the key row is unchanged')
  t.equal(await db.sealedSecret.count(), 1, 'one stored secret')
  t.equal((await call(next.base, '/auth/me', { token: issued.body.accessToken })).status, 200, 'the pre-upgrade access token is still accepted')
  t.equal((await call(next.base, '/auth/refresh', { body: { refreshToken: refreshed.body.refreshToken } })).status, 200,
    'the refresh token issued after the upgrade refreshes after a restart')
  await next.stop()
}

t.test(`${TEST_PROVIDER}: the first start imports the key file and refresh secret, and tokens issued before stay valid`, (t) => upgrade(t, TEST_PROVIDER))

if (TEST_PROVIDER !== 'postgresql') {
  t.test('postgresql: the same upgrade', async (t) => {
    if (!await requirePostgres(t)) return
    await upgrade(t, 'postgresql')
  })
}
