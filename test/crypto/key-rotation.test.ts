/**
 * Rotating the signing key without downtime: the new key is published before
 * it signs, tokens of the old key verify until it retires, and a running
 * instance follows the key file without a restart.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { decodeProtectedHeader } from 'jose'
import { rotateKeyFile, watchKeyFile } from '../../src/crypto/key-rotation.js'
import { createTestApp } from '../helpers/app.js'
import { codeOf, login, me, register } from '../helpers/client.js'

t.test('tokens signed before, during and after a rotation verify until their key retires', async (t) => {
  const { app, keys, dir } = await createTestApp(t)
  const stop = watchKeyFile(keys, dir, 50, (err) => { throw err })
  t.teardown(stop)
  const jwks = async () => (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid)
  const kidOf = (token: string) => decodeProtectedHeader(token).kid

  const before = await register(app)
  const oldKid = kidOf(before.accessToken)
  const rotation = await rotateKeyFile({ dataDir: dir, algorithm: 'EdDSA', publishDelay: 1.5, retireAfter: 2 })
  t.same(rotation.retiring.map((r) => r.kid), [oldKid])
  await sleep(300) // the watcher picks the file up

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

  const next = await rotateKeyFile({ dataDir: dir, algorithm: 'EdDSA', publishDelay: 0, retireAfter: 60 })
  t.same(next.dropped, [oldKid], 'the next rotation drops the retired key from the file')
  const stored = JSON.parse(await readFile(path.join(dir, 'signing-keys.json'), 'utf8')).keys
  t.equal(stored.length, 2)
})

t.test('by default the replaced key retires an access-token lifetime (plus skew) after the new one signs', async (t) => {
  const { dir, config } = await createTestApp(t)
  const now = new Date('2030-01-01T00:00:00Z')
  const result = await rotateKeyFile({
    dataDir: dir, algorithm: 'EdDSA', now,
    publishDelay: config.tokens.keyPublishDelay,
    retireAfter: config.tokens.accessTokenTtl + config.tokens.clockSkew,
  })
  t.equal(result.added.activatesAt, '2030-01-01T00:10:00.000Z', 'published 600 s before signing')
  t.equal(result.retiring[0]!.retiresAt, '2030-01-01T00:25:05.000Z', 'retired 905 s after the new key signs')
})
