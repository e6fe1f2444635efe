/**
 * Opaque secrets (src/crypto/secrets.ts) and argon2id password hashing
 * (src/crypto/passwords.ts). Cheap argon2 parameters everywhere except one
 * test at OWASP's production minimum.
 */
import t from 'tap'
import { OWASP_ARGON2_MINIMUM, type Argon2Params } from '../../src/config.js'
import { createPasswordHasher } from '../../src/crypto/passwords.js'
import { SECRET_LENGTH, deriveSecret, hashSecret, isWellFormedSecret, randomSecret, sameHash } from '../../src/crypto/secrets.js'
import { CHEAP_ARGON2, createTestApp } from '../helpers/app.js'
import { PASSWORD, login, register } from '../helpers/client.js'

const BASE64URL = /^[A-Za-z0-9_-]+$/

/** The variant and the `m`, `t`, `p` written into a PHC-format argon2 hash (in whatever order). */
function paramsOf (hash: string): { variant: string, m: number, t: number, p: number } {
  const match = /^\$(argon2(?:id|i|d))\$v=19\$([a-z]=\d+(?:,[a-z]=\d+)*)\$/.exec(hash)
  if (match === null) throw new Error(`not an argon2 v19 hash: ${hash}`)
  const params = Object.fromEntries(match[2]!.split(',').map((pair) => {
    const [name, value] = pair.split('=')
    return [name!, Number(value)]
  }))
  return { variant: match[1]!, m: params.m!, t: params.t!, p: params.p! }
}

t.test('randomSecret gives 43 base64url characters (256 bits), different every time', async (t) => {
  const secrets = Array.from({ length: 200 }, () => randomSecret())
  t.equal(SECRET_LENGTH, 43)
  for (const secret of secrets.slice(0, 10)) {
    t.equal(secret.length, 43)
    t.match(secret, BASE64URL)
    t.equal(Buffer.from(secret, 'base64url').length, 32, '32 bytes of randomness')
    t.ok(isWellFormedSecret(secret))
  }
  t.equal(new Set(secrets).size, secrets.length, 'no two secrets alike')
})

t.test('isWellFormedSecret refuses the wrong length or alphabet', async (t) => {
  const secret = randomSecret()
  t.notOk(isWellFormedSecret(secret.slice(1)))
  t.notOk(isWellFormedSecret(`${secret}A`))
  t.notOk(isWellFormedSecret(`${secret.slice(1)}+`))
  t.notOk(isWellFormedSecret(`${secret.slice(1)}=`))
  t.notOk(isWellFormedSecret(''))
})

