/**
 * Revocations made while Redis (the invalidation bus) is down or frozen
 * still reach everyone within a second (found by the chaos run, `npm run
 * chaos`):
 *
 * - a verifier following instance B's feed is told of a revocation made on
 *   instance A although no bus message can carry it: while its bus is down, B's
 *   feed polls every 250 ms instead of every heartbeat (5 s);
 * - an invalidation that could not be published (the publisher reconnecting
 *   after a frozen Redis dropped it) is not lost: the bus keeps it and
 *   publishes it as soon as its publisher is back, so an instance whose
 *   subscription survived the freeze hears of it.
 *
 * The tests freeze a redis-server they started themselves.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { createVerifier, VerifierError } from '@vouch/verifier'
import { createRedisBus } from '../../src/bus/redis.js'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { PASSWORD, uniqueEmail } from '../helpers/client.js'
import { call, startVouch } from '../helpers/process.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { requireRedisServer } from '../helpers/services.js'

const CLIENT = { id: 'orders', secret: randomBytes(32).toString('base64url') }
const ISSUER = 'http://vouch.test'
const TARGET_MS = 1000

t.test('with Redis frozen, a revocation made on A reaches a verifier following B within 1 s', async (t) => {
  if (!await requireRedisServer(t)) return
  const redis = await startRedisServer(t)
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-redis-outage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const shared = {
    DATABASE_URL: database.url,
    PUBLIC_URL: ISSUER,
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `vouch-test-${randomBytes(6).toString('hex')}:`,
    RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`,
    // The default heartbeat: without the bus, a revocation made on A would wait for it.
    REVOCATION_FEED_HEARTBEAT_MS: '5000',
    LOG_LEVEL: 'warn',
  }
  const a = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'a') })
  const b = await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'b') })
  const verifier = createVerifier({ vouchUrl: b.base, issuer: ISSUER, audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret })
  t.teardown(() => verifier.close())
  await verifier.ready()

  const user = (await call(a.base, '/auth/register', { body: { email: uniqueEmail('outage'), password: PASSWORD } })).body
  await verifier.verify(user.accessToken)
  redis.freeze()
  t.teardown(() => redis.thaw())
  // Let the instances notice (their PINGs go unanswered).
  await sleep(500)
  const res = await call(a.base, '/auth/logout-all', { method: 'POST', token: user.accessToken })
  t.equal(res.status, 204)
  const start = performance.now()
  let outcome = 'accepted'
  while (performance.now() - start < 3 * TARGET_MS) {
    outcome = await verifier.verify(user.accessToken).then(() => 'accepted', (err: VerifierError) => err.code)
    if (outcome !== 'accepted') break
    await sleep(20)
  }
  const after = performance.now() - start
  t.equal(outcome, 'token_revoked')
  t.ok(after < TARGET_MS, `refused ${after.toFixed(0)} ms after A answered (target < ${TARGET_MS} ms)`)
})

t.test('an invalidation published while Redis is frozen is delivered once Redis answers again', async (t) => {
  if (!await requireRedisServer(t)) return
  const redis = await startRedisServer(t)
  const keyPrefix = `vouch-test-${randomBytes(6).toString('hex')}:`
  const bus = createRedisBus({ url: redis.url, keyPrefix, timeoutMs: 50 }, () => {})
  t.teardown(() => bus.close())
  // A listener whose connection outlives the freeze (it sends nothing, so nothing times out).
  const listener = new Redis(redis.url)
  t.teardown(() => listener.disconnect())
  const received: string[] = []
  listener.on('message', (_channel: string, message: string) => received.push(message))
  await listener.subscribe(`${keyPrefix}invalidations`)
  for (const deadline = Date.now() + 5000; !bus.healthy && Date.now() < deadline;) await sleep(20)
  t.ok(bus.healthy, 'the bus is connected')

  redis.freeze()
  await sleep(200)
  // The first times out (Redis reads it from its socket buffer after the thaw);
  // its connection is dropped, so the second finds the publisher reconnecting.
  bus.publish({ kind: 'user', id: 'first-during-the-freeze' })
  await sleep(200)
  bus.publish({ kind: 'user', id: 'second-while-reconnecting' })
  await sleep(300)
  redis.thaw()
  for (const deadline = Date.now() + 3000; received.length < 2 && Date.now() < deadline;) await sleep(20)
  t.match(received.join(' '), /first-during-the-freeze/, 'the first arrived after the thaw')
  t.match(received.join(' '), /second-while-reconnecting/, 'and so did the one published while the publisher was reconnecting')
})
