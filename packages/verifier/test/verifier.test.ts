/**
 * The verifier against the test's own peer (a real HTTP server serving a
 * JWKS and the revocation feed), with an injected clock: expiry and skew,
 * feed silence and a lost feed are decided by moving time, not by sleeping.
 */
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { VerifierError } from '../src/index.js'
import { accessToken, deadUrl, ISSUER, manualClock, outcome, signingKey, startPeer, until, verifierFor } from './helpers/peer.js'

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

t.test('a valid token is accepted with its claims, and the feed was asked with the client credentials', async (t) => {
  const { key, clock, verifier, feed } = await connected(t)
  const claims = await verifier.verify(await accessToken(key, clock, { sub: 'alice', sid: 's-1', ver: 3 }))
  t.match(claims, { sub: 'alice', sid: 's-1', ver: 3, client_id: 'web' })
  t.equal(feed.since, '0', 'a first connection starts from cursor 0')
  t.equal(feed.accept, 'text/event-stream')
  t.equal(feed.authorization, `Basic ${btoa('orders:a-strong%3Aclient+secret+of+40+characters!')}`, 'RFC 6749 §2.3.1: form-encoded, then Basic')
})

t.test('expiry is judged by the injected clock, with the clock tolerance on either side', async (t) => {
  // A feed silence bound longer than the hour this test moves through.
  const { key, clock, verifier } = await connected(t, { clockTolerance: 5, maxFeedSilenceMs: 3_600_000 })
  const token = await accessToken(key, clock)
  const exp = Math.floor(clock.now() / 1000) + 900

  clock.set((exp + 4) * 1000 + 999)
  t.equal(await outcome(verifier, token), 'accepted', '4.999 s past exp is inside the 5 s tolerance')
  clock.set((exp + 5) * 1000)
  let err = await verifier.verify(token).catch((e: unknown) => e)
  t.ok(err instanceof VerifierError)
  t.match(err, { code: 'token_expired', claim: 'exp', status: 401 })
  t.match((err as VerifierError).message, /expired at .* 5 s of clock tolerance/)

  // A token from a vouch whose clock runs ahead (nbf in our future) is accepted once inside the tolerance.
  clock.set(Date.UTC(2030, 0, 1))
  const early = await accessToken(key, clock, { nbf: Math.floor(clock.now() / 1000) + 10 })
  err = await verifier.verify(early).catch((e: unknown) => e)
  t.match(err, { code: 'invalid_token', claim: 'nbf' })
  clock.advance(5000)
  t.equal(await outcome(verifier, early), 'accepted', 'nbf 5 s ahead is within the tolerance')
})

t.test('a refusal on a claim says which claim, and what was expected', async (t) => {
  const { key, clock, verifier } = await connected(t)
  const refusal = async (token: string) => {
    const err = await verifier.verify(token).then(() => undefined, (e: unknown) => e)
    if (!(err instanceof VerifierError)) throw new Error('not refused')
    return err
  }

  let err = await refusal(await accessToken(key, clock, { iss: 'http://localhost:3000' }))
  t.match(err, { code: 'invalid_token', claim: 'iss', status: 401 })
  t.match(err.message, `its "iss" claim is "http://localhost:3000", expected "${ISSUER}"`, 'a misconfigured issuer is found from the message alone')
  t.match(err.body.message, /refused on its "iss"/, 'the answer names the claim, not the expected value')
  t.notMatch(err.body.message, ISSUER)

  err = await refusal(await accessToken(key, clock, { aud: 'billing' }))
  t.match(err, { code: 'invalid_token', claim: 'aud' })
  t.match(err.message, 'its "aud" claim is "billing", expected "vouch"')

  err = await refusal(await accessToken(key, clock, {}, { typ: 'JWT' }))
  t.match(err, { code: 'invalid_token', claim: 'typ' })
  t.match(err.message, 'its "typ" header is "JWT", expected "at+jwt"')

  const hmac = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }).sign(new Uint8Array(32))
  err = await refusal(hmac)
  t.match(err, { code: 'invalid_token', claim: 'alg' })
  t.match(err.message, 'its "alg" header is "HS256", expected one of EdDSA, ES256')

  err = await refusal(await accessToken(key, clock, {}, { kid: 'not-published' }))
  t.match(err, { code: 'invalid_token', claim: 'kid' })

  err = await refusal(await accessToken(key, clock, { sid: undefined }))
  t.match(err, { code: 'invalid_token', claim: 'sid' })
  t.match(err.message, 'it has no "sid" claim')

  err = await refusal(await accessToken(key, clock, { ver: '3' }))
  t.match(err, { code: 'invalid_token', claim: 'ver' }, 'the shape rules of the protocol module')

  const forger = await signingKey('key-1')
  err = await refusal(await accessToken(forger, clock))
  t.match(err, { code: 'invalid_token', claim: undefined })
  t.match(err.message, 'signature does not verify')

  err = await refusal('not.a.jwt')
  t.match(err, { code: 'invalid_token', claim: undefined })
})

