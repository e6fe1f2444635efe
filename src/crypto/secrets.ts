/**
 * Opaque secrets (refresh and reset tokens). Invariants: a secret carries 256
 * bits from the CSPRNG; only its SHA-256 is stored (a fast hash is enough for
 * 256 random bits, unlike passwords); comparisons are constant-time.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

const SECRET_BYTES = 32
/** base64url length of a 32-byte secret. */
export const SECRET_LENGTH = 43

export function randomSecret (): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}

export function sameHash (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/**
 * A secret derived from another under a server-side key: HMAC-SHA256(key, context.parent).
 * Only someone holding the key can compute it, and the same inputs always give the same secret.
 */
export function deriveSecret (key: Uint8Array, context: string, parent: string): string {
  return createHmac('sha256', key).update(context).update('.').update(parent).digest('base64url')
}

export function isWellFormedSecret (value: string): boolean {
  return value.length === SECRET_LENGTH && /^[A-Za-z0-9_-]+$/.test(value)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Row ids are lower-case UUIDs. */
export function isUuid (value: string): boolean {
  return UUID.test(value)
}

/**
 * Splits an opaque token of the form `<row id>.<secret>` (refresh and reset
 * tokens): the id finds the row by primary key, the secret is checked against
 * its stored hash. Undefined for anything not of that form.
 */
export function parseIdToken (token: string): { id: string, secret: string } | undefined {
  const dot = token.indexOf('.')
  const id = token.slice(0, dot)
  const secret = token.slice(dot + 1)
  return dot > 0 && isUuid(id) && isWellFormedSecret(secret) ? { id, secret } : undefined
}
