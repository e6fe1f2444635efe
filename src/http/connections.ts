/**
 * How long a client may hold a connection, and how many connections one
 * process accepts: without these, clients that send slowly (or not at all)
 * hold their connections for as long as they like, and a few hundred of
 * them exhaust the process's file descriptors so that sign-ins fail.
 *
 * Every connection is bounded by one of these timeouts at every moment:
 * - from a request's first byte, its headers must arrive within
 *   `headersTimeout` and the whole request, body included, within
 *   `requestTimeout` (answered 408 `request_timeout`, then closed);
 * - a connection on which nothing is read or written for `idleTimeout` is
 *   closed (a connection that never sends a byte, a client that stops
 *   reading its answer); the revocation feed writes a heartbeat well within
 *   it, so its streams stay open (src/config.ts insists on that);
 * - between requests, a kept-alive connection is closed after
 *   `keepAliveTimeout` (plus Node's one-second margin).
 * Node checks the header and request timeouts periodically, every 30 s by
 * default; the check here runs every quarter of the shorter timeout (at most
 * every second), so they are enforced within that much of their bound.
 *
 * Past `maxConnections` open connections, Node closes new ones at once.
 * The cap is per process (each cluster worker has its own).
 */
import { readFileSync } from 'node:fs'
import type { ServerOptions } from 'node:http'

export interface ConnectionLimits {
  /** Milliseconds from a request's first byte to the end of its headers. */
  readonly headersTimeout: number
  /** Milliseconds from a request's first byte to the end of its body. */
  readonly requestTimeout: number
  /** Milliseconds a connection is kept open, idle, after a response. */
  readonly keepAliveTimeout: number
  /** Milliseconds a connection may go without reading or writing a byte. */
  readonly idleTimeout: number
  /** Most open connections per process; further ones are closed at once. */
  readonly maxConnections: number
}

/** Fastify's server options that put the limits (all but the cap) in force. */
export function serverOptions (limits: ConnectionLimits) {
  const http: ServerOptions = {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(Math.min(limits.headersTimeout, limits.requestTimeout) / 4))),
  }
  // Fastify hands `http` to http.createServer, then sets these three itself (they would otherwise be its defaults: none, none, 72 s).
  return {
    http,
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionTimeout: limits.idleTimeout,
  }
}

/** A few thousand connections are more than one process serves well; past that, add workers. */
const MAX_CONNECTIONS_CEILING = 4096

/** Descriptors kept for everything but clients: the database pool, Redis, SQLite files, key files, mail, logs. */
const RESERVED_FILE_DESCRIPTORS = 256

/**
 * The default cap: the open-file limit less the descriptors vouch needs for
 * itself (half the limit if that is small), and at most 4096.
 */
export function defaultMaxConnections (openFiles: number | undefined): number {
  if (openFiles === undefined) return MAX_CONNECTIONS_CEILING
  return Math.max(1, Math.min(MAX_CONNECTIONS_CEILING, Math.max(openFiles - RESERVED_FILE_DESCRIPTORS, Math.floor(openFiles / 2))))
}

/**
 * This process's open-file limit (the soft limit, which Node raises to the
 * hard one at start-up), or undefined where /proc cannot tell (not Linux).
 */
export function openFileLimit (): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((entry) => entry.startsWith('Max open files'))
    const soft = line?.match(/^Max open files\s+(\d+)/)?.[1]
    return soft === undefined ? undefined : Number(soft)
  } catch {
    return undefined
  }
}
