/**
 * Recognising database failures without leaking them: a unique-constraint
 * violation, and "the database cannot be used right now", which the HTTP
 * layer answers with 503 service_unavailable (fail closed: a token that could
 * not be checked is never accepted).
 */
import { Prisma } from './generated/sqlite/client.js'

export function isUniqueViolation (err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002'
}

// P1xxx: connection-level failures (can't reach, timed out, closed, ...);
// P2024: timed out waiting for a pool connection; P2034: write conflict or deadlock.
const TRANSIENT_REQUEST_CODES = new Set(['P2024', 'P2034'])

export function isDatabaseUnavailable (err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientKnownRequestError) {
    return err.code.startsWith('P1') || TRANSIENT_REQUEST_CODES.has(err.code)
  }
  if (err instanceof Prisma.PrismaClientInitializationError ||
      err instanceof Prisma.PrismaClientUnknownRequestError ||
      err instanceof Prisma.PrismaClientRustPanicError) {
    return true
  }
  // Driver failures (a database file that cannot be opened, a refused
  // connection) reach us as plain errors that Prisma tags with its version.
  return err instanceof Error && 'clientVersion' in err
}
