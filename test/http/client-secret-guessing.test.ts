/**
 * Guessing a resource server's client secret at /auth/introspect or on the
 * revocation feed: failures are throttled per client id and IP, per client
 * id from every IP, and per IP over all ids, while the resource servers that
 * already use the client keep working; and the throttle's answers never tell
 * which client ids exist, at introspection or at /admin.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { createTestApp } from '../helpers/app.js'
import { codeOf, register } from '../helpers/client.js'
import { createApiClients } from '../../src/domain/api-clients.js'

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

t.test('client ids that do not exist are throttled like real ones, and spraying them stops at the address\'s total', async (t) => {
  const { app } = await createTestApp(t, { env: { ...CLIENTS, CLIENT_AUTH_MAX_FAILURES: '3' } })
  const user = await register(app)
  for (let i = 0; i < 3; i++) t.equal((await introspect(app, user.accessToken, { id: 'nobody', secret: ORDERS.secret }, ATTACKER)).statusCode, 401)
  t.equal(codeOf(await introspect(app, user.accessToken, { id: 'nobody', secret: ORDERS.secret }, ATTACKER)), 'rate_limited',
    'the fourth failure for one made-up id, as for a real one')
  // 10 × CLIENT_AUTH_MAX_FAILURES failures per address, whatever the ids: 3 spent above, 27 more.
  for (let i = 0; i < 27; i++) {
    t.equal((await introspect(app, user.accessToken, { id: `nobody-${i}`, secret: ORDERS.secret }, ATTACKER)).statusCode, 401, `made-up id ${i}`)
  }
  t.equal(codeOf(await introspect(app, user.accessToken, { id: 'nobody-else', secret: ORDERS.secret }, ATTACKER)), 'rate_limited', 'past the total')
  t.equal(codeOf(await introspect(app, user.accessToken, BILLING, ATTACKER)), 'rate_limited', 'a real client from that address too, even with its right secret')
  t.equal((await introspect(app, user.accessToken, BILLING, '192.0.2.10')).statusCode, 200, 'other addresses are unaffected')
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

const ADMIN = { id: 'ops', secret: 'hT3a9Qm2ZkVxW7pLr4sN8yBcEfGjKuDd0oIiXw1vS6e' }
const wrongSecret = (n: number) => `wrong-${n}-${'y'.repeat(40)}`

/** The configured clients above, an admin client, and stored ones of both kinds (api2, console). */
async function directoryApp (t: Parameters<typeof createTestApp>[0], env: Record<string, string>) {
  const context = await createTestApp(t, { env: { ...CLIENTS, ADMIN_CLIENTS: `${ADMIN.id}:${ADMIN.secret}`, ...env } })
  const stored = createApiClients({ db: context.db, clock: context.clock })
  await stored.add('api2', 'resource')
  await stored.add('console', 'admin')
  return context
}

type Endpoint = 'introspection' | 'admin'

/** One client authentication at `endpoint` with a wrong secret for `id`. */
function attempt (app: FastifyInstance, endpoint: Endpoint, id: string, secret: string, ip: string) {
  const authorization = basic(id, secret)
  return endpoint === 'admin'
    ? app.inject({ method: 'GET', url: `/admin/users/${randomUUID()}`, remoteAddress: ip, headers: { authorization } })
    : app.inject({
      method: 'POST', url: '/auth/introspect', remoteAddress: ip,
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'token=x',
    })
}

const answerOf = (res: LightMyRequestResponse) => `${res.statusCode} ${codeOf(res) ?? ''}`

for (const endpoint of ['introspection', 'admin'] as const) {
  t.test(`${endpoint}: after made-up ids from one address, a real id with a wrong secret answers as a made-up one (the reviewer's probe)`, async (t) => {
    const { app } = await directoryApp(t, { CLIENT_AUTH_MAX_FAILURES: '10' })
    for (let i = 1; i <= 12; i++) t.equal((await attempt(app, endpoint, `nosuch${i}`, wrongSecret(i), ATTACKER)).statusCode, 401, `nosuch${i}`)
    const answers = new Map<string, string>()
    for (const id of ['candidate-x', ADMIN.id, 'api2', 'console', ORDERS.id]) answers.set(id, answerOf(await attempt(app, endpoint, id, wrongSecret(0), ATTACKER)))
    t.same(Object.fromEntries(answers), Object.fromEntries([...answers.keys()].map((id) => [id, '401 invalid_credentials'])),
      'an unknown id, an admin, stored and configured clients: all one answer')
  })
}

/**
 * An attacker's requests, from one address and from several, all with wrong
 * secrets, probing `target`: the answers (status, code, Retry-After) it sees.
 * Each run has addresses and made-up ids of its own, so that runs in one app
 * do not share a counter.
 */
async function probe (app: FastifyInstance, endpoint: Endpoint, target: string, run: number) {
  const seen: Array<{ answer: string, retryAfter: number }> = []
  let n = 0
  const send = async (id: string, ip: string) => {
    const res = await attempt(app, endpoint, id, wrongSecret(n++), ip)
    seen.push({ answer: answerOf(res), retryAfter: Number(res.headers['retry-after'] ?? 0) })
  }
  const ip = (group: number, host: number) => `10.${run}.${group}.${host}`
  // One address: made-up ids, then the target past its limit per id and address.
  for (let i = 0; i < 2; i++) await send(`made-up-${run}-${i}`, ip(0, 1))
  for (let i = 0; i < 4; i++) await send(target, ip(0, 1))
  // Several addresses: the target past its limit per id from all addresses, then new addresses.
  for (let host = 1; host <= 4; host++) for (let i = 0; i < 2; i++) await send(target, ip(1, host))
  for (let host = 5; host <= 6; host++) await send(target, ip(1, host))
  // One address spraying made-up ids past its total, then the target from it.
  for (let i = 0; i < 31; i++) await send(`spray-${run}-${i}`, ip(2, 1))
  await send(target, ip(2, 1))
  // Many addresses, one made-up id each, then the target from a new address.
  for (let host = 1; host <= 8; host++) await send(`one-each-${run}-${host}`, ip(3, host))
  await send(target, ip(3, 100))
  return seen
}

for (const [endpoint, targets] of [
  // At introspection an admin client is no client (client-auth.ts); at /admin every kind is checked.
  ['introspection', [ORDERS.id, 'api2', ADMIN.id]],
  ['admin', [ADMIN.id, 'console', 'api2', ORDERS.id]],
] as const) {
  t.test(`${endpoint}: every answer the attacker sees is the same whether the probed id is a client or not`, async (t) => {
    const { app } = await directoryApp(t, { CLIENT_AUTH_MAX_FAILURES: '3', CLIENT_AUTH_MAX_CLIENT_FAILURES: '6' })
    const unknown = await probe(app, endpoint, 'candidate-x', 1)
    t.ok(unknown.some(({ answer }) => answer === '429 rate_limited') && unknown.some(({ answer }) => answer === '401 invalid_credentials'),
      'the probe meets the limits')
    for (const [i, target] of targets.entries()) {
      const known = await probe(app, endpoint, target, i + 2)
      t.same(known.map(({ answer }) => answer), unknown.map(({ answer }) => answer), `${target}: the same statuses and codes, in order`)
      const retryAfter = known.map(({ retryAfter }, j) => Math.abs(retryAfter - unknown[j]!.retryAfter) <= 1)
      t.notOk(retryAfter.includes(false), `${target}: the same Retry-After (to the second)`)
    }
  })
}