t.test('revocations on the feed refuse tokens below the minimum version or of a revoked session', async (t) => {
  const { key, clock, verifier, feed } = await connected(t)
  const v1 = await accessToken(key, clock, { sub: 'alice', sid: 'a-1', ver: 1 })
  const v2 = await accessToken(key, clock, { sub: 'alice', sid: 'a-2', ver: 2 })
  const bob = await accessToken(key, clock, { sub: 'bob', sid: 'b-1', ver: 0 })
  feed.revocations({ users: [{ id: 'alice', minVersion: 2 }], sessions: ['b-1'], cursor: 150 })
  await until(async () => await outcome(verifier, bob) === 'token_revoked', 'the batch is applied')
  t.equal(await outcome(verifier, v1), 'token_revoked')
  t.equal(await outcome(verifier, v2), 'accepted', 'the current version is still valid')
  t.equal(verifier.feedStatus().cursor, 150)
})

t.test('revocations are forgotten once no token they could refuse is still valid (maxTokenAge)', async (t) => {
  const { key, clock, verifier, feed } = await connected(t, { maxFeedSilenceMs: 3_600_000 })
  feed.revocations({ users: [], sessions: ['s-1'], cursor: 150 })
  const token = await accessToken(key, clock, { sid: 's-1' })
  await until(async () => await outcome(verifier, token) === 'token_revoked', 'the batch is applied')
  // 906 s later the token itself has expired (900 s and 5 s of tolerance); the revocation is pruned on the next read.
  clock.advance(906_000)
  feed.heartbeat()
  await until(() => verifier.feedStatus().lastHeardAt === clock.now(), 'the heartbeat is read')
  t.equal(await outcome(verifier, token), 'token_expired')
  const reissued = await accessToken(key, clock, { sid: 's-1' })
  t.equal(await outcome(verifier, reissued), 'accepted', 'the pruned session id no longer weighs on memory or verdicts')
})

t.test('a silent feed fails closed after maxFeedSilenceMs of clock time, and heartbeats keep it live', async (t) => {
  const { key, clock, verifier, feed, peer } = await connected(t, { maxFeedSilenceMs: 10_000 })
  const token = await accessToken(key, clock)

  clock.advance(10_000)
  t.equal(await outcome(verifier, token), 'accepted', 'silent for exactly the bound: still trusted')
  feed.heartbeat()
  await until(() => verifier.feedStatus().lastHeardAt === clock.now(), 'the heartbeat is read')
  clock.advance(10_000)
  t.equal(await outcome(verifier, token), 'accepted', 'the heartbeat restarted the bound')

  clock.advance(1)
  const err = await verifier.verify(token).catch((e: unknown) => e)
  t.match(err, { code: 'revocation_feed_unavailable', status: 503, unavailable: true, wwwAuthenticate: undefined })
  t.same((err as VerifierError).headers['retry-after'], '1')

  // The watchdog drops the silent stream and reconnects from the cursor.
  const next = await peer.nextConnection()
  t.equal(next.since, '100', 'resumed from the cursor of the last ready')
  next.ready({ cursor: 200 })
  await until(() => verifier.feedLive, 'the new stream is ready')
  t.equal(await outcome(verifier, token), 'accepted')
  await feed.closed
})

