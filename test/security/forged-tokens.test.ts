/**
 * Forged, tampered and otherwise unacceptable access tokens, presented to the
 * whole HTTP stack. Every one of them must be refused with 401 and an RFC 6750
 * challenge; the acceptance rule is SPEC.md's: signature valid under a
 * published key, the configured `alg` (never `none`, never HMAC), `typ`
 * at+jwt, matching `iss`/`aud`, not expired beyond the clock skew, `ver`
 * current and the session not revoked.
 */
import { createHmac, createPublicKey } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose'
import { createTestApp, type TestContext } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register } from '../helpers/client.js'

const CHALLENGE = 'Bearer error="invalid_token"'

type Json = Record<string, unknown>

const encode = (value: Json): string => Buffer.from(JSON.stringify(value)).toString('base64url')

function partsOf (token: string): { header: Json, payload: Json, signature: string } {
  const [header, payload, signature] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')) as Json,
    payload: JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Json,
    signature: signature!,
  }
}

/** A compact JWS assembled by hand: whatever header and payload, whatever signature. */
function assemble (header: Json, payload: Json, signature: string): string {
  return `${encode(header)}.${encode(payload)}.${signature}`
}

/** An HS256 JWS whose HMAC secret is `secret`: the classic algorithm-confusion forgery. */
function hmacToken (header: Json, payload: Json, secret: string | Uint8Array): string {
  const input = `${encode({ ...header, alg: 'HS256' })}.${encode(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Signs `payload` with `key` under the given header, exactly as given (no defaults added). */
function sign (payload: JWTPayload, header: { alg: string, [name: string]: unknown }, key: CryptoKey): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key)
}

/** Forged or misused tokens presented to the service in this file (printed at the end). */
let attacks = 0

async function expectRejected (t: Test, res: LightMyRequestResponse, code = 'invalid_token'): Promise<void> {
  attacks++
  t.equal(res.statusCode, 401, 'answers 401')
  t.equal(codeOf(res), code, `code is ${code}`)
  t.equal(res.headers['www-authenticate'], CHALLENGE, 'carries the RFC 6750 challenge')
  t.notMatch(res.body, /"(id|email)"/, 'no profile leaks')
}

/** A registered user with a real token, plus its decoded parts. */
async function signedIn (app: FastifyInstance) {
  const account = await register(app)
  const { header, payload, signature } = partsOf(account.accessToken)
  return { account, token: account.accessToken, header, payload, signature }
}

/** The real token's claims, minus some, for re-signing with the service's key. */
function claimsWithout (payload: Json, ...names: string[]): JWTPayload {
  return Object.fromEntries(Object.entries(payload).filter(([name]) => !names.includes(name))) as JWTPayload
}

// One app for the whole file: every scenario registers its own user, so they
// do not see each other's state.
const ctx: TestContext = await createTestApp(t)
const { app, keys, config } = ctx
const realHeader = () => ({ alg: keys.algorithm, typ: 'at+jwt', kid: keys.current.kid })

t.test('a real token is accepted (the baseline every forgery is measured against)', async (t) => {
  const { token, header, payload } = await signedIn(app)
  t.match(header, { alg: 'EdDSA', typ: 'at+jwt', kid: keys.current.kid })
  t.match(payload, { iss: config.tokens.issuer, aud: config.tokens.audience, sub: String, sid: String, ver: 0, jti: String, iat: Number, exp: Number })
  const res = await me(app, token)
  t.equal(res.statusCode, 200)
  t.equal(res.json().id, payload.sub)
})

t.test('an unsigned token (alg: none) with otherwise valid claims is refused', async (t) => {
  const { header, payload } = await signedIn(app)
  for (const alg of ['none', 'None', 'NONE']) {
    const forged = assemble({ ...header, alg }, payload, '')
    t.equal(decodeProtectedHeader(forged).alg, alg)
    await expectRejected(t, await me(app, forged))
  }
  // The same, with the real signature left in place: still not a valid EdDSA token.
  const { signature } = partsOf((await signedIn(app)).token)
  await expectRejected(t, await me(app, assemble({ ...header, alg: 'none' }, payload, signature)))
})

t.test('an HS256 token keyed with the service public key is refused (algorithm confusion)', async (t) => {
  const { header, payload } = await signedIn(app)
  const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<Json & { x: string }> }
  const published = jwks.keys[0]!
  t.equal(published.kid, keys.current.kid)
  const spkiPem = createPublicKey({ key: published as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
  const secrets: Array<[string, string | Uint8Array]> = [
    ['the JWKS x value', published.x],
    ['the raw public key bytes', Buffer.from(published.x, 'base64url')],
    ['the JSON JWK string', JSON.stringify(published)],
    ['the public JWK held by the key set', JSON.stringify(keys.current.publicJwk)],
    ['the SPKI PEM', spkiPem],
  ]
  for (const [name, secret] of secrets) {
    const forged = hmacToken(header, payload, secret)
    t.equal(decodeProtectedHeader(forged).kid, keys.current.kid, `${name}: carries the real kid`)
    t.same(decodeJwt(forged), payload, `${name}: carries the real claims`)
    await expectRejected(t, await me(app, forged))
  }
})

t.test('a token signed by another Ed25519 key that reuses the real kid is refused', async (t) => {
  const { payload } = await signedIn(app)
  const attacker = await generateKeyPair('EdDSA', { extractable: true })
  const forged = await sign(payload as JWTPayload, realHeader(), attacker.privateKey)
  t.equal(decodeProtectedHeader(forged).kid, keys.current.kid)
  await expectRejected(t, await me(app, forged))
})

t.test('a token carrying its own key (embedded jwk header) is refused', async (t) => {
  const { payload } = await signedIn(app)
  const attacker = await generateKeyPair('EdDSA', { extractable: true })
  const jwk = await exportJWK(attacker.publicKey)
  for (const kid of [await calculateJwkThumbprint(jwk), keys.current.kid]) {
    const forged = await sign(payload as JWTPayload, { ...realHeader(), kid, jwk }, attacker.privateKey)
    await expectRejected(t, await me(app, forged))
  }
})

t.test('a real token with a tampered payload is refused', async (t) => {
  const victim = await signedIn(app)
  const attacker = await signedIn(app)
  const tamperings: Array<[string, Json]> = [
    ['sub swapped for another user', { ...attacker.payload, sub: victim.payload.sub }],
    ['sid swapped for another session', { ...attacker.payload, sid: victim.payload.sid }],
    ['ver bumped', { ...attacker.payload, ver: 1 }],
    ['exp pushed into the future', { ...attacker.payload, exp: (attacker.payload.exp as number) + 86_400 }],
    ['an extra claim added', { ...attacker.payload, admin: true }],
  ]
  for (const [name, payload] of tamperings) {
    const forged = assemble(attacker.header, payload, attacker.signature)
    t.comment(name)
    await expectRejected(t, await me(app, forged))
  }
  // The untampered original still works: the refusals above were about the edits.
  t.equal((await me(app, attacker.token)).statusCode, 200)
})

t.test('a real token with a tampered header is refused', async (t) => {
  const { header, payload, signature } = await signedIn(app)
  const other = await generateKeyPair('EdDSA', { extractable: true })
  const tamperings: Array<[string, Json]> = [
    ['typ changed to JWT', { ...header, typ: 'JWT' }],
    ['typ removed', { alg: header.alg, kid: header.kid }],
    ['kid changed to an unknown one', { ...header, kid: await calculateJwkThumbprint(await exportJWK(other.publicKey)) }],
    ['kid removed', { alg: header.alg, typ: header.typ }],
    ['alg changed to ES256', { ...header, alg: 'ES256' }],
    ['an unknown critical extension added', { ...header, crit: ['x-vouch'], 'x-vouch': true }],
  ]
  for (const [name, tampered] of tamperings) {
    t.comment(name)
    await expectRejected(t, await me(app, assemble(tampered, payload, signature)))
  }
})

t.test('a correctly signed token with a typ other than at+jwt is refused', async (t) => {
  const { payload } = await signedIn(app)
  for (const typ of ['JWT', 'jwt', 'at+jwt2', 'refresh+jwt']) {
    const forged = await sign(payload as JWTPayload, { ...realHeader(), typ }, keys.current.privateKey)
    await expectRejected(t, await me(app, forged))
  }
  const untyped = await sign(payload as JWTPayload, { alg: keys.algorithm, kid: keys.current.kid }, keys.current.privateKey)
  await expectRejected(t, await me(app, untyped))
  // Control: the same claims re-signed with the right typ are accepted.
  const good = await sign(payload as JWTPayload, realHeader(), keys.current.privateKey)
  t.equal((await me(app, good)).statusCode, 200)
})

t.test('a correctly signed token for another issuer or audience is refused', async (t) => {
  const { payload } = await signedIn(app)
  const variants: Array<[string, JWTPayload]> = [
    ['wrong iss', { ...payload, iss: 'https://evil.example' }],
    ['iss missing', claimsWithout(payload, 'iss')],
    ['wrong aud', { ...payload, aud: 'another-service' }],
    ['aud missing', claimsWithout(payload, 'aud')],
  ]
  for (const [name, claims] of variants) {
    t.comment(name)
    await expectRejected(t, await me(app, await sign(claims, realHeader(), keys.current.privateKey)))
  }
})

t.test('a correctly signed token missing sid, ver, jti, sub, iat or exp is refused', async (t) => {
  const { payload } = await signedIn(app)
  for (const claim of ['sid', 'ver', 'jti', 'sub', 'iat', 'exp']) {
    t.comment(`without ${claim}`)
    const forged = await sign(claimsWithout(payload, claim), realHeader(), keys.current.privateKey)
    await expectRejected(t, await me(app, forged))
  }
})

t.test('a correctly signed token whose ver is not a non-negative integer is refused', async (t) => {
  const { payload } = await signedIn(app)
  for (const ver of [0.5, '0', -1, null, true, [0], { v: 0 }]) {
    t.comment(`ver: ${JSON.stringify(ver)}`)
    const forged = await sign({ ...payload, ver } as JWTPayload, realHeader(), keys.current.privateKey)
    await expectRejected(t, await me(app, forged))
  }
})

t.test('a correctly signed token whose sid or sub has the wrong type is refused', async (t) => {
  const { payload } = await signedIn(app)
  for (const claims of [{ ...payload, sid: 42 }, { ...payload, sub: 42 }, { ...payload, jti: 42 }]) {
    await expectRejected(t, await me(app, await sign(claims as JWTPayload, realHeader(), keys.current.privateKey)))
  }
})

t.test('a correctly signed token that is not yet valid (nbf in the future) is refused', async (t) => {
  const { payload } = await signedIn(app)
  const nbf = (payload.iat as number) + 3600
  await expectRejected(t, await me(app, await sign({ ...payload, nbf } as JWTPayload, realHeader(), keys.current.privateKey)))
})

t.test('an access token is refused once it expires, with token_expired', async (t) => {
  const { app, clock, config } = await createTestApp(t)
  const { token } = await signedIn(app)
  clock.advance(config.tokens.accessTokenTtl + config.tokens.clockSkew + 1)
  await expectRejected(t, await me(app, token), 'token_expired')
})

t.test('an access token just past its exp but within the clock skew is still accepted', async (t) => {
  const { app, clock, config } = await createTestApp(t)
  t.equal(config.tokens.clockSkew, 5, 'default skew is 5 seconds')
  const { token } = await signedIn(app)
  clock.advance(config.tokens.accessTokenTtl + 1)
  t.equal((await me(app, token)).statusCode, 200, '1 s past exp')
  clock.advance(config.tokens.clockSkew - 2)
  t.equal((await me(app, token)).statusCode, 200, 'skew - 1 s past exp')
  clock.advance(1)
  await expectRejected(t, await me(app, token), 'token_expired')
})

t.test('a refresh token presented as a bearer access token is refused', async (t) => {
  const { account } = await signedIn(app)
  await expectRejected(t, await me(app, account.refreshToken))
  // ...and an access token is no refresh token either.
  attacks++
  const res = await post(app, '/auth/refresh', { refreshToken: account.accessToken })
  t.equal(res.statusCode, 401)
  t.equal(codeOf(res), 'refresh_token_invalid')
})

t.test('missing and malformed Authorization headers are refused', async (t) => {
  const { token } = await signedIn(app)
  const headers: Array<[string, Record<string, string>]> = [
    ['no header', {}],
    ['token without a scheme', { authorization: token }],
    ['Basic credentials', { authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` }],
    ['Basic scheme with the token', { authorization: `Basic ${token}` }],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['bare scheme', { authorization: 'Bearer' }],
    ['empty header', { authorization: '' }],
    ['two tokens', { authorization: `Bearer ${token} ${token}` }],
    ['two tokens, comma-separated', { authorization: `Bearer ${token}, Bearer ${token}` }],
    ['scheme glued to the token', { authorization: `Bearer${token}` }],
    ['token with a stray character', { authorization: `Bearer ${token}!` }],
    ['garbage', { authorization: 'Bearer not-a-jwt' }],
    ['two-part token', { authorization: `Bearer ${token.split('.').slice(0, 2).join('.')}` }],
    ['four-part token', { authorization: `Bearer ${token}.AAAA` }],
  ]
  for (const [name, headerSet] of headers) {
    t.comment(name)
    await expectRejected(t, await app.inject({ method: 'GET', url: '/auth/me', headers: headerSet }))
  }
  // Control: the scheme name is case-insensitive (RFC 7235).
  const res = await app.inject({ method: 'GET', url: '/auth/me', headers: { authorization: `bearer ${token}` } })
  t.equal(res.statusCode, 200)
})

