/**
 * The client authentication throttle (src/limits/client-auth-throttle.ts) on
 * both kinds of counters, in memory and in Redis: 429 past the limit per id
 * and address even for the right secret; an address spraying made-up ids
 * stopped at its total, with a bounded number of bounded keys; the limit per
 * id from all addresses, sparing addresses some client authenticated from,
 * for every id alike; windows that end.
 */
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createClientAuthThrottle, type ClientAuthThrottleSettings, type ClientThrottled } from '../../src/limits/client-auth-throttle.js'
import { memoryCounters, redisCounters, type Counters } from '../../src/limits/counters.js'
import { DomainError } from '../../src/errors.js'
import { REDIS_URL, requireRedis } from '../helpers/services.js'

const SETTINGS: ClientAuthThrottleSettings = { perClientAndIp: 3, perClient: 6, perIp: 12, window: 60 }

/** Counters that remember every key they were asked to count, around real ones. */
function recording (counters: Counters): Counters & { written: Set<string> } {
  const written = new Set<string>()
  return {
    written,
    increment: async (key, windowMs) => { written.add(key); return counters.increment(key, windowMs) },
    peek: (key) => counters.peek(key),
    reset: (key) => counters.reset(key),
  }
}

interface Backend {
  /** Counters on this backend, with a clock where the backend can be given one; undefined when it is missing (the test is skipped). */
  counters (t: Test, now: () => number): Promise<(Counters & { ttlsMs?: () => Promise<number[]> }) | undefined>
}

const BACKENDS: Record<string, Backend> = {
  memory: { counters: async (_t, now) => memoryCounters(now) },
  redis: {
    async counters (t) {
      if (!await requireRedis(t)) return undefined
      const redis = new Redis(REDIS_URL, { lazyConnect: true })
      await redis.connect()
      const prefix = `test:client-auth-throttle:${randomUUID()}:`
      const keys = () => redis.keys(`${prefix}*`)
      t.teardown(async () => {
        const left = await keys()
        if (left.length > 0) await redis.del(...left)
        await redis.quit()
      })
      const counters = redisCounters(redis, prefix, (err) => { throw err })
      return { ...counters, ttlsMs: async () => Promise.all((await keys()).map((key) => redis.pttl(key))) }
    },
  },
}

const isLimited = (err: unknown) => err instanceof DomainError && err.code === 'rate_limited' && (err.retryAfter ?? 0) > 0
/** 'ok' or 'limited' (anything else throws): the throttle's answer to one call. */
async function answer (call: Promise<void>): Promise<'ok' | 'limited'> {
  try {
    await call
    return 'ok'
  } catch (err) {
    if (isLimited(err)) return 'limited'
    throw err
  }
}

