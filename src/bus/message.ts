import { randomUUID } from 'node:crypto'
import type { Invalidation } from '../domain/session-cache.js'

/** This process's id on the bus, so that it can ignore its own messages. */
export const INSTANCE_ID = randomUUID()

/** The PostgreSQL NOTIFY channel. */
export const CHANNEL = 'vouch_invalidations'

export function encode (event: Invalidation): string {
  return JSON.stringify({ o: INSTANCE_ID, k: event.kind, i: event.id })
}

/** The event in a message from another instance; undefined for our own or a malformed one. */
export function decode (message: string): Invalidation | undefined {
  try {
    const { o, k, i } = JSON.parse(message) as { o?: unknown, k?: unknown, i?: unknown }
    if (o === INSTANCE_ID || typeof i !== 'string' || (k !== 'user' && k !== 'session' && k !== 'keys')) return undefined
    return { kind: k, id: i }
  } catch {
    return undefined
  }
}

export type BusLog = (message: string, err?: unknown) => void

/** The reconnect/handler bookkeeping every transport shares. */
export class BusState {
  healthy = false
  readonly handlers: Array<(event: Invalidation) => void> = []
  readonly reconnectHandlers: Array<() => void> = []

  /** The transport is connected and subscribed again: trust resumes from an empty cache. */
  connected (): void {
    this.healthy = true
    for (const handler of this.reconnectHandlers) handler()
  }

  receive (message: string): void {
    const event = decode(message)
    if (event !== undefined) for (const handler of this.handlers) handler(event)
  }
}
