/**
 * The retention kept by a running server (src/domain/event-pruning.ts): a
 * prune at start and then every interval, a failure reported and retried,
 * never thrown, and nothing more once stopped.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createTestDatabase } from '../helpers/app.js'
import { createTestClock } from '../helpers/clock.js'
import { createSecurityEvents } from '../../src/domain/security-events.js'
import { schedulePruning } from '../../src/domain/event-pruning.js'

const DAY = 86_400

async function until (condition: () => Promise<boolean> | boolean): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return true
    await sleep(25)
  }
  return false
}

t.test('events past the retention are pruned at start and again at each interval; stop ends it', async (t) => {
  const { db } = await createTestDatabase(t)
  const clock = createTestClock()
  const events = createSecurityEvents({ db, clock, settings: { retentionDays: 30 } })
  const user = await db.user.create({ data: { email: 'prune@example.com', passwordHash: 'x' } })
  const signedOut = { type: 'signed_out_everywhere', userId: user.id } as const
  await events.record(signedOut)
  clock.advance(31 * DAY)
  await events.record(signedOut)

  let runs = 0
  const counted = { prune: async () => { runs++; return await events.prune() } }
  const stop = schedulePruning(counted, { intervalMs: 100, onError: (err) => t.fail(String(err)) })
  t.teardown(stop)
  t.equal(runs, 1, 'a run at start, without waiting for the interval')
  t.ok(await until(async () => await db.securityEvent.count() === 1), 'the event 31 days old went, the new one stays')

  clock.advance(31 * DAY)
  t.ok(await until(async () => await db.securityEvent.count() === 0), 'at a later run: the other one, now 31 days old')
  stop()
  const after = runs
  await sleep(350)
  t.equal(runs, after, 'no run once stopped')
})

t.test('a failing prune is reported and retried, never thrown', async (t) => {
  const errors: unknown[] = []
  let runs = 0
  const failing = { prune: async () => { runs++; throw new Error('database away') } }
  const stop = schedulePruning(failing, { intervalMs: 50, onError: (err) => errors.push(err) })
  t.teardown(stop)
  t.ok(await until(() => errors.length >= 2), 'each failure reported, and the next run tries again')
  t.match(errors[0], { message: 'database away' })
  t.ok(runs >= 2, 'more than once')
})

t.test('a run never overlaps the previous one', async (t) => {
  let running = 0
  let most = 0
  let runs = 0
  const slow = { prune: async () => { runs++; most = Math.max(most, ++running); await sleep(200); running--; return 0 } }
  const stop = schedulePruning(slow, { intervalMs: 20, onError: (err) => t.fail(String(err)) })
  t.teardown(stop)
  await sleep(600)
  t.equal(most, 1, 'one at a time')
  t.ok(runs >= 2, 'and the next one after it')
})
