/**
 * How a `vouch` command tells running servers that it changed a user:
 * the message their invalidation bus (src/bus) listens for, sent once over
 * the same transport — Redis when REDIS_URL is set, else PostgreSQL NOTIFY
 * on a PostgreSQL database. The servers' buses are long-lived listeners
 * that drop a message published before they connect; a command is a short
 * process, so this one connects, sends, waits for the acknowledgement and
 * disconnects (`flush`).
 *
 * Nothing is sent for a SQLite database (its instances have no bus: each
 * server's cache trusts an entry for at most REVOCATION_CACHE_TTL), and a
 * message that cannot be sent is only a delay, never a lost revocation: the
 * change is in the database, which the cache re-reads after its TTL and the
 * revocation feed polls every REVOCATION_FEED_HEARTBEAT_MS.
 */
import pg from 'pg'
import type { Config } from '../config.js'
import { busKindFor, type BusKind } from '../bus/index.js'
import { CHANNEL, encode } from '../bus/message.js'
import { createRedisClient } from '../bus/redis.js'
import type { Invalidation, InvalidationBus } from '../domain/session-cache.js'

export interface Announcer extends InvalidationBus {
  readonly kind: BusKind
  /** Sends what was published; resolves to the number of messages the transport acknowledged. */
  flush (): Promise<number>
}

type AnnouncerConfig = Pick<Config, 'redisUrl' | 'redisKeyPrefix' | 'redisCommandTimeout' | 'databaseUrl'>

export function createAnnouncer (config: AnnouncerConfig): Announcer {
  const kind = busKindFor(config)
  const pending: Invalidation[] = []

  const send = async (messages: string[]): Promise<void> => {
    if (kind === 'redis') {
      // The command waits for the connection (offline queue), unlike the server's publisher.
      const redis = createRedisClient(config.redisUrl!, Math.max(config.redisCommandTimeout, 2000), { enableOfflineQueue: true })
      try {
        for (const message of messages) await redis.publish(`${config.redisKeyPrefix}invalidations`, message)
      } finally {
        redis.disconnect()
      }
    } else if (kind === 'postgres') {
      const client = new pg.Client({ connectionString: config.databaseUrl, connectionTimeoutMillis: 5000 })
      await client.connect()
      try {
        for (const message of messages) await client.query('SELECT pg_notify($1, $2)', [CHANNEL, message])
      } finally {
        await client.end()
      }
    }
  }

  return {
    kind,
    publish (event) { pending.push(event) },
    subscribe () {},
    healthy: true,
    onReconnect () {},
    close: async () => {},
    async flush () {
      const messages = pending.splice(0).map(encode)
      if (messages.length === 0 || kind === 'local' || kind === 'cluster') return 0
      await send(messages)
      return messages.length
    },
  }
}
