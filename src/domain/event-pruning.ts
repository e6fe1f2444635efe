/**
 * The retention of security events, kept by a running server: `prune()`
 * (security-events.ts) runs once at start and then every `intervalMs`.
 *
 * - A failure (the database away for a moment) goes to `onError` and the
 *   next run tries again; nothing is thrown, the server is unaffected.
 * - A run never overlaps the previous one: a long backlog's prune is skipped
 *   over, not doubled.
 * - The timer is unref'd (it never keeps a process alive) and `stop` clears
 *   it; a run under way finishes on its own.
 *
 * Every process prunes (cluster workers, instances): a delete of rows
 * another process already deleted deletes nothing, so no coordination is
 * needed.
 */
import type { SecurityEvents } from './security-events.js'

export const PRUNE_INTERVAL_MS = 60 * 60 * 1000

export interface PruningOptions {
  readonly intervalMs?: number
  readonly onError: (err: unknown) => void
}

/** Starts pruning `events`; returns the stop. */
export function schedulePruning (events: Pick<SecurityEvents, 'prune'>, { intervalMs = PRUNE_INTERVAL_MS, onError }: PruningOptions): () => void {
  let running = false
  const run = () => {
    if (running) return
    running = true
    events.prune().catch(onError).finally(() => { running = false })
  }
  const timer = setInterval(run, intervalMs)
  timer.unref()
  run()
  return () => clearInterval(timer)
}
