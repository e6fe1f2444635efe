/**
 * Guessing a resource server's client secret at /auth/introspect or on the
 * revocation feed: failures are throttled per client id and IP, and per
 * client id from every IP, while the resource servers that already use the
 * client keep working.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { codeOf, register } from '../helpers/client.js'

const ORDERS = { id: 'orders', secret: 'Qyc49k2XzTupJFeqVpsMEwiwldwH1m8tSUFhab5T7wQ' }
const BILLING = { id: 'billing', secret: '614w_D7i6T2cl2R7C1P88MOWGEZdPB2T6WXmEhuiuCo' }
const CLIENTS = { RESOURCE_CLIENTS: `${ORDERS.id}:${ORDERS.secret},${BILLING.id}:${BILLING.secret}` }
const ATTACKER = '203.0.113.66'

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

function introspect (app: FastifyInstance, token: string, client: { id: string, secret: string }, ip: string) {
  return app.inject({
    method: 'POST', url: '/auth/introspect', remoteAddress: ip,
    headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ token }).toString(),
  })
}

const guess = (n: number) => ({ id: ORDERS.id, secret: `guess-${n}-${'x'.repeat(30)}` })

t.test('hammering one client id with wrong secrets gets 429 with Retry-After after the limit, even for the right secret', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, CLIENT_AUTH_MAX_FAILURES: '10' } })
  const user = await register(app)
  const answers: number[] = []
  for (let i = 0; i < 50; i++) answers.push((await introspect(app, user.accessToken, guess(i), ATTACKER)).statusCode)
  t.same(answers.slice(0, 10), Array(10).fill(401), 'the first 10 wrong secrets are 401')
  t.same([...new Set(answers.slice(10))], [429], 'every later guess is 429: 50 guesses tried only 10 secrets')

  const limited = await introspect(app, user.accessToken, guess(99), ATTACKER)
  t.equal(codeOf(limited), 'rate_limited')
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 900, `Retry-After: ${limited.headers['retry-after']}`)
  t.equal(codeOf(await introspect(app, user.accessToken, ORDERS, ATTACKER)), 'rate_limited', 'a right guess cannot be told apart')
  // (A wrong secret: a right one would open a stream that never ends, were the limit missing.)
  const feed = await app.inject({ method: 'GET', url: '/auth/revocations', remoteAddress: ATTACKER, headers: { authorization: basic(ORDERS.id, guess(100).secret) } })
  t.equal(codeOf(feed), 'rate_limited', 'the revocation feed shares the limit')

  const legit = await introspect(app, user.accessToken, ORDERS, '192.0.2.10')
  t.equal(legit.statusCode, 200, 'the client authenticates from its own address')
  t.equal(legit.json().active, true)
  t.equal((await introspect(app, user.accessToken, BILLING, ATTACKER)).statusCode, 200, 'another client from the same address is unaffected')
})

t.test('a guess spread over many addresses locks the client for new addresses, never for one that authenticated as it', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, CLIENT_AUTH_MAX_FAILURES: '100', CLIENT_AUTH_MAX_CLIENT_FAILURES: '5' } })
  const user = await register(app)
  t.equal((await introspect(app, user.accessToken, ORDERS, '192.0.2.10')).statusCode, 200, 'the resource server is in use')
  for (let i = 0; i < 5; i++) t.equal((await introspect(app, user.accessToken, guess(i), `198.51.100.${i}`)).statusCode, 401)
  t.equal(codeOf(await introspect(app, user.accessToken, guess(5), '198.51.100.50')), 'rate_limited', 'a new address is refused')
  t.equal(codeOf(await introspect(app, user.accessToken, ORDERS, '198.51.100.51')), 'rate_limited', 'even with the right secret')
  t.equal((await introspect(app, user.accessToken, ORDERS, '192.0.2.10')).statusCode, 200, 'the resource server in use is not locked out')
  t.equal((await introspect(app, user.accessToken, BILLING, '198.51.100.52')).statusCode, 200, 'other clients are unaffected')
})

t.test('client ids that do not exist are throttled like real ones', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, CLIENT_AUTH_MAX_FAILURES: '3' } })
  const user = await register(app)
  for (let i = 0; i < 3; i++) t.equal((await introspect(app, user.accessToken, { id: `nobody-${i}`, secret: ORDERS.secret }, ATTACKER)).statusCode, 401)
  t.equal(codeOf(await introspect(app, user.accessToken, { id: 'nobody-else', secret: ORDERS.secret }, ATTACKER)), 'rate_limited')
})

t.test('a success below the limit clears the count, and the limit ends with its window', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, CLIENT_AUTH_MAX_FAILURES: '3', CLIENT_AUTH_FAILURE_WINDOW: '1' } })
  const user = await register(app)
  for (let round = 0; round < 3; round++) {
    t.equal((await introspect(app, user.accessToken, guess(round), ATTACKER)).statusCode, 401)
    t.equal((await introspect(app, user.accessToken, guess(round), ATTACKER)).statusCode, 401)
    t.equal((await introspect(app, user.accessToken, ORDERS, ATTACKER)).statusCode, 200, `round ${round}: a mistyped secret, then the right one`)
  }
  for (let i = 0; i < 3; i++) await introspect(app, user.accessToken, guess(i), ATTACKER)
  t.equal(codeOf(await introspect(app, user.accessToken, ORDERS, ATTACKER)), 'rate_limited')
  await sleep(1100)
  t.equal((await introspect(app, user.accessToken, ORDERS, ATTACKER)).statusCode, 200, 'allowed again once the window has passed')
})
