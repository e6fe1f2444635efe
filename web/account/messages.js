// @ts-check
/**
 * What the pages say, in sentences: the SDK's errors (VouchError, by its
 * `code` from the server's catalogue) and the reasons it signs a page out.
 * The server's own messages are written for developers; these are for the
 * person at the keyboard, and never include what the server sent.
 */

/** @typedef {import('@vouch/client/error-codes').ErrorCode} ErrorCode */
/** @typedef {Partial<Record<ErrorCode, string>>} Overrides */

const SESSION_ENDED = 'Your session has ended. Please sign in again.'

/** @type {Record<ErrorCode, string>} */
const BY_CODE = {
  validation_failed: 'Please check what you entered and try again.',
  weak_password: 'That password is too short. Choose a longer one.',
  invalid_credentials: 'The email or password is incorrect.',
  invalid_token: SESSION_ENDED,
  token_expired: SESSION_ENDED,
  token_revoked: SESSION_ENDED,
  refresh_token_invalid: SESSION_ENDED,
  refresh_token_reused: 'For your security this device was signed out, because its sign-in was used somewhere else. ' +
    'Sign in again, and change your password if you did not expect this.',
  reset_token_invalid: 'This reset link is invalid, has expired or was already used. Request a new one from the sign-in page.',
  origin_not_allowed: 'This page may not sign in from this address. Open the account page at the address vouch is configured for.',
  forbidden: 'This is not allowed here.',
  not_found: 'That was not found; it may already be gone.',
  request_timeout: 'The request took too long. Please try again.',
  email_taken: 'An account with this email already exists. Sign in instead, or reset your password.',
  payload_too_large: 'What you entered is too long.',
  unsupported_media_type: 'Something went wrong. Please reload the page and try again.',
  rate_limited: 'Too many attempts. Please wait a moment and try again.',
  internal_error: 'Something went wrong on our side. Please try again.',
  service_unavailable: 'The service is temporarily unavailable. Please try again shortly.',
}

/**
 * "in 40 seconds", "in 3 minutes": for Retry-After.
 *
 * @param {number} seconds
 * @returns {string}
 */
function waitFor (seconds) {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`
  const minutes = Math.round(seconds / 60)
  return minutes < 90 ? `${minutes} minutes` : `${Math.round(minutes / 60)} hours`
}

/**
 * @param {unknown} err
 * @returns {err is { code: ErrorCode, retryAfter?: number }}
 */
export function isVouchError (err) {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' &&
    Object.hasOwn(BY_CODE, err.code)
}

/** Codes that mean this page's session is over. */
const SESSION_CODES = new Set(['invalid_token', 'token_expired', 'token_revoked', 'refresh_token_invalid', 'refresh_token_reused'])

/**
 * @param {unknown} err
 * @returns {boolean}
 */
export function isSessionError (err) {
  return isVouchError(err) && SESSION_CODES.has(err.code)
}

/**
 * A sentence for a failed call. A network failure (the SDK rethrows fetch's
 * TypeError) says so; anything else unexpected gets a generic sentence.
 *
 * @param {unknown} err
 * @param {Overrides} [overrides] sentences that fit the action better
 * @returns {string}
 */
export function errorMessage (err, overrides = {}) {
  if (isVouchError(err)) {
    if (err.code === 'rate_limited' && typeof err.retryAfter === 'number' && err.retryAfter > 0) {
      return overrides.rate_limited ?? `Too many attempts. Please try again in ${waitFor(err.retryAfter)}.`
    }
    return overrides[err.code] ?? BY_CODE[err.code]
  }
  if (err instanceof TypeError) return 'Could not reach the server. Check your connection and try again.'
  return 'Something went wrong. Please reload the page and try again.'
}

/** @typedef {'logout' | 'revoked' | 'reuse_detected' | 'expired'} SignedOutReason */

/**
 * Why this page is no longer signed in (the SDK's signedOut reasons). A
 * 'logout' started here says more (see app.js); this one is for a sign-out
 * that came from another tab.
 *
 * @param {SignedOutReason | string} reason
 * @returns {{ text: string, tone: 'info' | 'warning' }}
 */
export function signedOutMessage (reason) {
  switch (reason) {
    case 'revoked': return { text: 'This device was signed out from another device.', tone: 'warning' }
    case 'reuse_detected': return { text: BY_CODE.refresh_token_reused, tone: 'warning' }
    case 'expired': return { text: 'Your session has expired. Please sign in again.', tone: 'info' }
    default: return { text: 'You are signed out.', tone: 'info' }
  }
}