t.test('a correctly signed token whose session was logged out gets token_revoked', async (t) => {
  const { token } = await signedIn(app)
  const out = await post(app, '/auth/logout', undefined, bearer(token))
  t.equal(out.statusCode, 204)
  await expectRejected(t, await me(app, token), 'token_revoked')
})

t.test('a correctly signed token with a stale ver (after logout-all) gets token_revoked', async (t) => {
  const first = await signedIn(app)
  const second = await post(app, '/auth/login', { email: first.account.email, password: first.account.password })
  const secondToken = (second.json() as { accessToken: string }).accessToken
  const out = await post(app, '/auth/logout-all', undefined, bearer(first.token))
  t.equal(out.statusCode, 204)
  await expectRejected(t, await me(app, first.token), 'token_revoked')
  await expectRejected(t, await me(app, secondToken), 'token_revoked')
  // Re-signing the old claims with the real key does not help: ver is stale.
  const resigned = await sign(first.payload as JWTPayload, realHeader(), keys.current.privateKey)
  await expectRejected(t, await me(app, resigned), 'token_revoked')
})

t.test('a correctly signed token whose ver is ahead of the user is refused', async (t) => {
  const { payload } = await signedIn(app)
  const ahead = await sign({ ...payload, ver: 1 } as JWTPayload, realHeader(), keys.current.privateKey)
  await expectRejected(t, await me(app, ahead), 'token_revoked')
})

