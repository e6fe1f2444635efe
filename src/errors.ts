/**
 * Every error vouch answers with, in one catalogue: a stable machine-readable
 * code, its HTTP status and the message a client sees. The domain throws
 * `DomainError(code)`; the HTTP error handler is the only place that turns a
 * code into a response, by looking it up here. The codes themselves are
 * listed once, in @vouch/client/error-codes, shared with the client SDK.
 * test/errors.test.ts checks that every code is documented in the README.
 */

import type { ErrorCode } from '@vouch/client/error-codes'

export const errorCatalogue = {
  validation_failed: { status: 400, message: 'The request is not valid.' },
  weak_password: { status: 400, message: 'The password is too short.' },
  invalid_credentials: { status: 401, message: 'The email or password is incorrect.' },
  invalid_token: { status: 401, message: 'The access token is missing or invalid.' },
  token_expired: { status: 401, message: 'The access token has expired.' },
  token_revoked: { status: 401, message: 'The access token has been revoked.' },
  refresh_token_invalid: { status: 401, message: 'The refresh token is invalid or its session has ended.' },
  refresh_token_reused: { status: 401, message: 'The refresh token was already used; the session has been revoked.' },
  reset_token_invalid: { status: 400, message: 'The reset link is invalid, expired or already used.' },
  origin_not_allowed: { status: 403, message: 'This origin may not use cookie sessions, or the request lacks the Vouch-Mode header.' },
  forbidden: { status: 403, message: 'These credentials may not use the admin API.' },
  not_found: { status: 404, message: 'Not found.' },
  request_timeout: { status: 408, message: 'The request did not arrive in time.' },
  email_taken: { status: 409, message: 'An account with this email already exists.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The request body must be JSON.' },
  rate_limited: { status: 429, message: 'Too many requests; retry later.' },
  internal_error: { status: 500, message: 'Something went wrong.' },
  service_unavailable: { status: 503, message: 'The service is temporarily unavailable.' },
} as const satisfies Record<ErrorCode, { status: number, message: string }>

/** The code union is defined once, in the client package, and shared: the `satisfies` above fails on a code missing from either side. */
export type { ErrorCode }

/** Which user, session or client a refusal concerned: logged with the refusal, never sent. */
export type ErrorDetail = Readonly<Record<string, string | number | undefined>>

/**
 * A failure the client is told about, by code. `detail` (and a `cause`)
 * are for whoever reads the logs: the error handler logs them with the
 * request and sends only the code and message.
 */
export class DomainError extends Error {
  override name = 'DomainError'
  readonly code: ErrorCode
  /** Seconds after which a `rate_limited` or `service_unavailable` request may be retried (the Retry-After header). */
  readonly retryAfter: number | undefined
  readonly detail: ErrorDetail | undefined
  constructor (code: ErrorCode, message: string = errorCatalogue[code].message, options: { retryAfter?: number, detail?: ErrorDetail, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.retryAfter = options.retryAfter
    this.detail = options.detail
  }
}

/** A refusal with an internal detail, in the catalogue's words. */
export function refusal (code: ErrorCode, detail: ErrorDetail): DomainError {
  return new DomainError(code, errorCatalogue[code].message, { detail })
}

