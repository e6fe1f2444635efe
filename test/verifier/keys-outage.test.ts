/**
 * @vouch/verifier/fastify when vouch's signing keys cannot be fetched: an
 * outage is an availability failure (503 with Retry-After), never a verdict
 * on the token (401 invalid_token); with fallback: 'introspect' vouch judges
 * the token instead. A kid missing from a JWKS that was fetched is still the
 * token's fault.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { vouchAuth } from '@vouch/verifier/fastify'
import type { VerifierOptions } from '@vouch/verifier'
import { createTestApp } from '../helpers/app.js'
import { bearer, post, register } from '../helpers/client.js'
import { freePort } from '../helpers/process.js'

const CLIENT = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const ISSUER = 'http://vouch.test'
const ENV = { RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, REVOCATION_FEED_HEARTBEAT_MS: '200', JWT_ISSUER: ISSUER }

/** A resource server (the Fastify plugin) with one protected route. */
async function resourceServer (t: Test, options: Omit<VerifierOptions, 'issuer' | 'audience' | 'clientId' | 'clientSecret'>): Promise<FastifyInstance> {
  const api = Fastify()
  await api.register(vouchAuth, { issuer: ISSUER, audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret, ...options })
  api.get('/orders', async (request) => ({ owner: request.user!.sub }))
  t.teardown(() => api.close())
  return api
}

const orders = (api: FastifyInstance, token: string) => api.inject({ method: 'GET', url: '/orders', headers: bearer(token) })

/** vouch, listening on a loopback port. */
async function runningVouch (t: Test) {
  const context = await createTestApp(t, { env: ENV })
  await context.app.listen({ host: '127.0.0.1', port: 0 })
  return { ...context, base: `http://127.0.0.1:${(context.app.server.address() as { port: number }).port}` }
}

t.test('a resource server whose verifier never fetched the JWKS answers 503, not 401, while vouch is down', async (t) => {
  // The tokens come from vouch; the resource server only knows an address where nothing answers.
  const { app } = await createTestApp(t, { env: ENV })
  const alice = await register(app)
  const down = `http://127.0.0.1:${await freePort()}`

  for (const fallback of ['fail-closed', 'introspect'] as const) {
    const api = await resourceServer(t, { vouchUrl: down, fallback })
    const res = await orders(api, alice.accessToken)
    t.equal(res.statusCode, 503, `${fallback}: an outage is not a verdict on the token`)
    t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable', message: 'Token signing keys are unavailable.' })
    t.equal(res.headers['retry-after'], '1', `${fallback}: the client is told to retry`)
    t.notOk(res.headers['www-authenticate'], `${fallback}: no Bearer challenge: the token was not judged`)
    t.equal((await orders(api, alice.accessToken)).statusCode, 503, `${fallback}: and again (a failed fetch is not a cached verdict)`)
    const garbage = await orders(api, 'not-a-jwt')
    t.equal(garbage.statusCode, 401, `${fallback}: a token that is malformed needs no keys to be refused`)
    t.equal(garbage.json().code, 'invalid_token')
  }
})

t.test('with fallback: introspect, a JWKS that cannot be fetched falls back to asking vouch', async (t) => {
  const { app, base } = await runningVouch(t)
  const alice = await register(app)
  const bob = await register(app)
  // Only the JWKS fails: a route vouch does not have (404), or a port where nothing listens.
  for (const jwksUrl of [`${base}/no-such-jwks`, `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`]) {
    const api = await resourceServer(t, { vouchUrl: base, jwksUrl, fallback: 'introspect' })
    await api.vouch.ready()
    const res = await orders(api, bob.accessToken)
    t.equal(res.statusCode, 200, `${jwksUrl}: a live token is confirmed by introspection`)
    t.equal(res.json().owner, bob.user.id, 'with its claims')
  }

  const api = await resourceServer(t, { vouchUrl: base, jwksUrl: `${base}/no-such-jwks`, fallback: 'introspect' })
  await api.vouch.ready()
  t.equal((await orders(api, alice.accessToken)).statusCode, 200)
  t.equal((await post(app, '/auth/logout-all', undefined, bearer(alice.accessToken))).statusCode, 204)
  const refused = await orders(api, alice.accessToken)
  t.equal(refused.statusCode, 401, 'a token vouch no longer accepts is refused')
  t.equal(refused.json().code, 'invalid_token')

  const strict = await resourceServer(t, { vouchUrl: base, jwksUrl: `${base}/no-such-jwks` })
  await strict.vouch.ready()
  const unavailable = await orders(strict, bob.accessToken)
  t.equal(unavailable.statusCode, 503, 'without the fallback, the same outage fails closed')
  t.equal(unavailable.json().code, 'service_unavailable')
})

t.test('a kid missing from a JWKS that was fetched is still invalid_token', async (t) => {
  const { app, base } = await runningVouch(t)
  const alice = await register(app)
  const api = await resourceServer(t, { vouchUrl: base })
  await api.vouch.ready()
  t.equal((await orders(api, alice.accessToken)).statusCode, 200, 'the JWKS is fetched')

  const { privateKey } = await generateKeyPair('EdDSA')
  const claims = decodeJwt(alice.accessToken)
  const { kid } = decodeProtectedHeader(alice.accessToken)
  for (const header of [{ kid: 'not-a-key-of-vouch' }, { kid: kid! }]) {
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header }).sign(privateKey)
    const res = await orders(api, forged)
    t.equal(res.statusCode, 401, `kid ${header.kid}: refused`)
    t.equal(res.json().code, 'invalid_token')
  }
})