t.test('a correctly signed token whose sub does not own its sid is refused', async (t) => {
  const victim = await signedIn(app)
  const attacker = await signedIn(app)
  const crossed = await sign({ ...attacker.payload, sub: victim.payload.sub } as JWTPayload, realHeader(), keys.current.privateKey)
  attacks++
  const res = await me(app, crossed)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], CHALLENGE)
  t.not(res.json().id, victim.payload.sub)
})

t.test('an ES256-configured service accepts its own tokens and refuses EdDSA ones', async (t) => {
  const es = await createTestApp(t, { env: { SIGNING_ALG: 'ES256' } })
  t.equal(es.keys.algorithm, 'ES256')
  const { token, header, payload } = await signedIn(es.app)
  t.match(header, { alg: 'ES256', typ: 'at+jwt', kid: es.keys.current.kid })
  t.equal((await me(es.app, token)).statusCode, 200, 'ES256 token accepted')

  // The same claims signed with an Ed25519 key, whether the kid is the
  // service's or the signer's own.
  const ed = await generateKeyPair('EdDSA', { extractable: true })
  const edKid = await calculateJwkThumbprint(await exportJWK(ed.publicKey))
  for (const kid of [es.keys.current.kid, edKid]) {
    const forged = await sign(payload as JWTPayload, { alg: 'EdDSA', typ: 'at+jwt', kid }, ed.privateKey)
    await expectRejected(t, await me(es.app, forged))
  }
  // A real token from the EdDSA service (this file's app) means nothing here.
  const foreign = await signedIn(app)
  await expectRejected(t, await me(es.app, foreign.token))
  // And HS256 keyed with the ES256 public key is refused too.
  await expectRejected(t, await me(es.app, hmacToken(header, payload, JSON.stringify(es.keys.current.publicJwk))))
})

