/**
 * The verifier's verified-token cache, against the tests' own peer: a token
 * seen again skips the signature check (counted at `crypto.subtle.verify`,
 * which jose calls for every signature), and nothing else changes: a revoked
 * token is refused on the very next call, an expired one at jose's own
 * boundary, a tampered one is checked and refused, and tokens verified with
 * keys that have gone are checked again.
 */
import t, { type Test } from 'tap'
import { accessToken, manualClock, outcome, signingKey, startPeer, until, verifierFor } from './helpers/peer.js'

/** Signature checks made so far. */
let signatureChecks = 0
const subtle = globalThis.crypto.subtle
const verifySignature = subtle.verify.bind(subtle)
Object.defineProperty(subtle, 'verify', {
  configurable: true,
  value: (...args: Parameters<SubtleCrypto['verify']>) => { signatureChecks++; return verifySignature(...args) },
})

/** A verifier connected to the peer's feed (first `ready` delivered). */
async function connected (t: Test, options: Parameters<typeof verifierFor>[2] = {}) {
  const key = await signingKey('key-1')
  const peer = await startPeer(t, [key])
  const clock = manualClock()
  const verifier = verifierFor(t, peer, { clock, ...options })
  const feed = await peer.nextConnection()
  feed.ready({ cursor: 100 })
  await verifier.ready()
  return { key, peer, clock, verifier, feed }
}

/** What `verify` says, and whether it checked a signature to say it. */
async function checked (verifier: Parameters<typeof outcome>[0], token: string): Promise<[string, 'signature checked' | 'cached']> {
  const before = signatureChecks
  const said = await outcome(verifier, token)
  return [said, signatureChecks === before ? 'cached' : 'signature checked']
}

t.test('a token seen again skips the signature check, but a revoked session is refused on the very next call', async (t) => {
  const { key, clock, verifier, feed } = await connected(t)
  const token = await accessToken(key, clock, { sub: 'alice', sid: 'a-1', ver: 0 })
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  t.same(await checked(verifier, token), ['accepted', 'cached'])
  t.same(await checked(verifier, token), ['accepted', 'cached'])
  t.match(await verifier.verify(token), { sub: 'alice', sid: 'a-1' }, 'the claims, from the cache')

  feed.revocations({ users: [], sessions: ['a-1'], cursor: 150 })
  await until(() => verifier.feedStatus().cursor === 150, 'the batch is applied')
  t.same(await checked(verifier, token), ['token_revoked', 'cached'], 'the first call after the batch: refused')
  t.same(await checked(verifier, token), ['token_revoked', 'cached'], 'and every one after')
})

t.test('a cached token is refused on the very next call after sign-out everywhere (a version bump)', async (t) => {
  const { key, clock, verifier, feed } = await connected(t)
  const tokens = await Promise.all([0, 1].map((n) => accessToken(key, clock, { sub: 'alice', sid: `a-${n}`, ver: 4 })))
  for (const token of tokens) t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  for (const token of tokens) t.same(await checked(verifier, token), ['accepted', 'cached'])

  feed.revocations({ users: [{ id: 'alice', minVersion: 5 }], sessions: [], cursor: 150 })
  await until(() => verifier.feedStatus().cursor === 150, 'the batch is applied')
  for (const token of tokens) t.same(await checked(verifier, token), ['token_revoked', 'cached'], 'both sessions refused at once')
  const reissued = await accessToken(key, clock, { sub: 'alice', sid: 'a-2', ver: 5 })
  t.same(await checked(verifier, reissued), ['accepted', 'signature checked'], 'a token of the new version is accepted')
})

t.test('a lost feed still fails closed for a cached token', async (t) => {
  const { key, clock, verifier, feed, peer } = await connected(t, { maxDisconnectedMs: 500 })
  const token = await accessToken(key, clock)
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  peer.refuseWith = 503
  feed.end()
  await until(() => !verifier.feedStatus().connected, 'the loss is noted')
  clock.advance(501)
  t.same(await checked(verifier, token), ['revocation_feed_unavailable', 'cached'])
})

t.test('a cached token is refused once expired, at the same instant jose would refuse it', async (t) => {
  const { key, clock, verifier } = await connected(t, { clockTolerance: 5, maxFeedSilenceMs: 3_600_000 })
  const token = await accessToken(key, clock)
  const exp = Math.floor(clock.now() / 1000) + 900
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])

  clock.set((exp + 5) * 1000 - 1)
  t.same(await checked(verifier, token), ['accepted', 'cached'], '1 ms inside the tolerance: still a hit')
  clock.set((exp + 5) * 1000)
  t.same(await checked(verifier, token), ['token_expired', 'signature checked'], 'at exp + tolerance: not a hit, and jose refuses it')
  clock.set((exp + 5) * 1000 - 1)
  t.same(await checked(verifier, token), ['accepted', 'signature checked'], 'the expired entry was dropped (a clock set back checks it again)')
})

