/**
 * Tokens verified per second by @vouch/verifier against jose's bare
 * `jwtVerify` with the same key, in the same run (target ratio ≥ 0.9): what
 * the revocation check and the plumbing cost on top of the signature.
 * Two cases: one token verified again and again (the verifier's
 * verified-token cache answers after the first time), and tokens never seen
 * before (each a signature check: real vouch tokens from refresh rotations,
 * every one verified once by each side). `npm run bench:verifier`
 * (`-- --quick` for a short run).
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { createVerifier } from '@vouch/verifier'
import { Client, int, quick, startVouch, table } from './lib/harness.js'
import { BENCH_ISSUER, createInstance, registerUsers } from './lib/instances.js'

const CLIENT = { id: 'bench', secret: randomBytes(32).toString('base64url') }
const IN_FLIGHT = 64
const ROUNDS = 4
const seconds = quick ? 2 : 8
const freshPerRound = quick ? 500 : 2_500
const instance = await createInstance('sqlite')
const server = await startVouch({ label: 'vouch', env: { ...instance.env, RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` } })
try {
  const [user] = await registerUsers(server.base, 1, 'verifier')
  const token = user!.accessToken
  // Never-seen tokens: refresh rotations of the user's session.
  const client = new Client(server.base, 1)
  const fresh: string[] = []
  let refreshToken = user!.refreshToken
  while (fresh.length < ROUNDS * freshPerRound + 100) {
    const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken }, expected: 200 })
    refreshToken = pair.refreshToken as string
    fresh.push(pair.accessToken as string)
  }
  client.close()

  const jwks = createLocalJWKSet(await (await fetch(`${server.base}/.well-known/jwks.json`)).json() as JSONWebKeySet)
  const verifier = createVerifier({ vouchUrl: server.base, issuer: BENCH_ISSUER, audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret })
  await verifier.ready()
  const bare = (t: string) => jwtVerify(t, jwks, { algorithms: ['EdDSA'], typ: 'at+jwt', issuer: BENCH_ISSUER, audience: 'vouch' })
  const full = (t: string) => verifier.verify(t)

  /** Verifications per second over `duration` s of the same token, IN_FLIGHT at once. */
  const rateSame = async (verify: (t: string) => Promise<unknown>, duration: number) => {
    let count = 0
    const end = performance.now() + duration * 1000
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) { await verify(token); count += 1 }
    }))
    return count / duration
  }
  /** Verifications per second of `tokens`, each once, IN_FLIGHT at once. */
  const rateEach = async (verify: (t: string) => Promise<unknown>, tokens: string[]) => {
    let next = 0
    const t0 = performance.now()
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < tokens.length) await verify(tokens[next++]!)
    }))
    return tokens.length / ((performance.now() - t0) / 1000)
  }
  // Warm-up (JIT), with tokens kept out of the measured rounds.
  await rateSame(bare, 0.5)
  await rateSame(full, 0.5)
  await rateEach(bare, fresh.slice(0, 100))
  await rateEach(full, fresh.slice(0, 100))
  // Alternate short rounds so drift on a noisy machine hits both alike.
  const totals = { bareSame: 0, fullSame: 0, bareFresh: 0, fullFresh: 0 }
  for (let i = 0; i < ROUNDS; i++) {
    totals.bareSame += await rateSame(bare, seconds / ROUNDS)
    totals.fullSame += await rateSame(full, seconds / ROUNDS)
    const tokens = fresh.slice(100 + i * freshPerRound, 100 + (i + 1) * freshPerRound)
    totals.bareFresh += await rateEach(bare, tokens) // jose keeps nothing: the verifier still sees these for the first time
    totals.fullFresh += await rateEach(full, tokens)
  }
  const same = totals.fullSame / totals.bareSame
  const each = totals.fullFresh / totals.bareFresh
  const verdict = (r: number) => `${r.toFixed(3)} ${r >= 0.9 ? 'met' : 'missed'}`
  console.log(`\nToken verification, one process, ${IN_FLIGHT} in flight, ${ROUNDS} alternating rounds (${seconds / ROUNDS} s each for one token; ${int(freshPerRound)} never-seen tokens each)\n`)
  console.log(table(['tokens', 'jose jwtVerify (signature and claims only), tokens/s', '@vouch/verifier (plus revocation state), tokens/s', 'ratio (target ≥ 0.9)'], [
    ['one token, again and again (verified-token cache)', (totals.bareSame / ROUNDS).toFixed(0), (totals.fullSame / ROUNDS).toFixed(0), verdict(same)],
    ['a never-seen token each time (signature checked)', (totals.bareFresh / ROUNDS).toFixed(0), (totals.fullFresh / ROUNDS).toFixed(0), verdict(each)],
  ]))
  await verifier.close()
} finally {
  await server.stop()
  await instance.drop()
}