for (const [name, backend] of Object.entries(BACKENDS)) {
  t.test(name, async (t) => {
    const setUp = async (t: Test, settings = SETTINGS) => {
      let now = Date.now()
      const counters = await backend.counters(t, () => now)
      if (counters === undefined) return undefined
      const counted = recording(counters)
      const events: ClientThrottled[] = []
      const throttle = createClientAuthThrottle(counted, settings, (event) => events.push(event), () => now)
      return { throttle, counted, events, ttlsMs: counters.ttlsMs, advance: (ms: number) => { now += ms } }
    }

    t.test('past its limit per id and address, that address is refused for that id even with the right secret', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle, events } = setup
      for (let i = 0; i < 3; i++) t.equal(await answer(throttle.failed('orders', '203.0.113.1')), 'ok', `failure ${i + 1}`)
      t.equal(await answer(throttle.failed('orders', '203.0.113.1')), 'limited', 'the fourth failure')
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.1')), 'limited', 'the right secret too')
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.2')), 'ok', 'another address')
      t.equal(await answer(throttle.succeeded('billing', '203.0.113.1')), 'ok', 'another id from that address')
      t.same(events, [{ clientId: 'orders', ip: '203.0.113.1', limit: 'client_and_ip' }], 'told once')
    })

    t.test('an address spraying made-up ids is stopped at its total, then refused for every id; its keys are few and short', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle, counted, events, ttlsMs } = setup
      const answers = []
      for (let i = 0; i < 120; i++) answers.push(await answer(throttle.failed(`made-up-${i}`, '203.0.113.9')))
      t.same(answers, [...Array(12).fill('ok'), ...Array(108).fill('limited')], 'the first 12 failures are answered, the other 108 refused')
      t.equal(await answer(throttle.failed('orders', '203.0.113.9')), 'limited', 'a real id from that address')
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.9')), 'limited', 'even with its right secret: a right guess would stand out')
      t.equal(await answer(throttle.failed('made-up-200', '203.0.113.10')), 'ok', 'other addresses are unaffected')
      // Per answered failure: the id's count and the id and address's; and one total per address.
      t.ok(counted.written.size <= (2 * 12 + 1) + (2 + 1), `${counted.written.size} keys written for 121 failures from one address and one from another`)
      t.same(events.map(({ limit }) => limit), ['ip'], 'told once')

      if (ttlsMs !== undefined) {
        const ttls = await ttlsMs()
        t.ok(ttls.length > 0 && ttls.every((ttl) => ttl > 0 && ttl <= SETTINGS.window * 1000), 'every key in Redis expires with the window')
      }

      t.equal(await answer(throttle.failed('x'.repeat(10_000), '203.0.113.11')), 'ok')
      const longest = Math.max(...[...counted.written].map((key) => key.length))
      t.ok(longest <= 200, `a made-up id of 10,000 characters makes keys of ${longest} characters at most`)
    })

    t.test('a burst of concurrent failures with made-up ids stores no more than the address\'s total allows', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle, counted } = setup
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => answer(throttle.failed(`burst-${i}`, '203.0.113.12'))))
      t.equal(answers.filter((a) => a === 'ok').length, 12, 'twelve answered, the rest refused')
      t.ok(counted.written.size <= 2 * 12 + 1, `${counted.written.size} keys written`)
    })

    t.test('a made-up id cannot stand for the counter of another id and address', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle } = setup
      for (let i = 0; i < 5; i++) await answer(throttle.failed('orders|192.0.2.10', `198.51.100.${i}`))
      t.equal(await answer(throttle.succeeded('orders', '192.0.2.10')), 'ok', 'orders still authenticates from 192.0.2.10')
    })

    t.test('a success clears its address\'s count for that id, not the address\'s total: one right secret buys no endless spraying', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle } = setup
      const answers = []
      for (let round = 0; round < 8; round++) {
        answers.push(await answer(throttle.failed('orders', '203.0.113.3')), await answer(throttle.failed(`made-up-${round}`, '203.0.113.3')))
        answers.push(await answer(throttle.succeeded('orders', '203.0.113.3')))
      }
      t.same(answers.slice(0, 17), Array(17).fill('ok'), 'rounds of a mistyped secret, a made-up id, then the right secret')
      t.same(answers.slice(17), Array(7).fill('limited'), 'until the address has spent its 12 failures, right secret or not')
    })

    t.test('a guess spread over many addresses locks the id for new addresses, never for one some client authenticated from, made-up ids alike', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle, events } = setup
      t.equal(await answer(throttle.succeeded('billing', '192.0.2.10')), 'ok', 'a resource server of another client at 192.0.2.10')
      t.equal(await answer(throttle.succeeded('orders', '192.0.2.11')), 'ok', 'one of orders at 192.0.2.11')
      const seen: Record<string, string[]> = {}
      for (const id of ['orders', 'made-up']) {
        const answers = []
        for (let i = 0; i < 6; i++) answers.push(await answer(throttle.failed(id, `198.51.100.${i}`)))
        answers.push(
          await answer(throttle.failed(id, '198.51.100.50')),
          await answer(throttle.succeeded(id, '198.51.100.51')),
          await answer(throttle.failed(id, '192.0.2.10')),
          await answer(throttle.failed(id, '192.0.2.11')),
        )
        seen[id] = answers
      }
      t.same(seen.orders, [...Array(6).fill('ok'), 'limited', 'limited', 'ok', 'ok'],
        'six failures from six addresses, then a new address is refused, even with the right secret; addresses in use are not')
      t.same(seen['made-up'], seen.orders, 'a made-up id answers the same, at every address')
      t.equal(await answer(throttle.succeeded('orders', '192.0.2.11')), 'ok', 'the resource server in use authenticates')
      t.same(events.map(({ clientId, limit }) => `${clientId} ${limit}`), ['orders client', 'made-up client'], 'told once per id')
    })

    t.test('failures from addresses some client authenticated from do not spend an id\'s limit from all addresses', async (t) => {
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle } = setup
      for (let i = 0; i < 3; i++) t.equal(await answer(throttle.succeeded('orders', `192.0.2.${i}`)), 'ok')
      for (let i = 0; i < 3; i++) for (let n = 0; n < 3; n++) t.equal(await answer(throttle.failed('api2', `192.0.2.${i}`)), 'ok')
      t.equal(await answer(throttle.failed('api2', '198.51.100.1')), 'ok', 'nine failures from addresses in use, and a new address is still answered')
    })

    t.test('every limit ends with its window', async (t) => {
      if (name === 'redis') {
        // Redis keeps its own time: the TTLs above stand for this.
        t.pass('Redis keys expire with the window (previous test)')
        return
      }
      const setup = await setUp(t)
      if (setup === undefined) return
      const { throttle, advance } = setup
      for (let i = 0; i < 4; i++) await answer(throttle.failed('orders', '203.0.113.1'))
      for (let i = 0; i < 6; i++) await answer(throttle.failed('api2', `198.51.100.${i}`))
      for (let i = 0; i < 13; i++) await answer(throttle.failed(`made-up-${i}`, '203.0.113.9'))
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.1')), 'limited')
      t.equal(await answer(throttle.succeeded('api2', '198.51.100.50')), 'limited')
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.9')), 'limited')
      advance(SETTINGS.window * 1000)
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.1')), 'ok', 'per id and address')
      t.equal(await answer(throttle.succeeded('api2', '198.51.100.50')), 'ok', 'per id')
      t.equal(await answer(throttle.succeeded('orders', '203.0.113.9')), 'ok', 'per address')
    })

    t.test('the total per address defaults to ten times the limit per id and address', async (t) => {
      const setup = await setUp(t, { perClientAndIp: 2, perClient: 1000, window: 60 })
      if (setup === undefined) return
      const { throttle } = setup
      const answers = []
      for (let i = 0; i < 22; i++) answers.push(await answer(throttle.failed(`made-up-${i}`, '203.0.113.4')))
      t.same(answers, [...Array(20).fill('ok'), 'limited', 'limited'])
    })
  })
}
