/**
 * Recognising database failures without leaking them: a unique-constraint
 * violation, and "the database cannot be used right now", which the HTTP
 * layer answers with 503 service_unavailable (fail closed: a token that could
 * not be checked is never accepted). Unavailable means the same request may
 * succeed later unchanged; an error that says the request itself is wrong (a
 * constraint, bad SQL, bad input) is not unavailable.
 *
 * How Prisma 7 with a driver adapter reports a failure (see
 * test/db/errors.test.ts, which provokes each one against a real server):
 * - a known driver failure is a PrismaClientKnownRequestError: P1xxx for
 *   connections (P1001 refused, P1008 timeout, also SQLITE_BUSY, P1017
 *   closed), P2037 too many connections, P2034 write conflict or deadlock;
 * - any other PostgreSQL error is P2039 (P2010 from a raw query) whose
 *   `meta.driverAdapterError.cause.originalCode` is the SQLSTATE;
 * - an error the adapter cannot map (pg's "Connection terminated
 *   unexpectedly", a connection timeout) comes through as pg threw it, tagged
 *   with `clientVersion` outside a transaction and untagged inside one.
 */
import { Prisma } from './generated/sqlite/client.js'

export function isUniqueViolation (err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002'
}

// P1xxx: connection-level failures (can't reach, timed out, closed, ...);
// P2024: timed out waiting for a pool connection; P2028: a transaction that
// could not start within its maxWait (DB_CONNECT_TIMEOUT_MS) or outran its
// timeout; P2034: write conflict or deadlock; P2037: too many connections.
const TRANSIENT_REQUEST_CODES = new Set(['P2024', 'P2028', 'P2034', 'P2037'])

/**
 * SQLSTATEs (PostgreSQL appendix A) that say the server cannot serve now:
 * class 08 connection exception; class 53 insufficient resources (53300 too
 * many connections, disk full, out of memory); 57P01 admin_shutdown (what a
 * fast shutdown or pg_terminate_backend sends), 57P02 crash_shutdown, 57P03
 * cannot_connect_now (starting up or shutting down), 57P04 database_dropped,
 * 57P05 idle_session_timeout; 57014 query_canceled, which is what
 * DB_STATEMENT_TIMEOUT_MS produces: the database is too slow right now, the
 * same request may pass later; and 25006 read_only_sql_transaction, a write
 * sent to a server that a failover has just made a standby.
 */
export function isUnavailableSqlState (code: string): boolean {
  return /^(08|53)[0-9A-Z]{3}$/.test(code) || /^57P0[1-5]$/.test(code) || code === '57014' || code === '25006'
}

/** Node's socket errors: the database (or the network to it) is not there. */
const SOCKET_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
])

/** pg's own connection failures, which carry no code (node_modules/pg/lib/client.js, pg-pool). */
const PG_CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|timeout expired|Query read timeout|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|Cannot use a pool after calling end on the pool)/

interface DriverAdapterErrorLike {
  name: 'DriverAdapterError'
  cause: { kind?: unknown, originalCode?: unknown, code?: unknown }
}

function isDriverAdapterError (err: unknown): err is DriverAdapterErrorLike {
  return err instanceof Error && err.name === 'DriverAdapterError' && typeof err.cause === 'object' && err.cause !== null
}

const CONNECTION_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections', 'TransactionWriteConflict'])

function driverAdapterErrorUnavailable (err: DriverAdapterErrorLike): boolean {
  const { kind, originalCode, code } = err.cause
  if (typeof kind === 'string' && CONNECTION_KINDS.has(kind)) return true
  const sqlState = typeof originalCode === 'string' ? originalCode : code
  return typeof sqlState === 'string' && isUnavailableSqlState(sqlState)
}

/** A driver or socket error, possibly wrapped in `cause`s (pg-pool wraps its timeouts). */
function driverErrorUnavailable (err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 4) return false
  if (isDriverAdapterError(err)) return driverAdapterErrorUnavailable(err)
  const { code, severity } = err as { code?: unknown, severity?: unknown }
  if (typeof code === 'string') {
    if (SOCKET_ERRORS.has(code)) return true
    // pg's DatabaseError: an ErrorResponse from the server, with its SQLSTATE.
    if (typeof severity === 'string' && isUnavailableSqlState(code)) return true
  }
  if (PG_CONNECTION_MESSAGES.test(err.message)) return true
  return driverErrorUnavailable(err.cause, depth + 1)
}

export function isDatabaseUnavailable (err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    if (err.code.startsWith('P1') || TRANSIENT_REQUEST_CODES.has(err.code)) return true
    const wrapped = (err.meta as { driverAdapterError?: unknown } | undefined)?.driverAdapterError
    return isDriverAdapterError(wrapped) && driverAdapterErrorUnavailable(wrapped)
  }
  if (err instanceof Prisma.PrismaClientInitializationError ||
      err instanceof Prisma.PrismaClientUnknownRequestError ||
      err instanceof Prisma.PrismaClientRustPanicError) {
    return true
  }
  if (driverErrorUnavailable(err)) return true
  // Other driver failures (a database file that cannot be opened) reach us as
  // plain errors that Prisma tags with its version.
  return err instanceof Error && 'clientVersion' in err
}
