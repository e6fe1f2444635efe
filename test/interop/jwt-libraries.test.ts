/**
 * Bring your own JWT library: independent, widely used libraries that know
 * nothing of vouch accept its access tokens knowing only the issuer (its
 * RFC 8414 metadata, then the JWKS), and refuse a forged one:
 *
 * - oauth4webapi's `validateJwtAccessToken`, a strict RFC 9068 validator
 *   (`typ: at+jwt`; `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`);
 * - fast-jwt, with its own `requiredClaims` and `checkTyp`;
 * - PyJWT (Debian's python3-jwt), not JavaScript at all.
 *
 * And a standard OAuth client (oauth4webapi) discovers the metadata, then
 * introspects (RFC 7662) and revokes (RFC 7009) through the endpoints it
 * names. Real HTTP on loopback; the issuer is not configured but derived
 * from where the server listens, which is the point.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createVerifier, type Algorithm } from 'fast-jwt'
import * as oauth from 'oauth4webapi'
import { createTestApp } from '../helpers/app.js'
import { freePort } from '../helpers/process.js'
import type { SigningAlgorithm } from '../../src/config.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const RFC9068_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']
const insecure = { [oauth.allowInsecureRequests]: true } // plain http on loopback only

/** Debian's interpreter, where apt-get puts python3-jwt (not whatever python3 is first on PATH). */
const PYTHON = '/usr/bin/python3'
const PYJWT_SCRIPT = fileURLToPath(new URL('./pyjwt_verify.py', import.meta.url))
const PYJWT_MISSING = 'PyJWT not installed (apt-get install python3-jwt python3-cryptography; .ci/run does)'
const hasPyJwt = spawnSync(PYTHON, ['-c', 'import jwt, cryptography'], { timeout: 10_000 }).status === 0

