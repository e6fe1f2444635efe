/**
 * How a vouch process runs, shared by the entry points (src/server.ts,
 * src/cluster.ts) and kept light, since the cluster's primary imports it and
 * nothing else heavy. What each setting saves is measured in the README's
 * Performance section ("Memory").
 */
import v8 from 'node:v8'
import { ConfigError } from './config.js'

/**
 * Node flags for a vouch process, given before it starts: by the `start`
 * scripts of package.json (kept equal to this list by a test) and by the
 * cluster's primary to its workers.
 *
 * `--max-old-space-size=512`: V8 lets the heap grow to 4× what survived the
 * last full collection when its limit is 2 GiB or more (the default on a
 * machine with more than 16 GiB), 1.4× under a 512 MiB limit; vouch keeps
 * about 35 MiB alive and bounds its caches by bytes, so the limit is far
 * above any legitimate need, while garbage no longer piles up to 100+ MiB
 * under load before it is collected.
 *
 * `--max-semi-space-size=4`: the young generation is two semi-spaces, which
 * V8 grows to 16 MiB each under load (32 MiB resident). A request's objects
 * die within milliseconds, so a 4 MiB semi-space still collects them young
 * (a scavenge costs what survives, not the space's size); it saves about
 * 20 MiB at the price of more, equally cheap, scavenges.
 */
export const NODE_FLAGS: readonly string[] = Object.freeze(['--max-old-space-size=512', '--max-semi-space-size=4'])

const flagName = (flag: string) => flag.split('=')[0]!

/**
 * `execArgv` plus each of NODE_FLAGS that neither it nor NODE_OPTIONS sets
 * already: an operator's own value wins.
 */
export function withNodeFlags (execArgv: readonly string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName))
  return [...execArgv, ...NODE_FLAGS.filter((flag) => !given.has(flagName(flag)))]
}

/**
 * V8 settings that can be changed while the process runs, applied before any
 * WebAssembly is compiled (the schema engine at migration, Prisma's query
 * compiler at the first query). `--liftoff-only` keeps WebAssembly on V8's
 * baseline compiler: optimising Prisma's 3 MB query compiler with TurboFan
 * left about 40-90 MiB in the compiler threads' malloc arenas for good, while
 * the compiler runs only for a query shape not yet in Prisma's plan cache,
 * so steady-state queries cost the same either way. An operator who passes
 * a liftoff or tier-up flag of their own keeps it.
 */
export function tuneV8 (execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): void {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)]
  if (!given.some((flag) => /liftoff|tier-up|wasm-dynamic-tiering/.test(flag))) v8.setFlagsFromString('--liftoff-only')
}

/**
 * libuv pool threads for each of `workers` processes on `cores` cores, when
 * UV_THREADPOOL_SIZE is not set (it must be, before a process starts). Every
 * pool thread that has hashed a password keeps argon2's memory (memoryCost,
 * 19 MiB by default) in its malloc arena for the next hash: giving it back
 * and faulting it in again made each hash 3-5× slower on a virtual machine.
 * So the pool is sized to keep the cores busy and no larger: two threads a
 * core across the workers, at least 2 per worker (src/crypto/passwords.ts
 * hashes on at most all but one of them, so file, DNS and WebCrypto work
 * never waits behind a hash), at most libuv's default of 4.
 */
export function threadPoolSize (workers: number, cores: number): number {
  return Math.min(4, Math.max(2, Math.ceil(2 * cores / workers)))
}

export function exitOnStartupError (err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(`vouch: invalid configuration: ${err.message}`)
  } else {
    console.error('vouch: failed to start:', err instanceof Error ? err.message : err)
  }
  process.exit(1)
}
