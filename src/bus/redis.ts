/** Invalidations over Redis pub/sub (REDIS_URL): works across machines. */
import { Redis, type RedisOptions } from 'ioredis'
import type { InvalidationBus } from '../domain/session-cache.js'
import { BusState, encode, type BusLog } from './message.js'

/**
 * A Redis connection for commands (rate-limit counters, publishing): fails
 * fast instead of queueing while Redis is away, and keeps reconnecting.
 */
export function createRedisClient (url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    ...options,
  })
}

export function createRedisBus (url: string, keyPrefix: string, log: BusLog): InvalidationBus {
  const channel = `${keyPrefix}invalidations`
  const state = new BusState()
  const publisher = createRedisClient(url)
  const subscriber = createRedisClient(url, { enableOfflineQueue: true, autoResubscribe: false })

  publisher.on('error', (err) => log('redis publisher error', err))
  subscriber.on('error', (err) => log('redis subscriber error', err))
  subscriber.on('close', () => { state.healthy = false })
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(() => state.connected(), (err) => log('redis subscribe failed', err))
  })
  subscriber.on('message', (_channel: string, message: string) => state.receive(message))

  return {
    publish (event) {
      publisher.publish(channel, encode(event)).catch((err) => log('redis publish failed', err))
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
