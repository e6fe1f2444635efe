/**
 * Rotating the stored signing key without downtime (src/domain/signing-keys.ts):
 * the new key is published before it signs, tokens of the old key verify
 * until it retires, and a running instance follows the table without a restart.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { buildKeySet } from '../../src/crypto/keys.js'
import { createAccessTokens } from '../../src/domain/access-tokens.js'
import { loadSealer } from '../../src/crypto/sealing.js'
import { localBus } from '../../src/domain/session-cache.js'
import { createSigningKeyStore, keepKeysCurrent, type SigningKeySettings } from '../../src/domain/signing-keys.js'
import { createDb, type Db } from '../../src/db/client.js'
import { createTestApp, createTestDatabase } from '../helpers/app.js'
import { codeOf, login, me, register } from '../helpers/client.js'

async function storeOf (db: Db, dir: string, settings: Partial<SigningKeySettings> = {}, now?: () => number) {
  return createSigningKeyStore(db, await loadSealer(undefined, dir), {
    algorithm: 'EdDSA', publishDelay: 0, retireAfter: 60, rotationInterval: 0, dataDir: dir, ...settings,
  }, now)
}

t.test('tokens signed before, during and after a rotation verify until their key retires', async (t) => {
  const { app, keys, db, dir } = await createTestApp(t)
  const store = await storeOf(db, dir, { publishDelay: 1.5, retireAfter: 2 })
  const upkeep = keepKeysCurrent(keys, store, { bus: localBus(), intervalMs: 50, onError: (err) => { throw err }, onRotated: () => {} })
  t.teardown(upkeep.stop)
  const jwks = async () => (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid)
  const kidOf = (token: string) => decodeProtectedHeader(token).kid

  const before = await register(app)
  const oldKid = kidOf(before.accessToken)
  const rotation = (await store.rotate({ force: true }))!
  t.same(rotation.retiring.map((r) => r.kid), [oldKid])
  await sleep(300) // the upkeep re-reads the table

  t.same(await jwks(), [rotation.added.kid, oldKid], 'the new key is published before it signs')
  const during = await login(app, before.email)
  t.equal(kidOf(during.accessToken), oldKid, 'the old key still signs during the publication delay')

  await sleep(1500)
  const after = await login(app, before.email)
  t.equal(kidOf(after.accessToken), rotation.added.kid, 'the new key signs once active')
  for (const [name, pair] of [['before', before], ['during', during], ['after', after]] as const) {
    t.equal((await me(app, pair.accessToken)).statusCode, 200, `a token from ${name} the rotation verifies`)
  }

  await sleep(2200)
  t.same(await jwks(), [rotation.added.kid], 'the retired key left the JWKS')
  t.equal(codeOf(await me(app, before.accessToken)), 'invalid_token', "a retired key's tokens are rejected")
  t.equal((await me(app, after.accessToken)).statusCode, 200)

  const next = (await store.rotate({ force: true }))!
  t.same(next.dropped, [oldKid], 'the next rotation deletes the retired key')
  t.equal(await db.signingKey.count(), 2)
})

t.test('by default the replaced key retires an access-token lifetime (plus skew) after the new one signs', async (t) => {
  const { db, dir, config } = await createTestApp(t)
  const now = Date.parse('2030-01-01T00:00:00Z')
  const store = await storeOf(db, dir, {
    publishDelay: config.tokens.keyPublishDelay,
    retireAfter: config.tokens.accessTokenTtl + config.tokens.clockSkew,
  }, () => now)
  const result = (await store.rotate({ force: true }))!
  t.equal(result.added.activatesAt, '2030-01-01T00:10:00.000Z', 'published 600 s before signing')
  t.equal(result.retiring[0]!.retiresAt, '2030-01-01T00:25:05.000Z', 'retired 905 s after the new key signs')
})

t.test('instances racing to rotate a due key: exactly one inserts the next generation, the others find it done', async (t) => {
  const { db, dir, url } = await createTestDatabase(t)
  const at = { now: Date.now() }
  const first = await storeOf(db, dir, { rotationInterval: 60 }, () => at.now)
  const [initial] = (await first.load()).keys
  // Five instances, each with its own database client (its own connection), see the key due at the same moment.
  const clients = Array.from({ length: 5 }, () => createDb(url))
  t.teardown(() => Promise.all(clients.map((client) => client.$disconnect())))
  const stores = await Promise.all(clients.map((client) => storeOf(client, dir, { rotationInterval: 60 }, () => at.now)))
  t.equal(await Promise.all(stores.map((store) => store.rotate())).then((results) => results.filter(Boolean).length), 0,
    'not yet due: nobody rotates')

  at.now += 61_000
  const results = await Promise.all(stores.map((store) => store.rotate()))
  const done = results.filter((result) => result !== undefined)
  t.equal(done.length, 1, 'one rotation')
  t.same(done[0]!.retiring.map((key) => key.kid), [initial!.kid])
  const rows = await db.signingKey.findMany({ orderBy: { generation: 'asc' } })
  t.same(rows.map((row) => row.generation), [1, 2], 'one new generation')
  t.equal(rows[1]!.kid, done[0]!.added.kid)
  t.equal(await Promise.all(stores.map((store) => store.rotate())).then((again) => again.filter(Boolean).length), 0,
    'and the new key is not due again')
})

t.test('a token signed by a key rotated in elsewhere a moment after this instance re-read the table is accepted, not refused', async (t) => {
  const { app, keys, db, dir, config, clock } = await createTestApp(t)
  const here = await storeOf(db, dir)
  const upkeep = keepKeysCurrent(keys, here, { bus: localBus(), intervalMs: 60_000, onError: (err) => { throw err }, onRotated: () => {} })
  t.teardown(upkeep.stop)
  const user = await register(app)
  await upkeep.reload() // this instance has just read the table: the next re-read would be throttled

  // Another instance rotates with no publication delay and signs at once; no bus message reaches this one.
  const elsewhere = await storeOf(db, dir, { publishDelay: 0 })
  const rotated = (await elsewhere.rotate({ force: true }))!
  const theirKeys = buildKeySet('EdDSA', (await elsewhere.load()).keys)
  t.equal(theirKeys.current.kid, rotated.added.kid)
  const { sub, sid, ver } = decodeJwt(user.accessToken) as { sub: string, sid: string, ver: number }
  const token = createAccessTokens(theirKeys, {
    issuer: config.tokens.issuer, audience: config.tokens.audience, clientId: config.tokens.clientId,
    ttl: config.tokens.accessTokenTtl, clockSkew: config.tokens.clockSkew,
  }, clock).issue({ userId: sub, sessionId: sid, version: ver })

  const res = await me(app, token)
  t.equal(res.statusCode, 200, 'the unknown kid made this instance re-read the table (once the throttle allowed) before deciding')
  t.ok(keys.byKid.has(rotated.added.kid))
})
