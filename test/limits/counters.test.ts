import { test } from 'tap'
import { counterBytes, memoryCounters } from '../../src/limits/counters.js'

test('memory counters drop the oldest windows once their keys pass the byte bound', async (t) => {
  const long = (i: number) => `${'x'.repeat(200)}-${String(i).padStart(2, '0')}@example.com|203.0.113.7`
  const perKey = counterBytes(long(0))
  const counters = memoryCounters(() => 0, 1_000_000, perKey * 10)
  for (let i = 0; i < 25; i++) await counters.increment(long(i), 60_000)
  const kept = []
  for (let i = 0; i < 25; i++) if ((await counters.peek(long(i))).count > 0) kept.push(i)
  t.same(kept, [15, 16, 17, 18, 19, 20, 21, 22, 23, 24], 'the ten newest windows are kept, the older ones dropped')
})

test('memory counters still count past the bound: a counted key keeps its window', async (t) => {
  const counters = memoryCounters(() => 0, 3, 1_000_000)
  await counters.increment('a', 60_000)
  await counters.increment('a', 60_000)
  t.equal((await counters.increment('a', 60_000)).count, 3)
  for (const key of ['b', 'c', 'd']) await counters.increment(key, 60_000)
  t.equal((await counters.peek('a')).count, 0, 'past maxKeys the oldest window went')
  t.equal((await counters.peek('d')).count, 1)
})

test('reset and expiry give their bytes back', async (t) => {
  let now = 0
  const perKey = counterBytes('key-0')
  const counters = memoryCounters(() => now, 1_000_000, perKey * 2)
  await counters.increment('key-0', 1000)
  await counters.increment('key-1', 1000)
  await counters.reset('key-0')
  now = 2000 // key-1's window is over
  t.equal((await counters.peek('key-1')).count, 0)
  await counters.increment('key-2', 1000)
  await counters.increment('key-3', 1000)
  t.equal((await counters.peek('key-2')).count, 1, 'freed bytes were reused, not evicting key-2')
  t.equal((await counters.peek('key-3')).count, 1)
})
