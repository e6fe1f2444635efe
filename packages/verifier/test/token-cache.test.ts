/**
 * The verified-token cache on its own: keyed by the exact token, never past
 * `exp`, least recently used out first, and bounded by entries and by bytes
 * whatever is put in.
 */
import t from 'tap'
import { createVerifiedTokenCache, type VerifiedTokenCache } from '../src/protocol.js'

interface Claims { sub: string, exp: number }

/** A token-like string of `length` characters, distinct per `n`. */
const tokenOf = (n: number, length = 600) => `eyJ${n}.`.padEnd(length, 'x')

/** Checks the bounds after every call. */
const within = (cache: VerifiedTokenCache<Claims>, maxEntries: number, maxBytes: number) => cache.size <= maxEntries && cache.bytes <= maxBytes

t.test('a token set is a hit with its claims, until its exp, and then it is dropped', async (t) => {
  const cache = createVerifiedTokenCache<Claims>()
  const claims = { sub: 'alice', exp: 1000 }
  const token = tokenOf(1)
  t.equal(cache.get(token, 0), undefined, 'not cached yet')
  cache.set(token, claims)
  t.equal(cache.get(token, 999.999), claims, 'the very claims, just before exp')
  t.equal(cache.size, 1)
  t.ok(cache.bytes >= token.length * 2, 'the token counts as UTF-16')
  t.equal(cache.get(token, 1000), undefined, 'exp <= now: not a hit')
  t.equal(cache.size, 0, 'and dropped')
  t.equal(cache.bytes, 0)
  cache.set(token, claims)
  t.equal(cache.get(token, Number.NaN), undefined, 'a NaN clock keeps nothing')
})

t.test('keyed by the exact whole token: one character changed, a prefix or an extension is not a hit', async (t) => {
  const cache = createVerifiedTokenCache<Claims>()
  const token = tokenOf(7)
  cache.set(token, { sub: 'alice', exp: 1000 })
  const tampered = token.slice(0, 300) + (token[300] === 'y' ? 'z' : 'y') + token.slice(301)
  t.equal(tampered.length, token.length)
  t.equal(cache.get(tampered, 0), undefined, 'one character changed')
  t.equal(cache.get(token.slice(0, -1), 0), undefined, 'a prefix')
  t.equal(cache.get(`${token}x`, 0), undefined, 'an extension')
  t.same(cache.get(token, 0), { sub: 'alice', exp: 1000 })
})

t.test('least recently used out first: a hit moves a token to the back', async (t) => {
  const cache = createVerifiedTokenCache<Claims>({ maxEntries: 3 })
  for (const n of [1, 2, 3]) cache.set(tokenOf(n), { sub: `u${n}`, exp: 1000 })
  t.ok(cache.get(tokenOf(1), 0), 'token 1 used again')
  cache.set(tokenOf(4), { sub: 'u4', exp: 1000 })
  t.equal(cache.size, 3)
  t.equal(cache.get(tokenOf(2), 0), undefined, 'token 2, least recently used, went')
  for (const n of [1, 3, 4]) t.ok(cache.get(tokenOf(n), 0), `token ${n} kept`)
})

t.test('the entry bound holds when filled far beyond it (default 10,000)', async (t) => {
  const cache = createVerifiedTokenCache<Claims>()
  let held = true
  for (let n = 0; n < 12_500; n++) {
    cache.set(tokenOf(n, 40), { sub: `u${n}`, exp: 1000 })
    held &&= within(cache, 10_000, 8 * 1024 * 1024)
  }
  t.ok(held, 'within the bounds after every set')
  t.equal(cache.size, 10_000)
  t.equal(cache.get(tokenOf(2499, 40), 0), undefined, 'the oldest went')
  t.ok(cache.get(tokenOf(2500, 40), 0), 'the newest 10,000 stayed')
})

t.test('the byte bound holds when filled far beyond it (default 8 MiB)', async (t) => {
  const cache = createVerifiedTokenCache<Claims>()
  let held = true
  for (let n = 0; n < 6000; n++) {
    cache.set(tokenOf(n, 1000), { sub: `user-${n}`, exp: 1000 })
    held &&= within(cache, 10_000, 8 * 1024 * 1024)
  }
  t.ok(held, 'within the bounds after every set')
  t.ok(cache.size < 6000, `bytes, not entries, bounded it (${cache.size} entries, ${cache.bytes} bytes)`)
  t.ok(cache.bytes > 8 * 1024 * 1024 - 3000, 'filled to within one entry of the bound')
  t.ok(cache.bytes >= cache.size * 2000, 'each entry counts at least its token as UTF-16')
})

t.test('a small byte bound, tokens set twice, an entry larger than the bound, and 0', async (t) => {
  const cache = createVerifiedTokenCache<Claims>({ maxBytes: 10_000 })
  for (let n = 0; n < 50; n++) {
    cache.set(tokenOf(n, 1000), { sub: 'u', exp: 1000 })
    t.ok(within(cache, 10_000, 10_000), `after set ${n}: ${cache.size} entries, ${cache.bytes} bytes`)
  }
  const { size, bytes } = cache
  cache.set(tokenOf(49, 1000), { sub: 'u', exp: 1000 })
  t.same([cache.size, cache.bytes], [size, bytes], 'set again: replaced, not counted twice')
  cache.set(tokenOf(99, 6000), { sub: 'u', exp: 1000 })
  t.equal(cache.get(tokenOf(99, 6000), 0), undefined, 'an entry larger than the bound is not kept')
  t.same([cache.size, cache.bytes], [size, bytes], 'and evicts nothing')
  cache.clear()
  t.same([cache.size, cache.bytes], [0, 0], 'clear drops everything')

  const none = createVerifiedTokenCache<Claims>({ maxEntries: 0 })
  none.set(tokenOf(1), { sub: 'u', exp: 1000 })
  t.equal(none.size, 0, 'maxEntries 0 keeps nothing')
})

t.test('long string claims count toward the bytes', async (t) => {
  const cache = createVerifiedTokenCache<Claims & { extra?: unknown }>()
  cache.set(tokenOf(1), { sub: 'u', exp: 1000 })
  const small = cache.bytes
  cache.clear()
  cache.set(tokenOf(1), { sub: 'u'.repeat(10_000), exp: 1000, extra: { nested: 'v'.repeat(5000) } })
  t.ok(cache.bytes >= small + 30_000, `${cache.bytes} bytes against ${small}`)
})

t.test('a wrong bound is a TypeError naming it', async (t) => {
  t.throws(() => createVerifiedTokenCache({ maxEntries: -1 }), { name: 'TypeError', message: /"maxEntries"/ })
  t.throws(() => createVerifiedTokenCache({ maxBytes: 1.5 }), { name: 'TypeError', message: /"maxBytes"/ })
  t.throws(() => createVerifiedTokenCache({ maxBytes: '8MiB' as unknown as number }), { name: 'TypeError', message: /"maxBytes"/ })
  t.throws(() => createVerifiedTokenCache(null as unknown as undefined), TypeError)
})
