/**
 * Signing keys (src/crypto/keys.ts, src/domain/signing-keys.ts): created in
 * the database when nothing is configured (a key file of an earlier version
 * is imported), loaded from SIGNING_KEYS as JWK or PKCS#8 PEM otherwise; the
 * first key signs, every key is published, the JWKS holds public parameters
 * only, and a kid is the key's RFC 7638 thumbprint.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import {
  SignJWT, calculateJwkThumbprint, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair, importJWK, jwtVerify,
  type JWK, type JWTPayload,
} from 'jose'
import { ConfigError, type SigningAlgorithm } from '../../src/config.js'
import { buildKeySet, loadConfiguredKeySet, type KeySet } from '../../src/crypto/keys.js'
import { loadSealer } from '../../src/crypto/sealing.js'
import { createSigningKeyStore } from '../../src/domain/signing-keys.js'
import type { Db } from '../../src/db/client.js'
import { createTestApp, createTestDatabase } from '../helpers/app.js'
import { me, register } from '../helpers/client.js'

const KEY_FILE = 'signing-keys.json'

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function privateJwk (algorithm: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true })
  return exportJWK(privateKey)
}

async function privatePem (algorithm: SigningAlgorithm): Promise<string> {
  const { privateKey } = await generateKeyPair(algorithm, { extractable: true })
  return exportPKCS8(privateKey)
}

function withoutPrivate (jwk: JWK): JWK {
  const { d: _d, ...rest } = jwk
  return rest
}

const fromEnv = (signingKeys: string, algorithm: SigningAlgorithm = 'EdDSA') => loadConfiguredKeySet(signingKeys, algorithm)

/** What a start with no SIGNING_KEYS loads: the keys stored in `db` (created, or imported from `dir`'s key file, on first start). */
async function fromStore (db: Db, dir: string, algorithm: SigningAlgorithm = 'EdDSA'): Promise<KeySet> {
  const store = createSigningKeyStore(db, await loadSealer(undefined, dir), { algorithm, publishDelay: 0, retireAfter: 60, rotationInterval: 0, dataDir: dir })
  return buildKeySet(algorithm, (await store.load()).keys)
}

async function database (t: Test): Promise<{ db: Db, dir: string }> {
  return createTestDatabase(t)
}

/** A stored row's private JWK, opened with `dir`'s master key. */
async function storedPrivateJwk (db: Db, dir: string, kid: string): Promise<JWK> {
  const row = await db.signingKey.findUniqueOrThrow({ where: { kid } })
  return JSON.parse((await loadSealer(undefined, dir)).open(row.sealedPrivateJwk, `signing-key:${kid}`)) as JWK
}

/** Signs with the key set's current key and checks the result against `publicJwk`. */
async function signsWith (t: Test, keys: KeySet, publicJwk: JWK): Promise<void> {
  const token = await new SignJWT({ probe: true })
    .setProtectedHeader({ alg: keys.algorithm, kid: keys.current.kid })
    .sign(keys.current.privateKey)
  const { payload } = await jwtVerify(token, publicJwk, { algorithms: [keys.algorithm] })
  t.equal(payload.probe, true, 'the current key signs, and its public half verifies')
}

async function expectConfigError (t: Test, promise: Promise<unknown>, variable: string, label: string): Promise<void> {
  try {
    await promise
    t.fail(`${label}: should have thrown`)
  } catch (err) {
    t.type(err, ConfigError, `${label}: throws a ConfigError (got ${(err as Error).name}: ${(err as Error).message})`)
    t.match((err as Error).message, new RegExp(`\\b${variable}\\b`), `${label}: the message names ${variable}`)
  }
}

t.test('with no SIGNING_KEYS a key is created in the database and reused on the next start', async (t) => {
  const { db, dir } = await database(t)
  const first = await fromStore(db, dir)
  const rows = await db.signingKey.findMany()
  t.equal(rows.length, 1)
  t.match(rows[0], { kid: first.current.kid, algorithm: 'EdDSA', generation: 1 })
  t.match(JSON.parse(rows[0]!.publicJwk), { kty: 'OKP', crv: 'Ed25519', x: String }, 'the public key is stored in clear')
  t.notOk('d' in JSON.parse(rows[0]!.publicJwk))
  t.match(await storedPrivateJwk(db, dir, first.current.kid), { kty: 'OKP', crv: 'Ed25519', d: String }, 'the private key opens with the master key')

  const second = await fromStore(db, dir)
  t.equal(second.current.kid, first.current.kid, 'the same key is used again')
  t.same(second.jwks, first.jwks)
  t.equal(await db.signingKey.count(), 1, 'no key is added')
})

