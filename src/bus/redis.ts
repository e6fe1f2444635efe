/** Invalidations over Redis pub/sub (REDIS_URL): works across machines. */
import { Redis } from 'ioredis'
import type { InvalidationBus } from '../domain/session-cache.js'
import { BusState, CHANNEL, encode, type BusLog } from './message.js'

export function createRedisBus (url: string, log: BusLog): InvalidationBus {
  const state = new BusState()
  const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000) }
  const publisher = new Redis(url, options)
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true, autoResubscribe: false })

  publisher.on('error', (err) => log('redis publisher error', err))
  subscriber.on('error', (err) => log('redis subscriber error', err))
  subscriber.on('close', () => { state.healthy = false })
  subscriber.on('ready', () => {
    subscriber.subscribe(CHANNEL).then(() => state.connected(), (err) => log('redis subscribe failed', err))
  })
  subscriber.on('message', (_channel: string, message: string) => state.receive(message))

  return {
    publish (event) {
      publisher.publish(CHANNEL, encode(event)).catch((err) => log('redis publish failed', err))
    },
    subscribe (handler) { state.handler = handler },
    get healthy () { return state.healthy },
    onReconnect (handler) { state.reconnectHandlers.push(handler) },
    async close () {
      state.healthy = false
      publisher.disconnect()
      subscriber.disconnect()
    },
  }
}