t.test('a token signed with the ES256 service key is refused by the EdDSA service', async (t) => {
  const es = await createTestApp(t, { env: { SIGNING_ALG: 'ES256' } })
  const { payload } = await signedIn(app)
  const forged = await sign(payload as JWTPayload, { alg: 'ES256', typ: 'at+jwt', kid: keys.current.kid }, es.keys.current.privateKey)
  await expectRejected(t, await me(app, forged))
})

// ----------------------------------------------------------------------------
// kid, typ, nbf/exp edges, foreign issuers and audiences, and tokens of one
// kind presented as another.

t.test('a kid that looks like a path, a URL or SQL is refused with invalid_token', async (t) => {
  const { header, payload, signature } = await signedIn(app)
  const kids = [
    '../../etc/passwd', '/dev/null', '../../../../../../../dev/zero', 'file:///etc/passwd', 'https://evil.example/jwks.json',
    "' OR 1=1 --", `${keys.current.kid}' OR '1'='1`, `${keys.current.kid}/../${keys.current.kid}`, `${keys.current.kid}\u0000`,
    ` ${keys.current.kid}`, keys.current.kid.toUpperCase(), '%00', '', '*', '__proto__', 'constructor', 'toString', 'hasOwnProperty',
  ]
  for (const kid of kids) {
    t.comment(`kid ${JSON.stringify(kid)}`)
    // Signed with the service's own key: only the kid is wrong.
    await expectRejected(t, await me(app, await sign(payload as JWTPayload, { ...realHeader(), kid }, keys.current.privateKey)))
    // The real token's signature under an edited header.
    await expectRejected(t, await me(app, assemble({ ...header, kid }, payload, signature)))
  }
  for (const kid of [42, null, true, [keys.current.kid], { kid: keys.current.kid }]) {
    t.comment(`kid ${JSON.stringify(kid)} (not a string)`)
    await expectRejected(t, await me(app, await sign(payload as JWTPayload, { ...realHeader(), kid }, keys.current.privateKey)))
  }
  // Control: the real kid with the same claims is accepted, so the refusals above were about the kid.
  t.equal((await me(app, await sign(payload as JWTPayload, realHeader(), keys.current.privateKey))).statusCode, 200)
})