t.test('hashSecret is deterministic and differs between secrets', async (t) => {
  const secret = randomSecret()
  t.equal(hashSecret(secret), hashSecret(secret))
  t.not(hashSecret(secret), hashSecret(randomSecret()))
  t.not(hashSecret(secret), secret, 'the hash is not the secret')
  t.equal(hashSecret('abc'), 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0', 'SHA-256, base64url (FIPS 180-2 test vector)')
})

t.test('sameHash compares equal and unequal hashes, including different lengths', async (t) => {
  const a = hashSecret(randomSecret())
  const b = hashSecret(randomSecret())
  t.equal(sameHash(a, a), true)
  t.equal(sameHash(a, `${a}`), true, 'equal content, different string objects')
  t.equal(sameHash(a, b), false)
  t.equal(sameHash(a, a.slice(0, -1)), false, 'a prefix is not equal')
  t.equal(sameHash(a, `${a}x`), false, 'a longer value is not equal')
  t.equal(sameHash(a, ''), false)
  t.equal(sameHash('', ''), true)
})

t.test('deriveSecret is deterministic and depends on the key, the context and the parent', async (t) => {
  const key = Buffer.alloc(32, 7)
  const otherKey = Buffer.alloc(32, 8)
  const parent = randomSecret()
  const derived = deriveSecret(key, 'session-1', parent)
  t.equal(deriveSecret(key, 'session-1', parent), derived, 'same inputs, same secret')
  t.ok(isWellFormedSecret(derived), 'a derived secret has the shape of a random one')
  t.not(deriveSecret(otherKey, 'session-1', parent), derived, 'another key gives another secret')
  t.not(deriveSecret(key, 'session-2', parent), derived, 'another context gives another secret')
  t.not(deriveSecret(key, 'session-1', randomSecret()), derived, 'another parent gives another secret')
  t.not(derived, parent)
})

t.test('hash produces argon2id with the configured parameters', async (t) => {
  const params: Argon2Params = { memoryCost: 2048, timeCost: 3, parallelism: 2 }
  const hasher = createPasswordHasher(params)
  const hash = await hasher.hash(PASSWORD)
  t.same(paramsOf(hash), { variant: 'argon2id', m: 2048, t: 3, p: 2 })
  t.notMatch(hash, PASSWORD, 'the password is not in the hash')
  t.not(await hasher.hash(PASSWORD), hash, 'a fresh salt every time')
})

t.test('verify accepts the right password and refuses a wrong one', async (t) => {
  const hasher = createPasswordHasher(CHEAP_ARGON2)
  const hash = await hasher.hash(PASSWORD)
  t.equal(await hasher.verify(hash, PASSWORD), true)
  t.equal(await hasher.verify(hash, `${PASSWORD} `), false)
  t.equal(await hasher.verify(hash, PASSWORD.toUpperCase()), false)
  t.equal(await hasher.verify(hash, ''), false)
})

t.test('verify without a hash (unknown account) is false, even for the dummy password', async (t) => {
  const hasher = createPasswordHasher(CHEAP_ARGON2)
  t.equal(await hasher.verify(undefined, PASSWORD), false)
  t.equal(await hasher.verify(undefined, 'vouch-dummy-password'), false)
})

t.test('verify against a malformed stored hash is false, not an error', async (t) => {
  const hasher = createPasswordHasher(CHEAP_ARGON2)
  for (const stored of ['', 'not-a-hash', '$argon2id$v=19$m=1024,t=1,p=1$broken', '$2b$10$abcdefghijklmnopqrstuu']) {
    t.equal(await hasher.verify(stored, PASSWORD), false, JSON.stringify(stored))
  }
})

t.test('needsRehash is true when the parameters were raised, false for the current ones', async (t) => {
  const cheap = createPasswordHasher(CHEAP_ARGON2)
  const hash = await cheap.hash(PASSWORD)
  t.equal(cheap.needsRehash(hash), false, 'made with the current parameters')
  const raised: Argon2Params[] = [
    { ...CHEAP_ARGON2, memoryCost: CHEAP_ARGON2.memoryCost * 2 },
    { ...CHEAP_ARGON2, timeCost: CHEAP_ARGON2.timeCost + 1 },
    { ...CHEAP_ARGON2, parallelism: CHEAP_ARGON2.parallelism + 1 },
    OWASP_ARGON2_MINIMUM,
  ]
  for (const params of raised) {
    t.equal(createPasswordHasher(params).needsRehash(hash), true, JSON.stringify(params))
  }
  t.equal(cheap.needsRehash('not-a-hash'), true, 'an unreadable hash is replaced')
  t.equal(cheap.needsRehash(hash.replace('$argon2id$', '$argon2i$')), true, 'the current cost with another variant is replaced')
  t.equal(cheap.needsRehash(hash.replace('$v=19$', '$v=16$')), true, 'the current cost with an older version is replaced')
})

t.test('at production cost (OWASP minimum), a password hashes and verifies', async (t) => {
  const hasher = createPasswordHasher(OWASP_ARGON2_MINIMUM)
  const hash = await hasher.hash(PASSWORD)
  t.same(paramsOf(hash), { variant: 'argon2id', m: 19_456, t: 2, p: 1 })
  t.equal(await hasher.verify(hash, PASSWORD), true)
  t.equal(hasher.needsRehash(hash), false)
})

t.test('signing in with a hash made with weaker parameters re-hashes it with the current ones', async (t) => {
  const { app, db, config } = await createTestApp(t)
  const current = config.passwords.argon2
  const account = await register(app)
  const weaker: Argon2Params = { memoryCost: current.memoryCost / 2, timeCost: current.timeCost, parallelism: current.parallelism }
  const weakHash = await createPasswordHasher(weaker).hash(PASSWORD)
  await db.user.update({ where: { id: account.user.id }, data: { passwordHash: weakHash } })

  const hasher = createPasswordHasher(current)
  t.equal(hasher.needsRehash(weakHash), true, 'precondition: the stored hash is out of date')

  await login(app, account.email, PASSWORD)
  const { passwordHash } = await db.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { passwordHash: true } })
  t.not(passwordHash, weakHash, 'the hash was replaced')
  t.same(paramsOf(passwordHash), { variant: 'argon2id', m: current.memoryCost, t: current.timeCost, p: current.parallelism })
  t.not(paramsOf(passwordHash).m, paramsOf(weakHash).m, 'the parameters in the hash changed')
  t.equal(hasher.needsRehash(passwordHash), false)
  t.equal(await hasher.verify(passwordHash, PASSWORD), true, 'the new hash is of the same password')

  // A second sign-in leaves the up-to-date hash alone.
  await login(app, account.email, PASSWORD)
  const again = await db.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { passwordHash: true } })
  t.equal(again.passwordHash, passwordHash)
})

t.test('a failed sign-in never re-hashes a weaker hash', async (t) => {
  const { app, db, config } = await createTestApp(t)
  const account = await register(app)
  const weakHash = await createPasswordHasher({ ...config.passwords.argon2, memoryCost: config.passwords.argon2.memoryCost / 2 }).hash(PASSWORD)
  await db.user.update({ where: { id: account.user.id }, data: { passwordHash: weakHash } })
  const res = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: 'wrong password!' } })
  t.equal(res.statusCode, 401)
  const { passwordHash } = await db.user.findUniqueOrThrow({ where: { id: account.user.id }, select: { passwordHash: true } })
  t.equal(passwordHash, weakHash)
})

t.test('a hash of another argon2 variant is replaced by argon2id at the next sign-in', async (t) => {
  const argon2 = (await import('argon2')).default
  const hasher = createPasswordHasher(CHEAP_ARGON2)
  const argon2i = await argon2.hash('a password', { type: argon2.argon2i, ...CHEAP_ARGON2 })
  t.equal(await hasher.verify(argon2i, 'a password'), true, 'it still verifies')
  t.equal(hasher.needsRehash(argon2i), true, 'but is due for a re-hash')
})
