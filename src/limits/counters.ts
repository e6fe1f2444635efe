/**
 * Fixed-window counters with expiry, for the failed-login throttle: in
 * process memory for one instance, or in Redis so every instance counts
 * together (REDIS_URL).
 */
import type { Redis } from 'ioredis'

export interface Counters {
  /** Adds one; resolves with the count and the milliseconds until the window ends. */
  increment (key: string, windowMs: number): Promise<{ count: number, resetInMs: number }>
  /** The current count and the milliseconds until the window ends (0 and 0 when none). */
  peek (key: string): Promise<{ count: number, resetInMs: number }>
  reset (key: string): Promise<void>
}

/** Bytes a counter is taken to hold beyond its key: the Map entry, the window object, the key string's header. */
const ENTRY_OVERHEAD_BYTES = 96

/** What a counter costs in memory: the overhead, and the key at two bytes a character (V8's widest strings). */
export const counterBytes = (key: string): number => ENTRY_OVERHEAD_BYTES + 2 * key.length

/**
 * Counters in process memory, bounded by count (`maxKeys`) and by size
 * (`maxBytes`, as counted by `counterBytes`): keys are as long as the emails
 * they carry, so a count alone does not bound the memory. Past either bound
 * the oldest window goes first.
 */
export function memoryCounters (now: () => number = Date.now, maxKeys = 100_000, maxBytes = 16 * 2 ** 20): Counters {
  const windows = new Map<string, { count: number, resetAt: number }>()
  let bytes = 0
  const remove = (key: string) => {
    if (windows.delete(key)) bytes -= counterBytes(key)
  }
  const live = (key: string) => {
    const entry = windows.get(key)
    if (entry !== undefined && entry.resetAt <= now()) {
      remove(key)
      return undefined
    }
    return entry
  }
  return {
    async increment (key, windowMs) {
      let entry = live(key)
      if (entry === undefined) {
        const cost = counterBytes(key)
        while (windows.size > 0 && (windows.size >= maxKeys || bytes + cost > maxBytes)) remove(windows.keys().next().value as string)
        entry = { count: 0, resetAt: now() + windowMs }
        windows.set(key, entry)
        bytes += cost
      }
      entry.count += 1
      return { count: entry.count, resetInMs: entry.resetAt - now() }
    },
    async peek (key) {
      const entry = live(key)
      return entry === undefined ? { count: 0, resetInMs: 0 } : { count: entry.count, resetInMs: entry.resetAt - now() }
    },
    async reset (key) { remove(key) },
  }
}

const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { count, redis.call('PTTL', KEYS[1]) }`

// One command rather than MULTI/GET/PTTL/EXEC: one round trip, and no
// transaction whose parts fail separately while a hung connection is dropped.
const PEEK = `
local count = redis.call('GET', KEYS[1])
if not count then return { 0, 0 } end
return { tonumber(count), redis.call('PTTL', KEYS[1]) }`

/**
 * Counters in Redis. If Redis cannot be reached, or does not answer within
 * the client's command timeout, the throttle fails open (the attempt is
 * allowed and `onError` is told), like the per-IP rate limit:
 * sign-in stays available, and argon2's cost still slows guessing.
 */
export function redisCounters (redis: Redis, prefix: string, onError: (err: unknown) => void): Counters {
  const none = { count: 0, resetInMs: 0 }
  const guarded = async <T>(work: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await work()
    } catch (err) {
      onError(err)
      return fallback
    }
  }
  return {
    increment: (key, windowMs) => guarded(async () => {
      const [count, ttl] = await redis.eval(INCREMENT, 1, prefix + key, String(windowMs)) as [number, number]
      return { count, resetInMs: Math.max(ttl, 0) }
    }, none),
    peek: (key) => guarded(async () => {
      const [count, ttl] = await redis.eval(PEEK, 1, prefix + key) as [number, number]
      return count === 0 ? none : { count, resetInMs: Math.max(ttl, 0) }
    }, none),
    reset: (key) => guarded(async () => { await redis.del(prefix + key) }, undefined),
  }
}
