/**
 * Every error code vouch answers with: the one list the server's catalogue
 * (src/errors.ts) and this client are both checked against, so a code added
 * on one side and not the other fails the server's type check.
 *
 * @example
 * import { ERROR_CODES, type ErrorCode } from '@vouch/client/error-codes'
 * const known = (code: string): code is ErrorCode => (ERROR_CODES as readonly string[]).includes(code)
 */
export const ERROR_CODES = [
  'validation_failed',
  'weak_password',
  'invalid_credentials',
  'invalid_token',
  'token_expired',
  'token_revoked',
  'refresh_token_invalid',
  'refresh_token_reused',
  'reset_token_invalid',
  'origin_not_allowed',
  'forbidden',
  'not_found',
  'request_timeout',
  'email_taken',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'internal_error',
  'service_unavailable',
] as const

/**
 * A code vouch answers with, in the `code` field of every error body.
 *
 * @example
 * const code: ErrorCode = 'token_expired'
 */
export type ErrorCode = typeof ERROR_CODES[number]
