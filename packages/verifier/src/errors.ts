/**
 * What `verify` throws. A verdict on the token (`invalid_token`,
 * `token_expired`, `token_revoked`) is kept apart from "cannot decide now"
 * (`keys_unavailable`, `revocation_feed_unavailable`): vouch could not be
 * reached, so the token was neither accepted nor judged. A resource server
 * answers the first with 401 and the second with 503 and a retry.
 */
export type VerifierErrorCode =
  | 'invalid_token'
  | 'token_expired'
  | 'token_revoked'
  /** vouch's signing keys (JWKS) could not be obtained: says nothing about the token. */
  | 'keys_unavailable'
  /** The revocation state is not known to be current (feed lost), and introspection was not possible. */
  | 'revocation_feed_unavailable'

const UNAVAILABLE: ReadonlySet<VerifierErrorCode> = new Set(['keys_unavailable', 'revocation_feed_unavailable'])

export class VerifierError extends Error {
  override name = 'VerifierError'
  constructor (readonly code: VerifierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
  }

  /** True when the verifier could not decide (vouch unreachable): answer 503 and retry, never treat it as a verdict on the token. */
  get unavailable (): boolean {
    return UNAVAILABLE.has(this.code)
  }
}
