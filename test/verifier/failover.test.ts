/**
 * The verifier's revocation feed when the vouch instance serving it goes
 * away. Two real vouch processes share one database and sign alike; the
 * verifier follows A and knows B as a second URL.
 *
 * - A killed: the verifier reconnects to B at once (its `ready` replays what
 *   it missed), so a revocation made on B is refused well within 1 s.
 * - Only one URL and its instance killed: it fails closed within
 *   `maxDisconnectedMs`, not after the silence bound.
 * - A frozen (connected, silent): the silence bound is the last resort; once
 *   it passes, the verifier leaves A for B.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { createVerifier, VerifierError, type Verifier, type VerifierOptions } from '@vouch/verifier'
import { TEST_PROVIDER } from '../helpers/app.js'
import { call, startVouch, type VouchProcess } from '../helpers/process.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const ISSUER = 'http://vouch.test'
const TARGET_MS = 1000
const POLL_MS = 50

/** `count` vouch processes of one deployment: one database, the same signing key and refresh secret. */
async function instances (t: Test, count: number): Promise<VouchProcess[]> {
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-failover-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const shared = {
    DATABASE_URL: database.url,
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`,
    REVOCATION_FEED_HEARTBEAT_MS: '200',
    JWT_ISSUER: ISSUER,
    LOG_LEVEL: 'warn',
  }
  const started: VouchProcess[] = []
  // One after the other: the first applies the migrations.
  for (let i = 0; i < count; i++) started.push(await startVouch(t, { ...shared, DATA_DIR: path.join(dir, String(i)) }))
  return started
}

async function following (t: Test, vouchUrl: string | string[], options: Partial<VerifierOptions> = {}): Promise<Verifier> {
  const verifier = createVerifier({ vouchUrl, issuer: ISSUER, audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret, ...options })
  t.teardown(() => verifier.close())
  await verifier.ready()
  return verifier
}

async function outcome (verifier: Verifier, token: string): Promise<string> {
  try {
    await verifier.verify(token)
    return 'accepted'
  } catch (err) {
    if (err instanceof VerifierError) return err.code
    throw err
  }
}

/** Verifies every POLL_MS until the token is refused; the outcome and the milliseconds it took (Infinity if never within `limitMs`). */
async function refusal (verifier: Verifier, token: string, limitMs: number): Promise<{ code: string, after: number }> {
  const start = performance.now()
  while (performance.now() - start < limitMs) {
    const code = await outcome(verifier, token)
    if (code !== 'accepted') return { code, after: performance.now() - start }
    await sleep(POLL_MS)
  }
  return { code: 'accepted', after: Infinity }
}

async function kill (instance: VouchProcess) {
  const exited = once(instance.child, 'exit')
  instance.child.kill('SIGKILL')
  await exited
}

const register = async (instance: VouchProcess, email: string) =>
  (await call(instance.base, '/auth/register', { body: { email, password: 'failover test' } })).body

t.test('with a second URL, a logout-all on B is refused within 1 s of B\'s answer after A is killed', async (t) => {
  const [a, b] = await instances(t, 2)
  const verifier = await following(t, [a!.base, b!.base])
  const alice = await register(b!, 'alice@example.com')
  const bob = await register(b!, 'bob@example.com')
  t.equal(await outcome(verifier, alice.accessToken), 'accepted')

  await kill(a!)
  t.equal((await call(b!.base, '/auth/logout-all', { method: 'POST', token: alice.accessToken })).status, 204)
  const { code, after } = await refusal(verifier, alice.accessToken, TARGET_MS * 3)
  t.comment(`refused ${after.toFixed(0)} ms after B answered logout-all (A killed just before)`)
  t.equal(code, 'token_revoked', 'refused as revoked: the verifier follows B now, it did not merely fail closed')
  t.ok(after <= TARGET_MS, `within ${TARGET_MS} ms (took ${after.toFixed(0)} ms)`)
  t.equal(await outcome(verifier, bob.accessToken), 'accepted', "other users' tokens keep working through B")
  t.ok(verifier.feedLive)
})

t.test('with one URL and its instance killed, verification fails closed within 1 s, not after the silence bound', async (t) => {
  const [a] = await instances(t, 1)
  const verifier = await following(t, a!.base)
  const alice = await register(a!, 'alice@example.com')
  t.equal(await outcome(verifier, alice.accessToken), 'accepted')

  await kill(a!)
  const { code, after } = await refusal(verifier, alice.accessToken, 5000)
  t.comment(`failed closed ${after.toFixed(0)} ms after the instance died (silence bound 15000 ms)`)
  t.equal(code, 'revocation_feed_unavailable')
  t.ok(after <= TARGET_MS, `within ${TARGET_MS} ms (took ${after.toFixed(0)} ms)`)
})

t.test('a frozen instance is left for the next URL once the feed has been silent for maxFeedSilenceMs', async (t) => {
  const silenceMs = 1000
  const [a, b] = await instances(t, 2)
  const verifier = await following(t, [a!.base, b!.base], { maxFeedSilenceMs: silenceMs })
  const alice = await register(b!, 'alice@example.com')
  const bob = await register(b!, 'bob@example.com')
  t.equal(await outcome(verifier, alice.accessToken), 'accepted')

  // Connected but silent: no end of stream tells the verifier, only the silence does.
  a!.child.kill('SIGSTOP') // (SIGKILL at teardown ends it all the same)
  t.equal((await call(b!.base, '/auth/logout-all', { method: 'POST', token: alice.accessToken })).status, 204)
  const { code, after } = await refusal(verifier, alice.accessToken, silenceMs * 5)
  t.comment(`refused ${after.toFixed(0)} ms after B answered logout-all (A frozen just before; silence bound ${silenceMs} ms)`)
  t.ok(code === 'token_revoked' || code === 'revocation_feed_unavailable', `refused (${code})`)
  t.ok(after <= silenceMs + TARGET_MS, `within the silence bound plus ${TARGET_MS} ms`)
  const start = performance.now()
  while (!verifier.feedLive && performance.now() - start < 5000) await sleep(POLL_MS)
  t.ok(verifier.feedLive, 'the verifier follows B now')
  t.equal(await outcome(verifier, alice.accessToken), 'token_revoked', 'and knows the revocation made on B')
  t.equal(await outcome(verifier, bob.accessToken), 'accepted', "other users' tokens keep working through B")
})
