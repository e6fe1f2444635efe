/**
 * Invalidations between the worker processes of one machine (src/cluster.ts)
 * over Node's IPC channel: a worker sends, the primary relays to the others.
 */
import cluster from 'node:cluster'
import type { InvalidationBus } from '../domain/session-cache.js'
import { BusState, encode } from './message.js'

const TYPE = 'vouch:invalidate'

interface RelayMessage { type: typeof TYPE, payload: string }

function isRelayMessage (message: unknown): message is RelayMessage {
  return typeof message === 'object' && message !== null && (message as RelayMessage).type === TYPE
}

/** In a worker: the bus. */
export function createClusterBus (): InvalidationBus {
  const state = new BusState()
  const onMessage = (message: unknown) => { if (isRelayMessage(message)) state.receive(message.payload) }
  process.on('message', onMessage)
  state.healthy = true
  return {
    publish (event) { process.send?.({ type: TYPE, payload: encode(event) } satisfies RelayMessage) },
    subscribe (handler) { state.handlers.push(handler) },
    get healthy () { return state.healthy && process.connected },
    onReconnect (handler) { state.reconnectHandlers.push(handler) },
    async close () { process.off('message', onMessage) },
  }
}

/** In the primary: relay each worker's invalidations to every other worker. */
export function relayInvalidations (): void {
  cluster.on('message', (sender, message: unknown) => {
    if (!isRelayMessage(message)) return
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker && worker !== sender && worker.isConnected()) worker.send(message)
    }
  })
}