t.test('a lost feed is trusted for maxDisconnectedMs of clock time, then fails closed', async (t) => {
  const { key, clock, verifier, feed, peer } = await connected(t, { maxDisconnectedMs: 500 })
  const token = await accessToken(key, clock)
  peer.refuseWith = 503
  feed.end()
  // The verifier reconnects at once: once the peer has refused that attempt, the loss has been noted.
  await until(() => !verifier.feedStatus().connected, 'the loss is noted')

  t.equal(await outcome(verifier, token), 'accepted', 'just lost: still trusted')
  clock.advance(500)
  t.equal(await outcome(verifier, token), 'accepted', 'lost for exactly maxDisconnectedMs: still trusted')
  clock.advance(1)
  t.equal(await outcome(verifier, token), 'revocation_feed_unavailable', 'past the bound: fail closed')
  t.notOk(verifier.feedLive)
})

t.test('a reconnection catches up from its cursor: revocations made while it was away are applied', async (t) => {
  const { key, clock, verifier, feed, peer } = await connected(t)
  const alice = await accessToken(key, clock, { sub: 'alice', sid: 'a-1', ver: 0 })
  const bob = await accessToken(key, clock, { sub: 'bob', sid: 'b-1', ver: 0 })
  feed.revocations({ users: [], sessions: ['b-1'], cursor: 150 })
  await until(async () => await outcome(verifier, bob) === 'token_revoked', 'the batch is applied')

  feed.end()
  const next = await peer.nextConnection()
  t.equal(next.since, '150', 'the cursor of the last batch')
  next.ready({ users: [{ id: 'alice', minVersion: 1 }], sessions: [], cursor: 300 })
  await until(async () => await outcome(verifier, alice) === 'token_revoked', 'the backlog is applied')
  t.equal(await outcome(verifier, bob), 'token_revoked', 'what was known before is kept')
  t.equal(verifier.feedStatus().cursor, 300)
})

t.test('a new signing key (unknown kid) is fetched from the JWKS without a restart', async (t) => {
  const { key, clock, verifier, peer } = await connected(t)
  t.equal(await outcome(verifier, await accessToken(key, clock)), 'accepted')
  const before = peer.jwksRequests
  const rotated = await signingKey('key-2')
  peer.keys.push(rotated)
  t.equal(await outcome(verifier, await accessToken(rotated, clock)), 'accepted', 'the rotated-in key verifies')
  t.equal(peer.jwksRequests, before + 1, 'one refetch')
  t.equal(await outcome(verifier, await accessToken(key, clock)), 'accepted', 'the old key is still published')
})

t.test('a JWKS that cannot be fetched is keys_unavailable (503), never a verdict on the token', async (t) => {
  const key = await signingKey('key-1')
  const clock = manualClock()
  const verifier = verifierFor(t, { url: await deadUrl() }, { clock })
  const err = await verifier.verify(await accessToken(key, clock)).catch((e: unknown) => e)
  t.match(err, { code: 'keys_unavailable', status: 503, claim: undefined })
  t.ok((err as Error).cause, 'the network failure is the cause')
})