t.test('typ: only the media type at+jwt is accepted (case-insensitive, application/ prefix optional)', async (t) => {
  // RFC 7515 §4.1.9: typ is a media type, compared case-insensitively, and
  // "application/" may be omitted; RFC 9068 §4: at+jwt or application/at+jwt.
  // jose's typ check normalises exactly so. Everything else is refused.
  const { payload } = await signedIn(app)
  for (const typ of ['at+jwt', 'AT+JWT', 'At+Jwt', 'at+JWT', 'application/at+jwt', 'APPLICATION/AT+JWT', 'Application/At+Jwt']) {
    const res = await me(app, await sign(payload as JWTPayload, { ...realHeader(), typ }, keys.current.privateKey))
    attacks++
    t.equal(res.statusCode, 200, `typ ${typ}: the at+jwt media type is accepted`)
  }
  const refused: unknown[] = [
    'JWT', 'jwt', 'Jwt', 'application/jwt', 'APPLICATION/JWT', 'JOSE', 'JOSE+JSON', 'at+jws', 'at-jwt', 'at jwt', 'atjwt', 'at+jwt2', 'xat+jwt',
    'at+jwt ', ' at+jwt', 'at+jwt;', 'at+jwt; charset=utf-8', 'application/at+jwt; charset=utf-8', 'application/application/at+jwt',
    'text/at+jwt', 'x-application/at+jwt', 'application/at+jwt/', 'at+jwt\u0000', 'аt+jwt' /* Cyrillic а */, 'refresh+jwt', 'secevent+jwt',
    '', ['at+jwt'], { typ: 'at+jwt' }, 42, null, true,
  ]
  for (const typ of refused) {
    t.comment(`typ ${JSON.stringify(typ)}`)
    await expectRejected(t, await me(app, await sign(payload as JWTPayload, { ...realHeader(), typ }, keys.current.privateKey)))
  }
})

