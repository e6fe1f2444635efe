/**
 * Access tokens (src/domain/access-tokens.ts) are signed synchronously with
 * node:crypto, off libuv's thread pool, and are the very JWS jose's SignJWT
 * made before: the same protected header and claim set, member for member
 * and in the same order (byte for byte with Ed25519, whose signatures are
 * deterministic), accepted by jose's jwtVerify and by @vouch/verifier.
 */
import t from 'tap'
import type { Test } from 'tap'
import { SignJWT, createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { createVerifier } from '@vouch/verifier'
import { ACCESS_TOKEN_TYPE, accessTokenVerifyOptions } from '@vouch/verifier/protocol'
import type { SigningAlgorithm } from '../../src/config.js'
import { generatePrivateJwk, loadConfiguredKeySet, type KeySet } from '../../src/crypto/keys.js'
import { createAccessTokens, type AccessTokenSettings } from '../../src/domain/access-tokens.js'
import { createTestApp } from '../helpers/app.js'
import { createTestClock } from '../helpers/clock.js'
import { freePort } from '../helpers/process.js'

const SETTINGS: AccessTokenSettings = { issuer: 'https://auth.example', audience: 'vouch', clientId: 'vouch', ttl: 900, clockSkew: 5 }
const SUBJECT = { userId: 'b6f5ad1c-3f4e-4f59-9d4a-3c1f0f3e8a11', sessionId: '0d7c1e7a-8e4b-4a3f-bb1e-5e0e9c1d2f33', version: 3 }

async function keySet (algorithm: SigningAlgorithm): Promise<KeySet> {
  return loadConfiguredKeySet(JSON.stringify(await generatePrivateJwk(algorithm)), algorithm)
}

const parts = (token: string) => token.split('.') as [string, string, string]
const decoded = (part: string) => Buffer.from(part, 'base64url').toString()

/** The token the previous implementation (jose's SignJWT) made for the same subject, time and jti. */
function signedByJose (keys: KeySet, iat: number, jti: string): Promise<string> {
  return new SignJWT({ client_id: SETTINGS.clientId, sid: SUBJECT.sessionId, ver: SUBJECT.version })
    .setProtectedHeader({ alg: keys.algorithm, typ: ACCESS_TOKEN_TYPE, kid: keys.current.kid })
    .setIssuer(SETTINGS.issuer)
    .setAudience(SETTINGS.audience)
    .setSubject(SUBJECT.userId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + SETTINGS.ttl)
    .setJti(jti)
    .sign(keys.current.privateKey)
}

async function sameAsJose (t: Test, algorithm: SigningAlgorithm) {
  const keys = await keySet(algorithm)
  const clock = createTestClock(new Date('2026-06-01T12:00:00.500Z'))
  const tokens = createAccessTokens(keys, SETTINGS, clock)

  const token = tokens.issue(SUBJECT)
  t.type(token, 'string', 'issued synchronously: a string, not a promise (no thread-pool round trip)')

  const [header, payload] = parts(token)
  t.equal(decoded(header), JSON.stringify({ alg: algorithm, typ: 'at+jwt', kid: keys.current.kid }), 'the protected header, member for member')
  const claims = JSON.parse(decoded(payload)) as { iat: number, jti: string }
  t.same(Object.keys(claims), ['client_id', 'sid', 'ver', 'iss', 'aud', 'sub', 'iat', 'exp', 'jti'], 'the claims in jose\'s order')
  t.equal(claims.iat, Math.floor(clock.now().getTime() / 1000))

  const theirs = await signedByJose(keys, claims.iat, claims.jti)
  t.equal(`${header}.${payload}`, parts(theirs).slice(0, 2).join('.'), 'the signing input jose made')
  if (algorithm === 'EdDSA') t.equal(token, theirs, 'Ed25519 is deterministic: the very token jose made')
  else t.equal(Buffer.from(parts(token)[2], 'base64url').length, 64, 'ES256: the raw 64-byte r‖s signature JWS requires, not DER')

  const { payload: verified, protectedHeader } = await jwtVerify(token, createLocalJWKSet({ keys: [...keys.jwks.keys] }), accessTokenVerifyOptions({
    algorithms: [algorithm], issuer: SETTINGS.issuer, audience: SETTINGS.audience, currentDate: clock.now(),
  }))
  t.match(verified, { sub: SUBJECT.userId, sid: SUBJECT.sessionId, ver: SUBJECT.version, client_id: 'vouch', iss: SETTINGS.issuer, aud: 'vouch' })
  t.same(protectedHeader, decodeProtectedHeader(theirs))
  t.match(await tokens.verify(token), { sub: SUBJECT.userId, sid: SUBJECT.sessionId, ver: SUBJECT.version }, 'and vouch accepts it')
}

t.test('an EdDSA access token is the very JWS jose signed, and jose verifies it', (t) => sameAsJose(t, 'EdDSA'))
t.test('an ES256 access token has jose\'s header and claims and a JWS signature jose verifies', (t) => sameAsJose(t, 'ES256'))

t.test('a new current key signs at once, under its own kid', async (t) => {
  const keys = await keySet('EdDSA')
  const tokens = createAccessTokens(keys, SETTINGS, createTestClock())
  const before = tokens.issue(SUBJECT)
  t.equal(decodeProtectedHeader(before).kid, keys.current.kid)
  const next = await keySet('EdDSA')
  keys.replace([next.current])
  const after = tokens.issue(SUBJECT)
  t.not(decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid)
  t.equal(decodeProtectedHeader(after).kid, next.current.kid)
  await t.resolves(jwtVerify(after, createLocalJWKSet({ keys: [...next.jwks.keys] }), { algorithms: ['EdDSA'] }))
})

for (const algorithm of ['EdDSA', 'ES256'] as const) {
  t.test(`${algorithm}: @vouch/verifier accepts the tokens a listening vouch signs`, async (t) => {
    const client = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
    const port = await freePort()
    const { app, config } = await createTestApp(t, {
      env: { PORT: String(port), SIGNING_ALG: algorithm, RESOURCE_CLIENTS: `${client.id}:${client.secret}` },
    })
    await app.listen({ host: '127.0.0.1', port })
    const base = `http://127.0.0.1:${port}`
    const res = await fetch(`${base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `tokens-${algorithm}@example.com`, password: 'correct horse battery staple' }),
    })
    t.equal(res.status, 201)
    const { accessToken, user, sessionId } = await res.json() as { accessToken: string, user: { id: string }, sessionId: string }

    const verifier = createVerifier({
      vouchUrl: base, issuer: config.tokens.issuer, audience: config.tokens.audience, clientId: client.id, clientSecret: client.secret, algorithms: [algorithm],
    })
    t.teardown(() => verifier.close())
    await verifier.ready()
    t.match(await verifier.verify(accessToken), { sub: user.id, sid: sessionId, ver: 0, client_id: 'vouch' })
  })
}

t.test('a token verified once is remembered, but never past its expiry, never once its key is gone, and never for other bytes', async (t) => {
  const keys = await keySet('EdDSA')
  const clock = createTestClock(new Date('2026-06-01T12:00:00.000Z'))
  const tokens = createAccessTokens(keys, SETTINGS, clock)
  const token = tokens.issue(SUBJECT)
  let verifications = 0
  const verify = crypto.subtle.verify.bind(crypto.subtle)
  crypto.subtle.verify = (async (...args: Parameters<typeof verify>) => { verifications += 1; return verify(...args) }) as typeof verify
  t.teardown(() => { crypto.subtle.verify = verify })

  t.equal((await tokens.verify(token)).sid, SUBJECT.sessionId)
  const afterFirst = verifications
  t.ok(afterFirst >= 1, 'the first use checks the signature')
  for (let i = 0; i < 5; i++) await tokens.verify(token)
  t.equal(verifications, afterFirst, 'repeats are answered from the cache')

  const [header, payload, signature] = parts(token)
  const flipped = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`
  await t.rejects(tokens.verify(flipped), { code: 'invalid_token' }, 'a token one signature character off is no hit and fails')

  clock.advance(SETTINGS.ttl + SETTINGS.clockSkew - 1)
  t.ok(await tokens.verify(token), 'still good inside the clock skew')
  clock.advance(1)
  await t.rejects(tokens.verify(token), { code: 'token_expired' }, 'expired at exp + skew, cached or not')

  const fresh = tokens.issue(SUBJECT)
  await tokens.verify(fresh)
  keys.replace([(await keySet('EdDSA')).current])
  await t.rejects(tokens.verify(fresh), { code: 'invalid_token' }, 'once its key is no longer published, a remembered token is refused')
})