t.test('verifyRequest reads the bearer header of a fetch Request and throws an error carrying the answer', async (t) => {
  const { key, clock, verifier, feed } = await connected(t)
  const token = await accessToken(key, clock, { sub: 'alice', sid: 'a-1' })
  const request = (authorization?: string) => new Request('http://api.test/orders', { headers: authorization ? { authorization } : {} })

  t.match(await verifier.verifyRequest(request(`Bearer ${token}`)), { sub: 'alice' })
  t.match(await verifier.verifyRequest(request(`bearer   ${token}  `)), { sub: 'alice' }, 'scheme in any case, extra spaces')

  let err = await verifier.verifyRequest(request()).catch((e: unknown) => e) as VerifierError
  t.match(err, { code: 'invalid_token', status: 401, wwwAuthenticate: 'Bearer' }, 'no credentials: a challenge without an error code (RFC 6750 §3.1)')
  t.same(err.body, { statusCode: 401, error: 'Unauthorized', code: 'invalid_token', message: 'A bearer access token is required.' })
  err = await verifier.verifyRequest(request(`Basic ${btoa('a:b')}`)).catch((e: unknown) => e) as VerifierError
  t.equal(err.wwwAuthenticate, 'Bearer')

  feed.revocations({ users: [], sessions: ['a-1'], cursor: 150 })
  await until(async () => await outcome(verifier, token) === 'token_revoked', 'the batch is applied')
  err = await verifier.verifyRequest(request(`Bearer ${token}`)).catch((e: unknown) => e) as VerifierError
  t.match(err, { code: 'token_revoked', status: 401, wwwAuthenticate: 'Bearer error="invalid_token"' })
  const response = err.toResponse()
  t.equal(response.status, 401)
  t.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  t.same(await response.json(), { statusCode: 401, error: 'Unauthorized', code: 'token_revoked', message: 'The access token has been revoked.' })

  clock.advance(60_000)
  err = await verifier.verifyRequest(request(`Bearer ${await accessToken(key, clock)}`)).catch((e: unknown) => e) as VerifierError
  const unavailable = err.toResponse()
  t.equal(unavailable.status, 503)
  t.equal(unavailable.headers.get('retry-after'), '1')
  t.equal(unavailable.headers.get('www-authenticate'), null, 'an outage is not a verdict on the token')
  t.same(await unavailable.json(), { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable', message: 'Token revocation state is unavailable.' })
})

t.test('ready() rejects with revocation_feed_unavailable when the feed never delivers its state', async (t) => {
  const key = await signingKey('key-1')
  const peer = await startPeer(t, [key])
  peer.refuseWith = 401
  const verifier = verifierFor(t, peer, { clock: manualClock() })
  const err = await verifier.ready(50).catch((e: unknown) => e)
  t.match(err, { name: 'VerifierError', code: 'revocation_feed_unavailable' })
})

t.test('a feed that sends retry is reconnected to no sooner than it asked once every URL has failed, but a lost stream is followed up at once', async (t) => {
  const { verifier, feed, peer, clock } = await connected(t)
  feed.write('retry: 1500\n\n')
  await until(() => verifier.feedStatus().retryMs === 1500, 'retry is read')
  clock.advance(1000) // the stream has lasted long enough to count as a good one
  const lostAt = performance.now()
  feed.end()
  const first = await peer.nextConnection()
  const firstAt = performance.now()
  t.ok(firstAt - lostAt < 1000, 'the lost stream is followed up at once, not after retry')
  first.end() // this attempt fails before ready: a whole round (one URL) has failed
  const second = await peer.nextConnection()
  t.ok(performance.now() - firstAt >= 1450, 'a failed round waits for the server\'s retry')
  second.ready({ cursor: 400 })
  await until(() => verifier.feedLive, 'ready again')
})

t.test('a feed written with CRLF line ends, its JSON split over data lines and no space after the colon is followed all the same', async (t) => {
  const key = await signingKey('key-1')
  const peer = await startPeer(t, [key])
  const clock = manualClock()
  const verifier = verifierFor(t, peer, { clock })
  const feed = await peer.nextConnection()
  // A proxy or another server implementation may write the stream any way the standard allows.
  feed.write('\uFEFFretry:100\r\nid:1\r\nevent:ready\r\ndata:{"maxTokenAge":900,"heartbeatMs":1000,\r\ndata:"users":[],"sessions":[],"cursor":1}\r\n\r\n')
  await verifier.ready()
  const token = await accessToken(key, clock, { sid: 'a-1' })
  t.equal(await outcome(verifier, token), 'accepted')
  feed.write(': heartbeat\r\rid: 2\revent: revocations\rdata: {"users":[],"sessions":["a-1"],"cursor":2}\r\r')
  await until(async () => await outcome(verifier, token) === 'token_revoked', 'the CR-only batch is applied')
  t.equal(verifier.feedStatus().cursor, 2)
})