t.test('nbf: in the future beyond the clock skew is refused, within it accepted', async (t) => {
  const edge = await createTestApp(t)
  const { app: edgeApp, clock, config: edgeConfig, keys: edgeKeys } = edge
  clock.set(new Date(Math.ceil(Date.now() / 1000) * 1000 + 250)) // a quarter second past a whole second
  const { payload } = await signedIn(edgeApp)
  const now = Math.floor(clock.now().getTime() / 1000)
  const skew = edgeConfig.tokens.clockSkew
  t.equal(skew, 5)
  const withNbf = (nbf: number) => sign({ ...payload, nbf } as JWTPayload, { alg: edgeKeys.algorithm, typ: 'at+jwt', kid: edgeKeys.current.kid }, edgeKeys.current.privateKey)
  for (const nbf of [now - 3600, now, now + 1, now + skew - 1, now + skew]) {
    attacks++
    t.equal((await me(edgeApp, await withNbf(nbf))).statusCode, 200, `nbf now${nbf - now >= 0 ? '+' : ''}${nbf - now} s: within the skew, accepted`)
  }
  for (const nbf of [now + skew + 1, now + skew + 60, now + 86_400 * 365]) {
    t.comment(`nbf now+${nbf - now} s`)
    await expectRejected(t, await me(edgeApp, await withNbf(nbf)))
  }
  // Correctly signed, but nbf is not a NumericDate (or absurdly far): refused, not ignored.
  for (const nbf of ['0', String(now), null, true, [now], 1e300]) {
    t.comment(`nbf ${JSON.stringify(nbf)}`)
    const forged = await sign({ ...payload, nbf } as JWTPayload, { alg: edgeKeys.algorithm, typ: 'at+jwt', kid: edgeKeys.current.kid }, edgeKeys.current.privateKey)
    await expectRejected(t, await me(edgeApp, forged))
  }
  // The clock moves on: the token that was too early becomes valid.
  const early = await withNbf(now + skew + 1)
  clock.advance(2)
  attacks++
  t.equal((await me(edgeApp, early)).statusCode, 200, 'once the clock reaches nbf - skew it is accepted')
})

t.test('exp exactly at the edge, with the clock controlled to the millisecond', async (t) => {
  for (const skewSetting of ['5', '0']) {
    const { app: edgeApp, clock, config: edgeConfig } = await createTestApp(t, { env: { CLOCK_SKEW: skewSetting } })
    const skew = edgeConfig.tokens.clockSkew
    t.equal(skew, Number(skewSetting))
    clock.set(new Date(Math.ceil(Date.now() / 1000) * 1000)) // a whole second: iat and exp are exact
    const account = await register(edgeApp)
    const { exp } = decodeJwt(account.accessToken)
    t.equal(exp, Math.floor(clock.now().getTime() / 1000) + edgeConfig.tokens.accessTokenTtl)
    // jose: expired once exp <= now - skew, with now in whole seconds.
    clock.set(new Date((exp! + skew) * 1000 - 1))
    attacks++
    t.equal((await me(edgeApp, account.accessToken)).statusCode, 200, `skew ${skew}: 1 ms before exp + skew, accepted`)
    clock.set(new Date((exp! + skew) * 1000))
    await expectRejected(t, await me(edgeApp, account.accessToken), 'token_expired')
    clock.set(new Date((exp! + skew) * 1000 + 1))
    await expectRejected(t, await me(edgeApp, account.accessToken), 'token_expired')
    // Back in time (a clock corrected backwards): valid again, the check is stateless.
    clock.set(new Date((exp! + skew) * 1000 - 1000))
    attacks++
    t.equal((await me(edgeApp, account.accessToken)).statusCode, 200, `skew ${skew}: 1 s before the edge, accepted again`)
    // The refresh token outlives the access token: the session goes on.
    clock.set(new Date((exp! + skew) * 1000 + 60_000))
    t.equal((await refresh(edgeApp, account.refreshToken)).statusCode, 200, 'the session itself is unaffected')
  }
})

