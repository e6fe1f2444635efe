/**
 * Redis connections (REDIS_URL): one for commands (rate-limit counters, the
 * sign-in throttle), and the invalidation bus over pub/sub, which works across
 * machines.
 *
 * Invariant: a Redis that stops answering (a frozen process, a black-holed
 * network: the TCP connection stays open and nothing comes back) costs no
 * more than one that refuses connections. Every command fails after
 * `timeoutMs`, and a connection that has waited that long for an answer is
 * dropped, so the next commands fail at once (there is no offline queue)
 * while ioredis reconnects, and a new connection is used only once Redis
 * answers its ready check. The subscriber, which otherwise only listens, sends
 * a PING every `timeoutMs`, so a frozen Redis drops it too: the bus turns
 * unhealthy (the revocation cache is bypassed) within 2 × `timeoutMs`, and the
 * cache is emptied when it has resubscribed.
 *
 * An invalidation that cannot be published (Redis away, or this instance's
 * publisher still reconnecting while another instance's subscriber is already
 * back and trusting its cache again) is kept, up to `MAX_PENDING`, and sent as
 * soon as the publisher is ready again; reconnection is retried every 50 ms at
 * first, at most every 500 ms, so that gap stays well under a second.
 */
import { Redis, type RedisOptions } from 'ioredis'
import type { InvalidationBus } from '../domain/session-cache.js'
import { BusState, encode, type BusLog } from './message.js'

export interface RedisSettings {
  url: string
  /** Prefix of every key and channel. */
  keyPrefix: string
  /** Milliseconds a command may wait for its answer (REDIS_COMMAND_TIMEOUT_MS). */
  timeoutMs: number
}

/**
 * A Redis connection that fails fast instead of queueing or waiting while
 * Redis is away or hung, and keeps reconnecting.
 */
export function createRedisClient (url: string, timeoutMs: number, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    // The caller was told a timed-out command failed (a limit failed open): it
    // must not run later, after a reconnect, and count twice.
    autoResendUnfulfilledCommands: false,
    commandTimeout: timeoutMs,
    // The connection is dropped a moment before the command fails, so that the
    // caller's next command (sent as soon as this one fails) finds it down and
    // fails at once, instead of waiting on the hung connection in its turn.
    socketTimeout: timeoutMs - 1,
    retryStrategy: (attempt: number) => Math.min(attempt * 50, 500),
    ...options,
  })
}

/** Whether Redis answers a PING within `timeoutMs` (the readiness check). */
export async function redisAnswers (redis: Redis, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs) })
  try {
    return await Promise.race([redis.ping().then(() => true, () => false), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Invalidations kept while they cannot be published; beyond it the oldest go (a lone subscriber then empties its cache on reconnect anyway). */
const MAX_PENDING = 10_000

export function createRedisBus ({ url, keyPrefix, timeoutMs }: RedisSettings, log: BusLog): InvalidationBus {
  const channel = `${keyPrefix}invalidations`
  const state = new BusState()
  const publisher = createRedisClient(url, timeoutMs)
  const pending: string[] = []
  const send = (message: string) => {
    publisher.publish(channel, message).catch((err) => {
      log('redis publish failed; kept to send on reconnect', err)
      if (pending.length >= MAX_PENDING) pending.shift()
      pending.push(message)
    })
  }
  publisher.on('ready', () => { for (const message of pending.splice(0)) send(message) })
  const subscriber = createRedisClient(url, timeoutMs, { enableOfflineQueue: true, autoResubscribe: false })

  publisher.on('error', (err) => log('redis publisher error', err))
  subscriber.on('error', (err) => log('redis subscriber error', err))
  subscriber.on('close', () => { state.healthy = false })
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(() => state.connected(), (err) => log('redis subscribe failed', err))
  })
  subscriber.on('message', (_channel: string, message: string) => state.receive(message))
  // Unanswered, the PING drops the connection (socketTimeout): 'close' above.
  const heartbeat = setInterval(() => {
    if (subscriber.status === 'ready') subscriber.ping().catch(() => {})
  }, timeoutMs)
  heartbeat.unref()

  return {
    publish (event) { send(encode(event)) },
    subscribe (handler) { state.handlers.push(handler) },
    get healthy () { return state.healthy },
    onReconnect (handler) { state.reconnectHandlers.push(handler) },
    async close () {
      state.healthy = false
      clearInterval(heartbeat)
      publisher.disconnect()
      subscriber.disconnect()
    },
  }
}
