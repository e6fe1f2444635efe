/**
 * Micro benchmark (not a test): µs per `verifier.verify(token)` call, one at
 * a time, against the tests' own peer (JWKS and a live feed on loopback), for
 * the same token over and over and for 100 users' tokens in turn, with the
 * verified-token cache on and off, and bare jose `jwtVerify` for reference.
 * Rounds alternate so that a change in the machine's load falls on all alike.
 *
 *   npx tsx packages/verifier/test/helpers/verify-bench.ts [calls per round, default 20000]
 */
import { performance } from 'node:perf_hooks'
import { createLocalJWKSet, jwtVerify } from 'jose'
import type { Test } from 'tap'
import { accessToken, AUDIENCE, ISSUER, manualClock, signingKey, startPeer, verifierFor } from './peer.js'

// tap given the whole test folder runs the helpers too: this is not a test, so it does nothing there.
if (process.env.TAP === '1') process.exit(0)
const calls = Number(process.argv[2] ?? 20_000)
const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } } as unknown as Test

const key = await signingKey('key-1')
const peer = await startPeer(t, [key])
const clock = manualClock(Date.now())
const cached = verifierFor(t, peer, { clock })
const uncached = verifierFor(t, peer, { clock, tokenCache: false } as Parameters<typeof verifierFor>[2])
for (let i = 0; i < 2; i++) (await peer.nextConnection()).ready({ cursor: 100 })
await Promise.all([cached.ready(), uncached.ready()])

const one = await accessToken(key, clock, { sub: 'alice', sid: 'a-1' })
const hundred = await Promise.all(Array.from({ length: 100 }, (_, i) => accessToken(key, clock, { sub: `user-${i}`, sid: `s-${i}` })))
const jwks = createLocalJWKSet({ keys: [key.jwk] })
const bare = (token: string) => jwtVerify(token, jwks, { algorithms: ['EdDSA'], typ: 'at+jwt', issuer: ISSUER, audience: AUDIENCE })

/** µs per call over `calls` sequential calls. */
async function time (verify: (token: string) => Promise<unknown>, tokens: string[]): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < calls; i++) await verify(tokens[i % tokens.length]!)
  return (performance.now() - start) * 1000 / calls
}

const cases: Array<[string, (token: string) => Promise<unknown>, string[]]> = [
  ['jose jwtVerify, same token', bare, [one]],
  ['verify(), cache off, same token', (token) => uncached.verify(token), [one]],
  ['verify(), cache on, same token', (token) => cached.verify(token), [one]],
  ['verify(), cache off, 100 users in turn', (token) => uncached.verify(token), hundred],
  ['verify(), cache on, 100 users in turn', (token) => cached.verify(token), hundred],
]
for (const [, verify, tokens] of cases) await time(verify, tokens) // warm-up
const rounds = 3
const totals = cases.map(() => 0)
for (let round = 0; round < rounds; round++) {
  for (const [index, [, verify, tokens]] of cases.entries()) totals[index]! += await time(verify, tokens)
}
console.log(`${calls} calls per round, ${rounds} alternating rounds, one call at a time (node ${process.version})`)
for (const [index, [name]] of cases.entries()) console.log(`${name.padEnd(42)} ${(totals[index]! / rounds).toFixed(2).padStart(8)} µs/call`)
for (const fn of teardowns.reverse()) await fn()