t.test('a real token of another service (same keys, same database, other iss or aud) is refused', async (t) => {
  const variants: Array<[string, Record<string, string>]> = [
    ['another issuer', { JWT_ISSUER: 'https://other.example' }],
    ['another audience', { JWT_AUDIENCE: 'another-service' }],
    ['another issuer and audience', { JWT_ISSUER: 'https://other.example', JWT_AUDIENCE: 'another-service' }],
  ]
  for (const [name, env] of variants) {
    t.comment(name)
    const other = await createTestApp(t, { env, keys, db: ctx.db })
    const theirs = await register(other.app)
    t.equal((await me(other.app, theirs.accessToken)).statusCode, 200, `${name}: valid where it was issued`)
    const { header } = partsOf(theirs.accessToken)
    t.equal(header.kid, keys.current.kid, `${name}: signed with the very same key`)
    await expectRejected(t, await me(app, theirs.accessToken))
    // ...and the other way round.
    const ours = await signedIn(app)
    await expectRejected(t, await me(other.app, ours.token))
  }
})

/** The newest reset token mailed to the development outbox of this file's app. */
async function resetTokenFor (email: string): Promise<string> {
  const outbox = path.join(ctx.dir, 'outbox')
  for (let i = 0; i < 200; i++) {
    for (const file of (await readdir(outbox).catch(() => [] as string[])).sort().reverse()) {
      const eml = (await readFile(path.join(outbox, file), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=')
      if (!eml.includes(email)) continue
      const match = /token=([^\s&]+)/.exec(eml)
      if (match) return decodeURIComponent(match[1]!)
    }
    await sleep(25)
  }
  throw new Error(`no reset message for ${email}`)
}

t.test('a reset token is neither an access token nor a refresh token, and a refresh token is no reset token', async (t) => {
  const { account } = await signedIn(app)
  const accepted = await post(app, '/auth/password/forgot', { email: account.email })
  t.equal(accepted.statusCode, 202)
  const resetToken = await resetTokenFor(account.email)
  t.match(resetToken, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/, 'a reset token has the shape of a refresh token: <id>.<secret>')

  // The reset token as a bearer access token.
  await expectRejected(t, await me(app, resetToken))
  // ...as a refresh token: no session has its id.
  attacks++
  const asRefresh = await refresh(app, resetToken)
  t.equal(asRefresh.statusCode, 401)
  t.equal(codeOf(asRefresh), 'refresh_token_invalid', 'a reset token is refresh_token_invalid')
  // A refresh token and an access token as reset tokens.
  for (const [name, token] of [['refresh token', account.refreshToken], ['access token', account.accessToken]] as const) {
    attacks++
    const asReset = await post(app, '/auth/password/reset', { token, newPassword: 'taken over passphrase' })
    t.equal(asReset.statusCode, 400, `a ${name} as reset token: 400`)
    t.equal(codeOf(asReset), 'reset_token_invalid', `a ${name} is reset_token_invalid`)
  }
  // None of that changed anything: the password, the session and the pending reset all stand.
  t.equal((await me(app, account.accessToken)).statusCode, 200, 'the session is untouched')
  t.equal((await post(app, '/auth/login', { email: account.email, password: PASSWORD })).statusCode, 200, 'the password is unchanged')
  const done = await post(app, '/auth/password/reset', { token: resetToken, newPassword: 'the owner\'s new passphrase' })
  t.equal(done.statusCode, 204, 'the misuse did not consume the reset token: its owner can still use it')
  // Spent, it is still nothing else either.
  await expectRejected(t, await me(app, resetToken))
  attacks++
  t.equal(codeOf(await refresh(app, resetToken)), 'refresh_token_invalid')
  await expectRejected(t, await me(app, account.accessToken), 'token_revoked')
  t.equal((await login(app, account.email, 'the owner\'s new passphrase')).tokenType, 'Bearer')
})

t.test('summary', async (t) => {
  t.ok(attacks > 0)
  t.comment(`forged-tokens: ${attacks} attack cases tried`)
})
