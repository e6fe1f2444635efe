/**
 * Picks how this instance hears of other instances' revocations: Redis when
 * REDIS_URL is set, else PostgreSQL LISTEN/NOTIFY on a PostgreSQL database,
 * else the cluster's IPC for a worker of src/cluster.ts, else nothing (a lone
 * instance, whose own writes keep its cache exact).
 */
import cluster from 'node:cluster'
import type { Config } from '../config.js'
import { localBus, type InvalidationBus } from '../domain/session-cache.js'
import { providerOf } from '../db/schema.js'
import { createClusterBus } from './cluster.js'
import type { BusLog } from './message.js'
import { createPostgresBus } from './postgres.js'
import { createRedisBus } from './redis.js'

export type BusKind = 'redis' | 'postgres' | 'cluster' | 'local'

type BusConfig = Pick<Config, 'redisUrl' | 'redisKeyPrefix' | 'redisCommandTimeout' | 'databaseUrl'>

export function busKindFor (config: BusConfig): BusKind {
  if (config.redisUrl !== undefined) return 'redis'
  if (providerOf(config.databaseUrl) === 'postgresql') return 'postgres'
  if (cluster.isWorker) return 'cluster'
  return 'local'
}

export function createBus (config: BusConfig, log: BusLog): InvalidationBus {
  switch (busKindFor(config)) {
    case 'redis': return createRedisBus({ url: config.redisUrl!, keyPrefix: config.redisKeyPrefix, timeoutMs: config.redisCommandTimeout }, log)
    case 'postgres': return createPostgresBus(config.databaseUrl, log)
    case 'cluster': return createClusterBus()
    case 'local': return localBus()
  }
}
