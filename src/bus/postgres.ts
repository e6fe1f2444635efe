/**
 * Invalidations over PostgreSQL LISTEN/NOTIFY: instances that share a
 * PostgreSQL database need nothing else. One dedicated connection listens
 * (and notifies); when it drops, the bus is unhealthy until it is back.
 */
import pg from 'pg'
import type { InvalidationBus } from '../domain/session-cache.js'
import { BusState, CHANNEL, encode, type BusLog } from './message.js'

export function createPostgresBus (databaseUrl: string, log: BusLog): InvalidationBus {
  const state = new BusState()
  let client: pg.Client | undefined
  let closed = false
  let retry: NodeJS.Timeout | undefined
  let attempt = 0

  const connect = async () => {
    if (closed) return
    const next = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000, keepAlive: true })
    const lost = (err?: Error) => {
      if (client !== next) return
      client = undefined
      state.healthy = false
      if (err) log('postgres invalidation listener lost', err)
      next.end().catch(() => {})
      schedule()
    }
    next.on('error', lost)
    next.on('end', () => lost())
    next.on('notification', (message) => { if (message.payload) state.receive(message.payload) })
    try {
      await next.connect()
      await next.query(`LISTEN ${CHANNEL}`)
      if (closed) { await next.end(); return }
      client = next
      attempt = 0
      state.connected()
    } catch (err) {
      log('postgres invalidation listener cannot connect', err)
      next.end().catch(() => {})
      schedule()
    }
  }

  const schedule = () => {
    if (closed || retry) return
    attempt += 1
    retry = setTimeout(() => { retry = undefined; void connect() }, Math.min(250 * attempt, 2000))
    retry.unref()
  }

  void connect()

  return {
    publish (event) {
      const current = client
      if (current === undefined) return
      current.query('SELECT pg_notify($1, $2)', [CHANNEL, encode(event)]).catch((err) => log('postgres notify failed', err))
    },
    subscribe (handler) { state.handlers.push(handler) },
    get healthy () { return state.healthy },
    onReconnect (handler) { state.reconnectHandlers.push(handler) },
    async close () {
      closed = true
      state.healthy = false
      clearTimeout(retry)
      const current = client
      client = undefined
      await current?.end().catch(() => {})
    },
  }
}
