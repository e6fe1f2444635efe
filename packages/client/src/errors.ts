/**
 * The one error type of the client: vouch answered, and refused, with a
 * stable code from the catalogue shared with the server (./error-codes.ts).
 * Anything that is not an answer from vouch stays what it is: a network
 * failure is the `TypeError` fetch threw, never a VouchError, so an
 * application can tell "vouch said no" from "vouch could not be reached"
 * (and the client never signs anyone out over the latter).
 *
 * @module
 */
import { ERROR_CODES, type ErrorCode } from './error-codes.js'

/**
 * vouch answered with an error. `code` is one of vouch's error codes, so a
 * `switch (err.code)` covers them all; `status` is the HTTP status;
 * `retryAfter` is the Retry-After header in seconds (`rate_limited`,
 * `service_unavailable`).
 *
 * @example
 * try {
 *   await vouch.login({ email, password })
 * } catch (err) {
 *   if (!(err instanceof VouchError)) throw err // network failure: a TypeError
 *   switch (err.code) {
 *     case 'invalid_credentials': return show('Wrong email or password.')
 *     case 'rate_limited': return show(`Too many attempts; try again in ${err.retryAfter ?? 60} s.`)
 *     default: return show(err.message)
 *   }
 * }
 */
export class VouchError extends Error {
  override name = 'VouchError'
  /** vouch's error code. */
  readonly code: ErrorCode
  /** The HTTP status of the answer. */
  readonly status: number
  /** Seconds to wait before retrying, when vouch said (Retry-After). */
  readonly retryAfter: number | undefined

  constructor (code: ErrorCode, status: number, message: string, options: { retryAfter?: number | undefined, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = status
    this.retryAfter = options.retryAfter
  }
}

/**
 * True when `err` is a VouchError, with the given code if one is given.
 *
 * @example
 * try { await vouch.resetPassword({ token, newPassword }) } catch (err) {
 *   if (isVouchError(err, 'reset_token_invalid')) return show('This link has expired; ask for a new one.')
 *   throw err
 * }
 */
export function isVouchError (err: unknown, code?: ErrorCode): err is VouchError {
  return err instanceof VouchError && (code === undefined || err.code === code)
}

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES)

/** The code of an answer without a vouch body (a proxy's 502, an HTML error page), from its status. */
function codeForStatus (status: number): ErrorCode {
  switch (status) {
    case 401: return 'invalid_token'
    case 403: return 'origin_not_allowed'
    case 404: return 'not_found'
    case 408: return 'request_timeout'
    case 409: return 'email_taken'
    case 413: return 'payload_too_large'
    case 415: return 'unsupported_media_type'
    case 429: return 'rate_limited'
    default: return status >= 500 ? (status === 500 ? 'internal_error' : 'service_unavailable') : 'validation_failed'
  }
}

/** Reads a `code` out of a parsed body, if it is one of vouch's. */
export function knownCode (body: unknown): ErrorCode | undefined {
  const code = typeof body === 'object' && body !== null ? (body as { code?: unknown }).code : undefined
  return typeof code === 'string' && KNOWN.has(code) ? code as ErrorCode : undefined
}

/** The VouchError for an error answer, from its status, its parsed body (if JSON) and its headers. */
export function errorFromAnswer (status: number, body: unknown, headers: Headers): VouchError {
  const code = knownCode(body) ?? codeForStatus(status)
  const message = typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string'
    ? (body as { message: string }).message
    : `vouch answered ${status}.`
  const raw = headers.get('retry-after')
  const retryAfter = raw !== null && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : undefined
  return new VouchError(code, status, message, { retryAfter })
}
