/**
 * The cap on concurrent password hashes (src/crypto/passwords.ts): at most
 * `concurrency` run at once, the others start first come first served, a
 * failed hash frees its slot, and once the head of the queue has waited
 * `maxWaitMs` a sign-in is answered 503 with Retry-After instead of queuing.
 */
import t from 'tap'
import { OWASP_ARGON2_MINIMUM } from '../../src/config.js'
import { DomainError } from '../../src/errors.js'
import {
  DEFAULT_HASHING_LIMITS, createHashGate, createPasswordHasher, defaultHashConcurrency, threadPoolSize, type HashingLimits,
} from '../../src/crypto/passwords.js'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, register } from '../helpers/client.js'

/** A task that runs until released, recording when it started. */
function controllable (started: number[], id: number) {
  let release!: (ok: boolean) => void
  const done = new Promise<string>((resolve, reject) => { release = (ok) => { if (ok) resolve(`done ${id}`); else reject(new Error(`failed ${id}`)) } })
  return { task: () => { started.push(id); return done }, release: (ok = true) => release(ok) }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))
const limits = (overrides: Partial<HashingLimits>): HashingLimits => ({ ...DEFAULT_HASHING_LIMITS, ...overrides })

t.test('at most `concurrency` hashes run at once; the others start in arrival order as slots free', async (t) => {
  const gate = createHashGate(limits({ concurrency: 2 }))
  const started: number[] = []
  const tasks = [0, 1, 2, 3, 4].map((id) => controllable(started, id))
  const results = tasks.map(({ task }) => gate(task).catch((err: Error) => err.message))
  await turn()
  t.same(started, [0, 1], 'two run, three wait')
  tasks[1]!.release()
  await turn()
  t.same(started, [0, 1, 2], 'a freed slot goes to the first in line')
  tasks[0]!.release(false)
  await turn()
  t.same(started, [0, 1, 2, 3], 'a failed hash frees its slot too')
  t.equal(await results[0], 'failed 0', 'and its failure reaches its caller')
  for (const { release } of tasks.slice(2)) release()
  t.same(await Promise.all(results.slice(1)), ['done 1', 'done 2', 'done 3', 'done 4'])
  t.same(started, [0, 1, 2, 3, 4])
  const later = controllable(started, 5)
  const result = gate(later.task)
  await turn()
  t.equal(started.at(-1), 5, 'once idle, a hash starts at once')
  later.release()
  await result
})

t.test('once the head of the queue has waited maxWaitMs, new hashes are refused with service_unavailable; the queued ones still run', async (t) => {
  let now = 0
  const gate = createHashGate(limits({ concurrency: 1, maxWaitMs: 2_000, retryAfter: 1, now: () => now }))
  const started: number[] = []
  const [running, queued, refused] = [0, 1, 2].map((id) => controllable(started, id))
  const first = gate(running!.task)
  const second = gate(queued!.task)
  now = 1_999
  const third = gate(refused!.task)
  now = 2_000
  try {
    await gate(controllable(started, 3).task)
    t.fail('should have been refused')
  } catch (err) {
    t.type(err, DomainError)
    t.match(err, { code: 'service_unavailable', retryAfter: 1 })
  }
  running!.release()
  await turn()
  queued!.release()
  await turn()
  refused!.release()
  t.same(await Promise.all([first, second, third]), ['done 0', 'done 1', 'done 2'], 'admitted before the limit, served')
  t.same(started, [0, 1, 2], 'the refused one never ran')
})

t.test('the default cap leaves a pool thread for other work and runs no more hashes than cores', async (t) => {
  t.equal(defaultHashConcurrency(4, 2), 2, 'default pool on 2 cores')
  t.equal(defaultHashConcurrency(4, 8), 3, 'default pool on 8 cores: one thread left free')
  t.equal(defaultHashConcurrency(1, 2), 1, 'a pool of one still hashes')
  t.equal(defaultHashConcurrency(16, 8), 8)
  t.equal(threadPoolSize({}), 4, 'libuv\'s default')
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '8' }), 8)
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '0' }), 1, 'clamped as libuv does')
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' }), 1024)
  t.equal(threadPoolSize({ UV_THREADPOOL_SIZE: 'many' }), 4)
  t.throws(() => createHashGate(limits({ concurrency: 0 })), TypeError)
})

t.test('a sign-in that finds the hashes not keeping up answers 503 service_unavailable with Retry-After, then signs in once they drain', async (t) => {
  // One hash at a time, refused as soon as anyone is waiting: two hashes
  // started here fill the slot and the queue, whatever the machine's speed.
  const passwords = createPasswordHasher(OWASP_ARGON2_MINIMUM, { concurrency: 1, maxWaitMs: 0 })
  const { app } = await createTestApp(t, { passwords })
  const account = await register(app)
  const busy = [passwords.hash('occupies the slot'), passwords.hash('waits at the head of the queue')]
  const refused = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: PASSWORD } })
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.json().code, 'service_unavailable')
  await Promise.all(busy)
  const accepted = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: account.email, password: PASSWORD } })
  t.equal(accepted.statusCode, 200)
})
