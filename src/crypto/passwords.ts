/**
 * Password hashing with argon2id. Hashing runs on libuv's thread pool, never
 * on the event loop. `verify` of an unknown account still pays for one full
 * verification (against a dummy hash made with the same parameters), so an
 * unknown email and a wrong password take the same time.
 *
 * At most `concurrency` hashes (hash or verify) run at once; the others wait
 * their turn, first come first served. Without the cap a storm of sign-ins
 * puts every one of its hashes in libuv's pool queue at once, and any other
 * work of the pool (fs, DNS, zlib, WebCrypto) waits behind all of them; the
 * default cap leaves a pool thread free for that work and runs no more
 * hashes than there are cores, so the event loop keeps a core's share.
 * vouch does not set UV_THREADPOOL_SIZE itself: libuv reads it once, when
 * the pool first starts, which can happen while modules are still loading,
 * before any line of an entry point has run, so setting it from inside the
 * process would work only sometimes. Set it in the environment (default 4);
 * the cap follows it.
 *
 * The wait is bounded: when the hash at the head of the queue has already
 * waited `maxWaitMs` (default 10 s, about when clients give up), the hashes
 * are not keeping up, and a new request is refused at once with
 * `service_unavailable` (503, Retry-After: 1) instead of joining a queue it
 * would leave only after its client gave up. A bound in time rather than in
 * queue length holds whatever the argon2 parameters and the machine's speed;
 * memory is bounded anyway by HTTP_MAX_CONNECTIONS.
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import type { Argon2Params } from '../config.js'
import { DomainError } from '../errors.js'

export interface PasswordHasher {
  hash (password: string): Promise<string>
  /** Verifies `password` against `hash`, or against a dummy hash when `hash` is undefined (always false then). */
  verify (hash: string | undefined, password: string): Promise<boolean>
  /** True when `hash` was made with weaker parameters than the current ones. */
  needsRehash (hash: string): boolean
  /** The hashes running and waiting now, read by metrics (src/metrics). */
  readonly queue?: HashQueue
}

export interface HashQueue {
  readonly running: number
  readonly waiting: number
}

/** What `passwordHashChannel` carries: one argon2 hash or verification, timed from leaving the queue to its end. */
export interface PasswordHashTiming {
  operation: 'hash' | 'verify'
  seconds: number
}

/** Timings of every hash of this process, for whoever subscribes (metrics); nothing is timed while nobody does. */
export const passwordHashChannel = diagnosticsChannel.channel('vouch:password-hash')

export interface HashingLimits {
  /** Hashes running at once. */
  readonly concurrency: number
  /** Longest wait at the head of the queue before new hashes are refused (ms). */
  readonly maxWaitMs: number
  /** Retry-After of that refusal (s). */
  readonly retryAfter: number
  /** Milliseconds, monotonic (injectable for tests). */
  readonly now: () => number
}

/** libuv's thread pool size as libuv reads it: UV_THREADPOOL_SIZE, default 4, clamped to 1..1024. */
export function threadPoolSize (env: Record<string, string | undefined> = process.env): number {
  const size = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10)
  return Number.isNaN(size) ? 4 : Math.min(1024, Math.max(1, size))
}

/** One pool thread left for other work, and no more hashes than cores; at least 1. */
export function defaultHashConcurrency (poolSize = threadPoolSize(), cores = availableParallelism()): number {
  return Math.max(1, Math.min(poolSize - 1, cores))
}

export const DEFAULT_HASHING_LIMITS: HashingLimits = Object.freeze({
  concurrency: defaultHashConcurrency(),
  maxWaitMs: 10_000,
  retryAfter: 1,
  now: () => performance.now(),
})

/** A gate, and what is in it now. */
export type HashGate = (<T>(task: () => Promise<T>) => Promise<T>) & { readonly queue: HashQueue }

/**
 * A FIFO gate letting `limits.concurrency` tasks run at once; refuses a task
 * with `service_unavailable` when the head of its queue has waited `maxWaitMs`.
 */
export function createHashGate ({ concurrency, maxWaitMs, retryAfter, now }: HashingLimits): HashGate {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`concurrency must be a positive integer, got ${concurrency}`)
  let running = 0
  const waiting: Array<{ since: number, start: () => void }> = []
  const release = () => {
    const next = waiting.shift()
    if (next === undefined) running--
    else next.start() // the slot passes straight to the next in line
  }
  const gate = async <T>(task: () => Promise<T>): Promise<T> => {
    if (running < concurrency) {
      running++
    } else {
      const head = waiting[0]
      if (head !== undefined && now() - head.since >= maxWaitMs) {
        throw new DomainError('service_unavailable', 'Too many sign-ins at once; retry shortly.', { retryAfter })
      }
      await new Promise<void>((resolve) => waiting.push({ since: now(), start: resolve }))
    }
    try {
      return await task()
    } finally {
      release()
    }
  }
  return Object.assign(gate, { queue: { get running () { return running }, get waiting () { return waiting.length } } })
}

/** Runs one argon2 operation, published with its duration when someone listens. */
async function timed<T> (operation: PasswordHashTiming['operation'], run: () => Promise<T>): Promise<T> {
  if (!passwordHashChannel.hasSubscribers) return run()
  const start = performance.now()
  try {
    return await run()
  } finally {
    passwordHashChannel.publish({ operation, seconds: (performance.now() - start) / 1000 } satisfies PasswordHashTiming)
  }
}

export function createPasswordHasher (params: Argon2Params, limits: Partial<HashingLimits> = {}): PasswordHasher {
  const options = { type: argon2.argon2id, ...params } as const
  // The PHC prefix argon2 writes for these parameters (version 19).
  const currentPrefix = `$argon2id$v=19$m=${params.memoryCost},t=${params.timeCost},p=${params.parallelism}$`
  const gated = createHashGate({ ...DEFAULT_HASHING_LIMITS, ...limits })
  // Made up front, so that even the first unknown-email sign-in costs one verification, not a hash and a verification.
  const dummy = argon2.hash('vouch-dummy-password', options)
  dummy.catch(() => {}) // a failure resurfaces where it is awaited

  const verifyAgainst = (hash: string, password: string): Promise<boolean> => gated(async () => {
    try {
      return await timed('verify', () => argon2.verify(hash, password))
    } catch {
      return false // a malformed stored hash never verifies
    }
  })

  return {
    hash: (password) => gated(() => timed('hash', () => argon2.hash(password, options))),
    async verify (hash, password) {
      if (hash !== undefined) return verifyAgainst(hash, password)
      await verifyAgainst(await dummy, password)
      return false
    },
    needsRehash: (hash) => {
      // Every sign-in asks; a hash made with the current parameters (the
      // usual case) is known by its prefix, without parsing it.
      if (hash.startsWith(currentPrefix)) return false
      // argon2's own check compares version and cost, not the variant.
      if (!hash.startsWith('$argon2id$')) return true
      try {
        return argon2.needsRehash(hash, params)
      } catch {
        return true
      }
    },
    queue: gated.queue,
  }
}