/** A vouch listening on a loopback port, with no JWT_ISSUER or PUBLIC_URL: it derives its issuer. */
async function listeningVouch (t: Test, algorithm: SigningAlgorithm = 'EdDSA') {
  const port = await freePort()
  const { app, config } = await createTestApp(t, {
    env: { PORT: String(port), SIGNING_ALG: algorithm, RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}` },
  })
  await app.listen({ host: '127.0.0.1', port })
  const issuer = config.tokens.issuer
  t.equal(issuer, `http://127.0.0.1:${port}`, 'the issuer is where vouch serves')
  const register = async () => {
    const res = await fetch(`${issuer}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `interop-${process.pid}-${Math.random()}@example.com`, password: 'correct horse battery staple' }),
    })
    t.equal(res.status, 201)
    return await res.json() as { accessToken: string, refreshToken: string, sessionId: string, user: { id: string } }
  }
  return { issuer, port, register }
}

/** The signature bytes changed: every library must refuse it. */
const forge = (token: string) => {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const bytes = Buffer.from(signature, 'base64url')
  bytes[0]! ^= 1
  return `${header}.${payload}.${bytes.toString('base64url')}`
}

async function discover (issuer: string, algorithm: 'oauth2' | 'oidc' = 'oauth2') {
  const url = new URL(issuer)
  return oauth.processDiscoveryResponse(url, await oauth.discoveryRequest(url, { algorithm, ...insecure }))
}

function pyjwt (issuer: string, audience: string, token: string): Promise<{ code: number | null, out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [PYJWT_SCRIPT, issuer, audience], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 20_000 })
    let out = ''
    child.stdout.on('data', (chunk) => { out += chunk })
    child.stderr.on('data', (chunk) => { out += chunk })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, out: out.trim() }))
    child.stdin.end(token)
  })
}

for (const algorithm of ['EdDSA', 'ES256'] as const) {
  t.test(`${algorithm}: oauth4webapi's strict RFC 9068 validator accepts vouch's access tokens from the discovered metadata`, async (t) => {
    const { issuer, register } = await listeningVouch(t, algorithm)
    const user = await register()
    const as = await discover(issuer)
    const request = (token: string) => new Request('http://127.0.0.1/orders', { headers: { authorization: `Bearer ${token}` } })

    const claims = await oauth.validateJwtAccessToken(as, request(user.accessToken), 'vouch', insecure)
    t.match(claims, { iss: issuer, aud: 'vouch', sub: user.user.id, client_id: 'vouch', jti: String, iat: Number, exp: Number, sid: user.sessionId, ver: 0 })

    await t.rejects(oauth.validateJwtAccessToken(as, request(forge(user.accessToken)), 'vouch', insecure), 'a forged signature is refused')
    await t.rejects(oauth.validateJwtAccessToken(as, request(user.accessToken), 'another-api', insecure), 'another audience is refused')
    await t.rejects(oauth.validateJwtAccessToken({ ...as, issuer: 'http://localhost:1' }, request(user.accessToken), 'vouch', insecure),
      'another issuer is refused')
  })

  t.test(`${algorithm}: fast-jwt accepts vouch's access tokens with the JWKS the metadata names`, async (t) => {
    const { issuer, register } = await listeningVouch(t, algorithm)
    const user = await register()
    const metadata = await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json() as { issuer: string, jwks_uri: string }
    const jwks = await (await fetch(metadata.jwks_uri)).json() as { keys: Array<JsonWebKey & { kid: string, alg: string }> }
    // fast-jwt takes PEM keys: each JWK of the set, by kid, with the algorithm the JWK declares.
    const keyOf = (kid: unknown) => {
      const jwk = jwks.keys.find((key) => key.kid === kid)
      if (jwk === undefined) throw new Error(`no key ${String(kid)}`)
      return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    }
    const verify = createVerifier({
      key: async (decoded: { header: { kid?: string } }) => keyOf(decoded.header.kid),
      algorithms: [...new Set(jwks.keys.map((key) => key.alg as Algorithm))],
      allowedIss: metadata.issuer,
      allowedAud: 'vouch',
      requiredClaims: RFC9068_CLAIMS,
      checkTyp: 'at+jwt',
    })

    const claims = await verify(user.accessToken)
    t.match(claims, { iss: issuer, aud: 'vouch', sub: user.user.id, client_id: 'vouch', jti: String })
    t.equal(jwks.keys[0]!.alg, algorithm)
    await t.rejects(verify(forge(user.accessToken)), { code: 'FAST_JWT_INVALID_SIGNATURE' }, 'a forged signature is refused')
  })
}


t.test('PyJWT (Python) accepts vouch\'s access tokens knowing only the issuer, EdDSA and ES256', {
  // .ci/run installs PyJWT and sets VOUCH_REQUIRE_SERVICES=1: there its absence fails.
  skip: !hasPyJwt && process.env.CI !== 'true' && process.env.VOUCH_REQUIRE_SERVICES !== '1' ? PYJWT_MISSING : false,
}, async (t) => {
  if (!hasPyJwt) {
    t.fail(`${PYJWT_MISSING}: CI must have it`)
    return
  }
  for (const algorithm of ['EdDSA', 'ES256'] as const) {
    const { issuer, register } = await listeningVouch(t, algorithm)
    const user = await register()

    const accepted = await pyjwt(issuer, 'vouch', user.accessToken)
    t.equal(accepted.code, 0, `${algorithm}: ${accepted.out}`)
    t.match(JSON.parse(accepted.out), { iss: issuer, aud: 'vouch', sub: user.user.id, client_id: 'vouch', sid: user.sessionId, ver: 0 })

    const forged = await pyjwt(issuer, 'vouch', forge(user.accessToken))
    t.equal(forged.code, 1)
    t.match(forged.out, /^rejected: InvalidSignatureError/, `${algorithm}: a forged signature is refused`)
    const otherAudience = await pyjwt(issuer, 'another-api', user.accessToken)
    t.match(otherAudience.out, /^rejected: InvalidAudienceError/, `${algorithm}: another audience is refused`)
  }
})

t.test('a standard OAuth client discovers the metadata, then introspects and revokes through the discovered endpoints', async (t) => {
  const { issuer, register } = await listeningVouch(t)
  const viaOauth2 = await discover(issuer, 'oauth2')
  const viaOidc = await discover(issuer, 'oidc')
  t.same(viaOidc, viaOauth2, '/.well-known/openid-configuration is the same document')
  const as = viaOauth2
  t.equal(as.introspection_endpoint, `${issuer}/auth/introspect`)
  t.equal(as.revocation_endpoint, `${issuer}/auth/revoke`)
  const client: oauth.Client = { client_id: CLIENT.id }
  const basic = oauth.ClientSecretBasic(CLIENT.secret)
  const post = oauth.ClientSecretPost(CLIENT.secret)
  const introspect = async (token: string) =>
    oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, basic, token, insecure))

  // A resource client introspects, then revokes an access token with its credentials: the session ends.
  const a = await register()
  t.match(await introspect(a.accessToken), { active: true, sub: a.user.id, client_id: 'vouch', iss: issuer, aud: 'vouch' })
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, post, a.accessToken, { ...insecure, additionalParameters: { token_type_hint: 'access_token' } }))
  t.same(await introspect(a.accessToken), { active: false }, 'revoked')
  const refreshA = await fetch(`${issuer}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: a.refreshToken }) })
  t.equal(refreshA.status, 401, 'its session ended: the refresh token is dead too')

  // vouch's own app, a public client, revokes its refresh token with no credentials.
  const b = await register()
  const app: oauth.Client = { client_id: 'vouch' }
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, app, oauth.None(), b.refreshToken, insecure))
  t.same(await introspect(b.accessToken), { active: false }, 'the session of the revoked refresh token ended')

  // Unknown tokens are a success (RFC 7009 §2.2); wrong client credentials are not.
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, basic, 'no-such-token', insecure))
  const c = await register()
  const wrong = oauth.ClientSecretBasic('Wrong-Secret-Qyc49k2XzTupJFeqVpsMEwiwld')
  const refused = await oauth.revocationRequest(as, client, wrong, c.accessToken, insecure)
  t.equal(refused.status, 401)
  t.equal(refused.headers.get('www-authenticate'), 'Basic realm="vouch"')
  await t.rejects(oauth.processRevocationResponse(refused), oauth.WWWAuthenticateChallengeError, 'the client library reports the Basic challenge')
  t.match(await introspect(c.accessToken), { active: true }, 'and the token lives on')
})
