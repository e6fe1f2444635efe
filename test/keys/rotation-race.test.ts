/**
 * An automatic rotation under load, two instances on one PostgreSQL racing
 * to perform it: not one request is refused while the new key is published,
 * starts signing and is followed by the other instance; exactly one new key
 * is made, by exactly one instance. Then the replaced key retires on time: a
 * token it signs (forged here with its stored private key, so that its exp
 * outlives the key) is accepted until the retirement and refused after, and
 * its kid leaves the JWKS.
 *
 * Timings: KEY_ROTATION_INTERVAL=6 (the first rotation falls ~6 s after the
 * first key, a second one ~6 s after that), KEY_RELOAD_INTERVAL=1,
 * KEY_PUBLISH_DELAY=2, ACCESS_TOKEN_TTL=30 and CLOCK_SKEW=0 (the old key
 * retires 30 s after the new one signs): about 45 s in all.
 */
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose'
import { createSealer } from '../../src/crypto/sealing.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { NO_RATE_LIMITS } from '../helpers/app.js'
import { dbOf, jwksKids, newMasterKey, PUBLIC_URL, tempDir } from '../helpers/key-deployment.js'
import { call, startVouch, type JsonResponse, type VouchProcess } from '../helpers/process.js'
import { requirePostgres } from '../helpers/services.js'

const ROTATION_INTERVAL_S = 6
const PUBLISH_DELAY_S = 2
const ACCESS_TOKEN_TTL_S = 30
const PASSWORD = 'rotation under load'
const ROTATED = 'signing key rotated'

const kidOf = (token: string) => decodeProtectedHeader(token).kid!
const rotationsLogged = (instance: VouchProcess) => instance.output().split('\n').filter((line) => line.includes(ROTATED)).length

/** Every answer of the traffic, by what was asked where; any 401 (or other failure) is counted. */
function ledger () {
  const refusals: string[] = []
  const counts = new Map<string, number>()
  const issuedBy = new Map<string, number>()
  return {
    refusals,
    counts,
    issuedBy,
    record (what: string, res: JsonResponse, expected: number) {
      counts.set(what, (counts.get(what) ?? 0) + 1)
      if (res.status !== expected) refusals.push(`${what}: ${res.status} ${JSON.stringify(res.body)}`)
    },
    issued (token: string) { issuedBy.set(kidOf(token), (issuedBy.get(kidOf(token)) ?? 0) + 1) },
  }
}

