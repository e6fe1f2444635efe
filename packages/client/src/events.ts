/**
 * The client's events and a small typed emitter for them. A listener that
 * throws must not break the client in the middle of a refresh or a sign-out,
 * nor stop the other listeners: its error is reported the way the platform
 * reports an uncaught error (`reportError` in browsers; an uncaught
 * exception elsewhere), after every listener has run.
 *
 * @module
 */
import type { SignOutReason, VouchSession } from './types.js'

/**
 * Each event's detail.
 *
 * - `signedIn`: a session started (register, login, a reset that signs in),
 *   or this client took over one another tab started;
 * - `refreshed`: new tokens for the same session (a refresh, a password
 *   change or revoke-others, here or in another tab);
 * - `signedOut`: the session ended, with the reason.
 *
 * @example
 * const onSignedOut = (detail: VouchEvents['signedOut']) => console.log(detail.reason)
 */
export interface VouchEvents {
  signedIn: { session: VouchSession }
  refreshed: { session: VouchSession }
  signedOut: { reason: SignOutReason }
}

/**
 * A listener of one event.
 *
 * @example
 * const listener: VouchListener<'refreshed'> = ({ session }) => console.log('token valid until', new Date(session.expiresAt))
 */
export type VouchListener<K extends keyof VouchEvents> = (detail: VouchEvents[K]) => void

/**
 * A typed emitter: `on` returns the function that removes the listener.
 *
 * @example
 * const events = createEmitter<{ ping: { n: number } }>()
 * const off = events.on('ping', ({ n }) => console.log(n))
 * events.emit('ping', { n: 1 })
 * off()
 */
export interface Emitter<Events extends object> {
  on<K extends keyof Events> (type: K, listener: (detail: Events[K]) => void): () => void
  emit<K extends keyof Events> (type: K, detail: Events[K]): void
  /** Removes every listener. */
  clear (): void
}

function report (err: unknown): void {
  const reportError = (globalThis as { reportError?: (err: unknown) => void }).reportError
  if (typeof reportError === 'function') reportError(err)
  else queueMicrotask(() => { throw err })
}

/**
 * Creates an emitter. Listeners run synchronously, in the order they were
 * added; one added twice runs twice (each `on` has its own `off`).
 *
 * @example
 * const events = createEmitter<VouchEvents>()
 * events.on('signedOut', ({ reason }) => console.log('signed out:', reason))
 */
export function createEmitter<Events extends object> (): Emitter<Events> {
  const listeners = new Map<keyof Events, Array<{ fn: (detail: never) => void }>>()
  return {
    on (type, listener) {
      const entry = { fn: listener as (detail: never) => void }
      const list = listeners.get(type) ?? []
      listeners.set(type, [...list, entry])
      return () => {
        const current = listeners.get(type)
        if (current) listeners.set(type, current.filter((e) => e !== entry))
      }
    },
    emit (type, detail) {
      // A snapshot: a listener that adds or removes listeners affects the next emit, not this one.
      for (const { fn } of listeners.get(type) ?? []) {
        try {
          (fn as (detail: Events[typeof type]) => void)(detail)
        } catch (err) {
          report(err)
        }
      }
    },
    clear () {
      listeners.clear()
    },
  }
}