t.test('with no clock tolerance, a cached token is refused at exp itself', async (t) => {
  const { key, clock, verifier } = await connected(t, { clockTolerance: 0, maxFeedSilenceMs: 3_600_000 })
  const token = await accessToken(key, clock)
  const exp = Math.floor(clock.now() / 1000) + 900
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  clock.set(exp * 1000 - 1)
  t.same(await checked(verifier, token), ['accepted', 'cached'])
  clock.set(exp * 1000)
  t.same(await checked(verifier, token), ['token_expired', 'signature checked'])
})

t.test('a cached token with one character changed is not a hit, and is refused', async (t) => {
  const { key, clock, verifier } = await connected(t)
  const token = await accessToken(key, clock, { sub: 'alice' })
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)
  t.same(await checked(verifier, `${header}.${payload}.${flip(signature, 10)}`), ['invalid_token', 'signature checked'], 'in the signature')
  t.same((await checked(verifier, `${header}.${flip(payload, 20)}.${signature}`))[1], 'signature checked', 'in the payload: checked…')
  t.not((await checked(verifier, `${header}.${flip(payload, 20)}.${signature}`))[0], 'accepted', '…and refused')
  t.same(await checked(verifier, token), ['accepted', 'cached'], 'the genuine token is still a hit')
})

t.test('a refused token is never cached: each try is checked again', async (t) => {
  const { key, clock, verifier } = await connected(t, { maxFeedSilenceMs: 3_600_000 })
  const forger = await signingKey('key-1')
  const forged = await accessToken(forger, clock)
  t.same(await checked(verifier, forged), ['invalid_token', 'signature checked'])
  t.same(await checked(verifier, forged), ['invalid_token', 'signature checked'])
  const early = await accessToken(key, clock, { nbf: Math.floor(clock.now() / 1000) + 60 })
  t.same(await checked(verifier, early), ['invalid_token', 'signature checked'])
  clock.advance(60_000)
  t.same(await checked(verifier, early), ['accepted', 'signature checked'])
  t.same(await checked(verifier, early), ['accepted', 'signature checked'], 'a token with "nbf" is not cached (a clock set back must refuse it)')
})

t.test('a key removed from the JWKS does not keep its cached tokens alive', async (t) => {
  const { key, clock, verifier, peer } = await connected(t)
  const old = await accessToken(key, clock)
  t.same(await checked(verifier, old), ['accepted', 'signature checked'])
  t.same(await checked(verifier, old), ['accepted', 'cached'])

  // vouch retires key-1: its JWKS now publishes key-2 alone. A token of key-2 (unknown kid) makes the verifier refetch.
  const rotated = await signingKey('key-2')
  peer.keys.splice(0, peer.keys.length, rotated)
  t.same(await checked(verifier, await accessToken(rotated, clock)), ['accepted', 'signature checked'])
  t.equal(await outcome(verifier, old), 'invalid_token', 'the token of the removed key is refused (no key for its kid)')
})

t.test('a key set that changes in any way empties the cache; one refetched unchanged keeps it', async (t) => {
  const { key, clock, verifier, peer } = await connected(t)
  const token = await accessToken(key, clock)
  t.same(await checked(verifier, token), ['accepted', 'signature checked'])
  const before = peer.jwksRequests

  // An unknown kid refetches the JWKS; the set is the same: nothing is dropped.
  t.equal(await outcome(verifier, await accessToken(await signingKey('unknown'), clock)), 'invalid_token')
  t.equal(peer.jwksRequests, before + 1, 'refetched')
  t.same(await checked(verifier, token), ['accepted', 'cached'], 'same keys: still a hit')

  // A key added (rotation begins): the set changed, so the cache is emptied and key-1's token checked again.
  const added = await signingKey('key-2')
  peer.keys.push(added)
  t.same(await checked(verifier, await accessToken(added, clock)), ['accepted', 'signature checked'])
  t.equal(peer.jwksRequests, before + 2, 'refetched')
  t.same(await checked(verifier, token), ['accepted', 'signature checked'], 'checked again under the new set')
  t.same(await checked(verifier, token), ['accepted', 'cached'])
})

t.test('tokenCache: false checks the signature every time', async (t) => {
  const { key, clock, verifier } = await connected(t, { tokenCache: false })
  const token = await accessToken(key, clock)
  for (let i = 0; i < 3; i++) t.same(await checked(verifier, token), ['accepted', 'signature checked'])
})

t.test('tokenCache bounds are honoured: with room for one token, two alternating tokens are checked each time', async (t) => {
  const { key, clock, verifier } = await connected(t, { tokenCache: { maxEntries: 1 } })
  const [a, b] = await Promise.all([accessToken(key, clock), accessToken(key, clock)]) as [string, string]
  t.same(await checked(verifier, a), ['accepted', 'signature checked'])
  t.same(await checked(verifier, a), ['accepted', 'cached'])
  t.same(await checked(verifier, b), ['accepted', 'signature checked'])
  t.same(await checked(verifier, a), ['accepted', 'signature checked'], 'a was evicted by b')
})
