/**
 * The framework adapters answer the same way: the Express/Connect middleware
 * (on Node's own http server, the interface Connect and Express build on) and
 * the Fastify plugin put the claims on the request, refuse with 401 and a
 * Bearer challenge, and answer 503 with Retry-After when the verifier cannot
 * decide.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { vouchExpress, type AuthenticatedRequest } from '../src/express.js'
import { vouchAuth } from '../src/fastify.js'
import { accessToken, AUDIENCE, CLIENT, ISSUER, manualClock, outcome, signingKey, startPeer, until, verifierFor } from './helpers/peer.js'

async function connectedPeer (t: Test) {
  const key = await signingKey('key-1')
  const peer = await startPeer(t, [key])
  const clock = manualClock()
  return { key, peer, clock }
}

t.test('Express/Connect middleware: claims on req.user, 401 with a challenge, 503 with Retry-After', async (t) => {
  const { key, peer, clock } = await connectedPeer(t)
  const auth = vouchExpress({ vouchUrl: peer.url, issuer: ISSUER, audience: AUDIENCE, clientId: CLIENT.id, clientSecret: CLIENT.secret, clock })
  t.teardown(() => auth.verifier.close())
  const feed = await peer.nextConnection()
  feed.ready({ cursor: 1 })
  await auth.verifier.ready()

  const server = createServer((req, res) => {
    auth(req as typeof req & AuthenticatedRequest, res, (err) => {
      if (err) { res.statusCode = 500; res.end(); return }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ owner: (req as AuthenticatedRequest).user!.sub }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const get = (token?: string) => fetch(`${base}/orders`, { headers: token ? { authorization: `Bearer ${token}` } : {} })

  const token = await accessToken(key, clock, { sub: 'alice', sid: 'a-1' })
  let res = await get(token)
  t.equal(res.status, 200)
  t.same(await res.json(), { owner: 'alice' })

  res = await get()
  t.equal(res.status, 401)
  t.equal(res.headers.get('www-authenticate'), 'Bearer')
  t.same(await res.json(), { statusCode: 401, error: 'Unauthorized', code: 'invalid_token', message: 'A bearer access token is required.' })

  feed.revocations({ users: [], sessions: ['a-1'], cursor: 2 })
  await until(async () => await outcome(auth.verifier, token) === 'token_revoked', 'the batch is applied')
  res = await get(token)
  t.equal(res.status, 401)
  t.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  t.equal((await res.json()).code, 'token_revoked')

  clock.advance(60_000) // the feed has been silent for longer than maxFeedSilenceMs
  res = await get(await accessToken(key, clock))
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1')
  t.equal(res.headers.get('www-authenticate'), null)
  t.same(await res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable', message: 'Token revocation state is unavailable.' })
})

t.test('Fastify plugin: claims on request.user, public routes, 401 and 503 in vouch\'s shape, no encapsulation', async (t) => {
  const { key, peer, clock } = await connectedPeer(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(vouchAuth, { vouchUrl: peer.url, issuer: ISSUER, audience: AUDIENCE, clientId: CLIENT.id, clientSecret: CLIENT.secret, clock })
  app.get('/orders', async (request) => ({ owner: request.user!.sub }))
  app.get('/health', { config: { public: true } }, async () => ({ ok: true }))
  const feed = await peer.nextConnection()
  feed.ready({ cursor: 1 })
  await app.vouch.ready()
  t.ok(app.hasDecorator('vouch'), 'the decorator reaches the registering scope (skip-override)')
  t.match(app.printPlugins(), /vouch-auth/, 'registered under its name')

  const token = await accessToken(key, clock, { sub: 'alice', iss: ISSUER })
  const orders = (authorization?: string) => app.inject({ url: '/orders', headers: authorization ? { authorization } : {} })
  let res = await orders(`Bearer ${token}`)
  t.equal(res.statusCode, 200)
  t.same(res.json(), { owner: 'alice' })
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'a public route needs no token')

  res = await orders(`Bearer ${await accessToken(key, clock, { iss: 'http://localhost:3000' })}`)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.same(res.json(), { statusCode: 401, error: 'Unauthorized', code: 'invalid_token', message: 'The access token is invalid: refused on its "iss".' })

  clock.advance(60_000)
  res = await orders(`Bearer ${await accessToken(key, clock)}`)
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.same(res.json(), { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable', message: 'Token revocation state is unavailable.' })
})

t.test('Fastify plugin: a wrong option fails the registration with a TypeError naming it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(vouchAuth, { vouchUrl: 'http://127.0.0.1:1', issuer: '', audience: 'vouch', clientId: 'a', clientSecret: 'b' })
  await t.rejects(async () => { await app.ready() }, { name: 'TypeError', message: /"issuer"/ })
})

t.test('a verifier passed to an adapter is shared, and stays the caller\'s to close', async (t) => {
  const { peer } = await connectedPeer(t)
  const verifier = verifierFor(t, peer)
  const app = Fastify()
  await app.register(vouchAuth, { verifier })
  t.equal(app.vouch, verifier)
  t.equal(vouchExpress({ verifier }).verifier, verifier)
  const feed = await peer.nextConnection()
  await app.close()
  feed.ready({ cursor: 1 })
  await verifier.ready()
  t.ok(verifier.feedLive, 'closing the app did not close a verifier it was given')
})