t.test('two instances race to rotate under load: one new key, one rotation, no request refused; the old key then retires on time', async (t) => {
  if (!await requirePostgres(t)) return
  const database = await createScratchDatabase('postgresql')
  t.teardown(() => database.drop())
  const dir = await tempDir(t)
  const masterKey = newMasterKey()
  const shared = {
    DATABASE_URL: database.url, VOUCH_MASTER_KEY: masterKey, PUBLIC_URL, LOG_LEVEL: 'info', ...NO_RATE_LIMITS,
    KEY_ROTATION_INTERVAL: String(ROTATION_INTERVAL_S), KEY_RELOAD_INTERVAL: '1', KEY_PUBLISH_DELAY: String(PUBLISH_DELAY_S),
    ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL_S), CLOCK_SKEW: '0',
  }
  // Started together: whichever creates the first key, both are serving well before its rotation is due.
  const [a, b] = await Promise.all(['a', 'b'].map((name) => startVouch(t, { ...shared, DATA_DIR: path.join(dir, name) }))) as [VouchProcess, VouchProcess]
  const bothReadyAt = Date.now()
  const db = dbOf(t, database.url)
  const first = await db.signingKey.findFirstOrThrow({ where: { generation: 1 } })
  t.ok(bothReadyAt < first.createdAt.getTime() + ROTATION_INTERVAL_S * 1000 - 1000,
    `both instances serve before the first rotation is due (${first.createdAt.getTime() + ROTATION_INTERVAL_S * 1000 - bothReadyAt} ms ahead)`)

  const registered = await call(a.base, '/auth/register', { body: { email: 'load@example.com', password: PASSWORD } })
  t.equal(registered.status, 201, 'registered at A')
  // The real token whose claims the forged one copies: its session is left alone.
  const model = (await call(a.base, '/auth/login', { body: { email: 'load@example.com', password: PASSWORD } })).body.accessToken as string
  t.equal(kidOf(model), first.kid, 'signed by the first key')

  // Traffic: sign-ins and refreshes at A; every token it gets, and one kept from earlier, checked at both.
  const traffic = ledger()
  let stop = false
  const worker = async (index: number) => {
    let refreshToken = registered.body.refreshToken as string
    let kept = registered.body.accessToken as string
    if (index > 0) {
      const res = await call(a.base, '/auth/login', { body: { email: 'load@example.com', password: PASSWORD } })
      traffic.record('sign-in at A', res, 200)
      refreshToken = res.body.refreshToken
    }
    for (let round = 0; !stop; round++) {
      const res = round % 5 === 4
        ? await call(a.base, '/auth/login', { body: { email: 'load@example.com', password: PASSWORD } })
        : await call(a.base, '/auth/refresh', { body: { refreshToken } })
      traffic.record(round % 5 === 4 ? 'sign-in at A' : 'refresh at A', res, 200)
      if (res.status !== 200) continue
      refreshToken = res.body.refreshToken
      traffic.issued(res.body.accessToken)
      for (const [name, instance] of [['A', a], ['B', b]] as const) {
        traffic.record(`/auth/me at ${name}`, await call(instance.base, '/auth/me', { token: res.body.accessToken }), 200)
        traffic.record(`/auth/me at ${name}, an earlier token`, await call(instance.base, '/auth/me', { token: kept }), 200)
      }
      if (round % 10 === 0) kept = res.body.accessToken
    }
  }
  const workers = [0, 1, 2].map(worker)

  // Until the rotated-in key has signed for a while and both instances have verified its tokens.
  let second
  for (;;) {
    second = await db.signingKey.findFirst({ where: { generation: 2 } })
    if (second !== null && Date.now() > second.activatesAt.getTime() + 1500) break
    if (Date.now() > first.createdAt.getTime() + 3 * ROTATION_INTERVAL_S * 1000) break
    await sleep(200)
  }
  stop = true
  await Promise.all(workers)
  const checkedAt = Date.now()
  const [rows, secondGeneration] = [await db.signingKey.count(), await db.signingKey.count({ where: { generation: 2 } })]
  const logged = [rotationsLogged(a), rotationsLogged(b)]
  t.comment(`traffic: ${[...traffic.counts].map(([what, n]) => `${n} ${what}`).join(', ')}`)
  t.comment(`tokens issued by kid: ${[...traffic.issuedBy].map(([kid, n]) => `${kid === first.kid ? 'old' : 'new'} ${n}`).join(', ')}`)

  if (second === null) return t.fail(`no rotation within ${3 * ROTATION_INTERVAL_S} s of the first key`)
  t.ok(checkedAt < second.createdAt.getTime() + ROTATION_INTERVAL_S * 1000,
    `the rows are counted before a second rotation is due (${second.createdAt.getTime() + ROTATION_INTERVAL_S * 1000 - checkedAt} ms ahead)`)
  t.same(traffic.refusals, [], 'not one request refused or failed during the rotation')
  t.equal(secondGeneration, 1, 'exactly one key of generation 2')
  t.equal(rows, 2, 'two rows: the old key and the one new key')
  t.same(logged.sort(), [0, 1], `exactly one instance rotated (A logged ${rotationsLogged(a)}, B ${rotationsLogged(b)})`)
  t.ok(traffic.issuedBy.get(first.kid)! > 0 && traffic.issuedBy.get(second.kid)! > 0, 'the traffic had tokens of both keys')
  t.ok(second.retiresAt === null, 'the new key does not retire')
  const old = await db.signingKey.findUniqueOrThrow({ where: { kid: first.kid } })
  t.equal(old.retiresAt?.getTime(), second.activatesAt.getTime() + ACCESS_TOKEN_TTL_S * 1000,
    'the old key retires an access-token lifetime (skew 0) after the new one signs')

  // A token of the old key that would outlive it: its private key opened from its row with the master secret.
  const sealer = createSealer(Buffer.from(masterKey, 'base64url'), 'the test')
  const oldJwk = JSON.parse(sealer.open(old.sealedPrivateJwk, `signing-key:${old.kid}`)) as JWK
  const forged = await new SignJWT({ ...decodeJwt(model), exp: Math.floor(Date.now() / 1000) + 3600 })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: old.kid })
    .sign(await importJWK(oldJwk, 'EdDSA'))
  t.ok(Date.now() < old.retiresAt!.getTime() - 1000, `the old key retires in ${old.retiresAt!.getTime() - Date.now()} ms`)
  for (const [name, instance] of [['A', a], ['B', b]] as const) {
    t.equal((await call(instance.base, '/auth/me', { token: forged })).status, 200, `${name} accepts a token of the old key before it retires`)
    t.ok((await jwksKids(instance)).includes(old.kid), `${name} still publishes the old key`)
  }

  await sleep(old.retiresAt!.getTime() + 1000 - Date.now())
  for (const [name, instance] of [['A', a], ['B', b]] as const) {
    const res = await call(instance.base, '/auth/me', { token: forged })
    t.equal(res.status, 401, `${name} refuses it after the retirement`)
    t.equal(res.body?.code, 'invalid_token', 'as invalid_token')
    t.notOk((await jwksKids(instance)).includes(old.kid), `the old kid left ${name}'s JWKS`)
  }
  const fresh = await call(b.base, '/auth/login', { body: { email: 'load@example.com', password: PASSWORD } })
  t.equal((await call(a.base, '/auth/me', { token: fresh.body.accessToken })).status, 200, 'the deployment still signs and verifies')
})