t.test('the JWKS holds public parameters only, with kid, alg and use: "sig"', async (t) => {
  const { db, dir } = await database(t)
  for (const algorithm of ['EdDSA', 'ES256'] as const) {
    const keys = await fromStore(db, dir, algorithm)
    t.equal(keys.jwks.keys.length, 1)
    const [published] = keys.jwks.keys
    t.same(Object.keys(published!).sort(),
      (algorithm === 'EdDSA' ? ['alg', 'crv', 'kid', 'kty', 'use', 'x'] : ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']).sort(),
      `${algorithm}: exactly the public members`)
    t.notOk('d' in published!, `${algorithm}: no private parameter`)
    t.match(published, { kid: keys.current.kid, alg: algorithm, use: 'sig' })
  }
})

t.test('the JWKS endpoint publishes the same public-only keys', async (t) => {
  const { app, keys } = await createTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  const body = res.json() as { keys: JWK[] }
  t.same(body.keys, keys.jwks.keys)
  t.notMatch(res.body, /"d"/, 'no private parameter in the response')
})

t.test('a kid is the RFC 7638 thumbprint of the key', async (t) => {
  const { db, dir } = await database(t)
  const keys = await fromStore(db, dir)
  const stored = await storedPrivateJwk(db, dir, keys.current.kid)
  t.equal(keys.current.kid, await calculateJwkThumbprint(stored))
  t.equal(keys.current.kid, await calculateJwkThumbprint(withoutPrivate(stored)), 'the same from the public half')

  const ec = await privateJwk('ES256')
  const ecKeys = await fromEnv(JSON.stringify(ec), 'ES256')
  t.equal(ecKeys.current.kid, await calculateJwkThumbprint(ec))
  // A kid supplied with the key is not trusted: the thumbprint wins.
  const named = await fromEnv(JSON.stringify({ ...await privateJwk('EdDSA'), kid: 'my-key' }))
  t.not(named.current.kid, 'my-key')
  t.equal(named.jwks.keys[0]!.kid, named.current.kid)
})

t.test('SIGNING_KEYS as one private JWK loads it', async (t) => {
  const jwk = await privateJwk('EdDSA')
  const keys = await fromEnv(JSON.stringify(jwk))
  t.equal(keys.algorithm, 'EdDSA')
  t.equal(keys.current.kid, await calculateJwkThumbprint(jwk))
  t.equal(keys.jwks.keys.length, 1)
  await signsWith(t, keys, withoutPrivate(jwk))
})

t.test('SIGNING_KEYS as an array, a {keys: [...]} set or two PEM blocks: the first key signs, all are published', async (t) => {
  for (const algorithm of ['EdDSA', 'ES256'] as const) {
    const newer = await privateJwk(algorithm)
    const older = await privateJwk(algorithm)
    const kids = [await calculateJwkThumbprint(newer), await calculateJwkThumbprint(older)]
    for (const [form, raw] of [['array', JSON.stringify([newer, older])], ['set', JSON.stringify({ keys: [newer, older] })]] as const) {
      const keys = await fromEnv(raw, algorithm)
      t.equal(keys.current.kid, kids[0], `${algorithm} ${form}: the first key signs`)
      t.same(keys.jwks.keys.map((key) => key.kid), kids, `${algorithm} ${form}: both keys published, in order`)
      t.same([...keys.byKid.keys()], kids, `${algorithm} ${form}: both keys verify`)
      await signsWith(t, keys, withoutPrivate(newer))
    }

    const pemNewer = await privatePem(algorithm)
    const pemOlder = await privatePem(algorithm)
    const single = await fromEnv(pemNewer, algorithm)
    t.equal(single.jwks.keys.length, 1, `${algorithm} one PEM block: one key`)
    const both = await fromEnv(`${pemNewer}\n${pemOlder}`, algorithm)
    t.equal(both.jwks.keys.length, 2, `${algorithm} two PEM blocks: two keys`)
    t.equal(both.current.kid, single.current.kid, `${algorithm} two PEM blocks: the first signs`)
    t.equal(both.jwks.keys[0]!.alg, algorithm)
    const olderAlone = await fromEnv(pemOlder, algorithm)
    t.equal(both.jwks.keys[1]!.kid, olderAlone.current.kid, `${algorithm} two PEM blocks: the second is published`)
    t.notOk(both.jwks.keys.some((key) => 'd' in key), 'no private parameter published')
  }
})

t.test('a token signed by the older configured key still verifies through the service', async (t) => {
  const newer = await privateJwk('EdDSA')
  const older = await privateJwk('EdDSA')
  const { app, keys } = await createTestApp(t, { env: { SIGNING_KEYS: JSON.stringify([newer, older]) } })
  const olderKid = await calculateJwkThumbprint(older)
  t.equal(keys.current.kid, await calculateJwkThumbprint(newer))

  const account = await register(app)
  t.equal(decodeProtectedHeader(account.accessToken).kid, keys.current.kid, 'new tokens are signed by the first key')
  const claims = JSON.parse(Buffer.from(account.accessToken.split('.')[1]!, 'base64url').toString('utf8')) as JWTPayload
  const privateKey = await importJWK(older, 'EdDSA')
  const oldToken = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: olderKid })
    .sign(privateKey)
  const res = await me(app, oldToken)
  t.equal(res.statusCode, 200, 'the older key is still honoured')
  t.equal(res.json().id, account.user.id)

  // The older key under the newer key's kid is a forgery, not a rotation.
  const mislabelled = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: keys.current.kid })
    .sign(privateKey)
  t.equal((await me(app, mislabelled)).statusCode, 401)
})

