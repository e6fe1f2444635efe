/**
 * Recognising database failures without leaking them: a unique-constraint
 * violation, and "the database cannot be reached" (which the HTTP layer turns
 * into 503 service_unavailable: fail closed).
 */
import { Prisma } from './generated/client.js'

export function isUniqueViolation (err: unknown): boolean {
  return err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002'
}

// P1001: can't reach server; P1002: timed out; P1008: operation timed out;
// P1017: server closed the connection; P2024: timed out waiting for a pool connection.
const UNAVAILABLE_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024'])

export function isDatabaseUnavailable (err: unknown): boolean {
  if (err instanceof Prisma.PrismaClientInitializationError) return true
  if (err instanceof Prisma.PrismaClientKnownRequestError) return UNAVAILABLE_CODES.has(err.code)
  if (err instanceof Prisma.PrismaClientUnknownRequestError || err instanceof Prisma.PrismaClientRustPanicError) {
    return /connect|timed? ?out|closed|busy|locked/i.test(err.message)
  }
  return false
}
