/**
 * The private key material in the database (src/crypto/sealing.ts): read
 * straight from the tables, no column holds a private key's `d` or the
 * refresh secret; a sealed value opens only under the master secret it was
 * sealed with, only unaltered, and only in its own row (its kid or name is
 * the additional data).
 */
import t from 'tap'
import type { Test } from 'tap'
import type { JWK } from 'jose'
import { loadConfig } from '../../src/config.js'
import { createSealer, WrongMasterKey, type Sealer } from '../../src/crypto/sealing.js'
import { createDb, type Db } from '../../src/db/client.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import type { Provider } from '../../src/db/schema.js'
import { openKeyMaterial, openSigningKeyStore } from '../../src/domain/signing-keys.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { newMasterKey, tempDir } from '../helpers/key-deployment.js'
import { requirePostgres } from '../helpers/services.js'

const sealerOf = (masterKey: string) => createSealer(Buffer.from(masterKey, 'base64url'), 'VOUCH_MASTER_KEY')
const keyName = (kid: string) => `signing-key:${kid}`
const SECRET = 'refresh-token-secret'
const secretName = `secret:${SECRET}`

/** `sealed` with one byte of its `part` (0 nonce, 1 ciphertext, 2 tag) flipped. */
function tampered (sealed: string, part: 1 | 2 | 3): string {
  const parts = sealed.split('.')
  const bytes = Buffer.from(parts[part]!, 'base64url')
  bytes[bytes.length >> 1]! ^= 0x01
  parts[part] = bytes.toString('base64url')
  return parts.join('.')
}

function refusesToOpen (t: Test, sealer: Sealer, sealed: string, name: string, label: string): void {
  let opened: string | undefined
  try {
    opened = sealer.open(sealed, name)
  } catch (err) {
    t.type(err, WrongMasterKey, label)
    return
  }
  t.fail(`${label}: it opened, to ${opened.length} characters`)
}

async function database (t: Test, provider: Provider): Promise<{ db: Db, url: string }> {
  const scratch = await createScratchDatabase(provider)
  await applyMigrations(scratch.url)
  const db = createDb(scratch.url)
  t.teardown(async () => {
    await db.$disconnect()
    await scratch.drop()
  })
  return { db, url: scratch.url }
}

async function sealedAtRest (t: Test, provider: Provider): Promise<void> {
  const { db, url } = await database(t, provider)
  const masterKey = newMasterKey()
  const config = loadConfig({ DATABASE_URL: url, DATA_DIR: await tempDir(t), VOUCH_MASTER_KEY: masterKey, LOG_LEVEL: 'silent' })
  // A first start (a key and the refresh secret), then a rotation: two key rows.
  const material = await openKeyMaterial(config, db)
  await (await openSigningKeyStore(config, db)).rotate({ force: true })

  const sealer = sealerOf(masterKey)
  const keyRows = await db.signingKey.findMany({ orderBy: { generation: 'asc' } })
  t.equal(keyRows.length, 2)
  const privateJwks = keyRows.map((row) => JSON.parse(sealer.open(row.sealedPrivateJwk, keyName(row.kid))) as JWK)
  for (const jwk of privateJwks) t.match(jwk, { kty: 'OKP', crv: 'Ed25519', d: /^[\w-]{43}$/ }, 'each row opens, with the right master key, to a private key')
  const secretRow = await db.sealedSecret.findUniqueOrThrow({ where: { name: SECRET } })
  const secret = sealer.open(secretRow.sealed, secretName)
  t.equal(secret, Buffer.from(material.refreshKey).toString('base64url'), 'the secret row opens to the refresh secret in use')

  // Every column of every row, as the database returns it.
  const dump = JSON.stringify([
    await db.$queryRawUnsafe('SELECT * FROM signing_keys'),
    await db.$queryRawUnsafe('SELECT * FROM sealed_secrets'),
  ], (_key, value: unknown) => typeof value === 'bigint' ? String(value) : value)
  t.ok(dump.includes(keyRows[0]!.kid) && dump.includes(keyRows[1]!.kid), 'the dump has the rows')
  for (const [index, jwk] of privateJwks.entries()) {
    t.notOk(dump.includes(jwk.d!), `no column holds key ${index + 1}'s private d`)
    t.notOk(dump.includes(Buffer.from(jwk.d!, 'base64url').toString('hex')), `nor its bytes in hex`)
  }
  t.notOk(dump.includes(secret), 'no column holds the refresh secret')
  t.notOk(dump.includes(Buffer.from(secret, 'base64url').toString('hex')), 'nor its bytes in hex')
  for (const row of keyRows) t.notOk('d' in (JSON.parse(row.publicJwk) as JWK), 'the clear public JWK has no d')

  const other = sealerOf(newMasterKey())
  const [older, newer] = keyRows as [typeof keyRows[0], typeof keyRows[0]]
  for (const row of keyRows) {
    refusesToOpen(t, other, row.sealedPrivateJwk, keyName(row.kid), 'a key row does not open under another master key')
    for (const part of [1, 2, 3] as const) {
      refusesToOpen(t, sealer, tampered(row.sealedPrivateJwk, part), keyName(row.kid), `one byte changed in part ${part} (nonce, body, tag) of a key row: it does not open`)
    }
  }
  refusesToOpen(t, sealer, older.sealedPrivateJwk, keyName(newer.kid), "a key row's sealed value does not open as another kid's")
  refusesToOpen(t, other, secretRow.sealed, secretName, 'the secret does not open under another master key')
  for (const part of [1, 2, 3] as const) {
    refusesToOpen(t, sealer, tampered(secretRow.sealed, part), secretName, `one byte changed in part ${part} of the secret: it does not open`)
  }
  refusesToOpen(t, sealer, secretRow.sealed, 'secret:another-secret', 'the secret does not open under another name')
  refusesToOpen(t, sealer, secretRow.sealed, keyName(older.kid), 'nor as a signing key')
  refusesToOpen(t, sealer, older.sealedPrivateJwk, secretName, 'nor a signing key as the secret')

  // The same in the database: a sealed value moved to another row stops the start, naming VOUCH_MASTER_KEY.
  await db.signingKey.update({ where: { kid: newer.kid }, data: { sealedPrivateJwk: older.sealedPrivateJwk } })
  await t.rejects(openKeyMaterial(config, db), { name: 'ConfigError', variable: 'VOUCH_MASTER_KEY' }, 'a key moved to another row refuses to load')
  await db.signingKey.update({ where: { kid: newer.kid }, data: { sealedPrivateJwk: newer.sealedPrivateJwk } })
  await db.sealedSecret.update({ where: { name: SECRET }, data: { sealed: newer.sealedPrivateJwk } })
  await t.rejects(openKeyMaterial(config, db), { name: 'ConfigError', variable: 'VOUCH_MASTER_KEY' }, 'a key moved into the secret row refuses to load')
  await db.sealedSecret.update({ where: { name: SECRET }, data: { sealed: secretRow.sealed } })
  t.equal((await openKeyMaterial(config, db)).keys.jwks.keys.length, 2, 'with the rows put back, the keys load again')
  t.equal(await db.signingKey.count(), 2, 'no key was added along the way')
}

t.test(`${TEST_PROVIDER}: stored private keys and the refresh secret are not readable without the master secret`, (t) => sealedAtRest(t, TEST_PROVIDER))

if (TEST_PROVIDER !== 'postgresql') {
  t.test('postgresql: the same', async (t) => {
    if (!await requirePostgres(t)) return
    await sealedAtRest(t, 'postgresql')
  })
}