t.test('bad SIGNING_KEYS values stop start-up with a ConfigError naming SIGNING_KEYS', async (t) => {
  const ed = await privateJwk('EdDSA')
  const ec = await privateJwk('ES256')
  const cases: Array<[string, string, SigningAlgorithm]> = [
    ['invalid JSON', '{"kty": "OKP",', 'EdDSA'],
    ['not JSON at all', 'my-secret-key', 'EdDSA'],
    ['a public-only key', JSON.stringify(withoutPrivate(ed)), 'EdDSA'],
    ['a public key among private ones', JSON.stringify([ed, withoutPrivate(await privateJwk('EdDSA'))]), 'EdDSA'],
    ['an ES256 key while SIGNING_ALG is EdDSA', JSON.stringify(ec), 'EdDSA'],
    ['an Ed25519 key while SIGNING_ALG is ES256', JSON.stringify(ed), 'ES256'],
    ['a symmetric key', JSON.stringify({ kty: 'oct', k: Buffer.alloc(32, 1).toString('base64url') }), 'EdDSA'],
    ['an empty array', '[]', 'EdDSA'],
    ['an empty key set', '{"keys": []}', 'EdDSA'],
    ['a number', '42', 'EdDSA'],
    ['PEM garbage', '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----', 'EdDSA'],
    ['a PEM header with no key block', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', 'EdDSA'],
    ['an ES256 PEM key while SIGNING_ALG is EdDSA', await privatePem('ES256'), 'EdDSA'],
    ['an Ed25519 PEM key while SIGNING_ALG is ES256', await privatePem('EdDSA'), 'ES256'],
  ]
  for (const [label, raw, algorithm] of cases) {
    await expectConfigError(t, fromEnv(raw, algorithm), 'SIGNING_KEYS', label)
  }
})

// Split out from the list above because it fails today: `JSON.parse('null')`
// reaches `(parsed).keys` and throws a bare TypeError that does not name the
// variable (src/crypto/keys.ts, parseConfiguredKeys).
t.test('SIGNING_KEYS=null stops start-up with a ConfigError naming SIGNING_KEYS', async (t) => {
  await expectConfigError(t, fromEnv('null'), 'SIGNING_KEYS', 'JSON null')
})

t.test('switching SIGNING_ALG to ES256 creates an ES256 key and keeps the Ed25519 key', async (t) => {
  const { db, dir } = await database(t)
  const ed = await fromStore(db, dir, 'EdDSA')
  const es = await fromStore(db, dir, 'ES256')
  t.equal(es.algorithm, 'ES256')
  t.match(es.jwks.keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256' }], 'only the ES256 key is loaded and published')
  t.equal(es.jwks.keys.length, 1)
  t.equal(await db.signingKey.count(), 2, 'the table now holds both keys')

  // Switching back picks up the kept key: tokens it signed still verify.
  const back = await fromStore(db, dir, 'EdDSA')
  t.equal(back.current.kid, ed.current.kid)
  const again = await fromStore(db, dir, 'ES256')
  t.equal(again.current.kid, es.current.kid, 'and no further key is created')
  t.equal(await db.signingKey.count(), 2)
})

t.test('an unreadable or corrupt key file of an earlier version stops start-up with a ConfigError naming DATA_DIR', async (t) => {
  const { db } = await database(t)
  const corrupt = await tempDir(t)
  await writeFile(path.join(corrupt, KEY_FILE), '{ not json')
  await expectConfigError(t, fromStore(db, corrupt), 'DATA_DIR', 'not JSON')

  const directory = await tempDir(t)
  await mkdir(path.join(directory, KEY_FILE))
  await expectConfigError(t, fromStore(db, directory), 'DATA_DIR', 'a directory')
  t.equal(await db.signingKey.count(), 0, 'no key is created in place of keys that could not be read')
})

t.test('a key file that is JSON but not a key set stops start-up with a ConfigError naming DATA_DIR', async (t) => {
  const { db } = await database(t)
  for (const content of ['{}', '[]', '{"keys": "x"}', '{"keys": [null]}']) {
    const dir = await tempDir(t)
    await writeFile(path.join(dir, KEY_FILE), content)
    await expectConfigError(t, fromStore(db, dir), 'DATA_DIR', content)
  }
})

t.test('the generated master key is owner-only, in an owner-only folder', async (t) => {
  const dir = path.join(await tempDir(t), 'nested', 'data')
  const { db } = await database(t)
  await fromStore(db, dir)
  t.equal((await stat(path.join(dir, 'master-key'))).mode & 0o777, 0o600)
  t.equal((await stat(dir)).mode & 0o777, 0o700)
})
