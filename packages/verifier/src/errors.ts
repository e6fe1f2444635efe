/**
 * What the verifier throws about a token. A verdict on the token
 * (`invalid_token`, `token_expired`, `token_revoked`: answer 401) is kept
 * apart from "cannot decide now" (`keys_unavailable`,
 * `revocation_feed_unavailable`: answer 503 and let the client retry): vouch
 * could not be reached, so the token was neither accepted nor judged.
 *
 * A caller's mistake (a bad option) is not a VerifierError but a TypeError,
 * thrown when the verifier is created.
 *
 * @module
 */

/**
 * Why a token was not accepted.
 *
 * @example
 * switch (err.code) {
 *   case 'token_expired': return refresh()
 *   case 'keys_unavailable': case 'revocation_feed_unavailable': return retryLater()
 *   default: return signIn()
 * }
 */
export type VerifierErrorCode =
  /** Malformed, badly signed, or refused on a claim (`claim` says which), or no bearer token at all. */
  | 'invalid_token'
  /** Past its `exp` (beyond the clock tolerance). */
  | 'token_expired'
  /** Revoked at vouch (sign-out, sign-out everywhere, password change, refresh-token replay…). */
  | 'token_revoked'
  /** vouch's signing keys (JWKS) could not be obtained: says nothing about the token. */
  | 'keys_unavailable'
  /** The revocation state is not known to be current (feed lost), and introspection was not possible. */
  | 'revocation_feed_unavailable'

/**
 * The body of an error answer, in vouch's own error shape.
 *
 * @example
 * const body: VerifierErrorBody = { statusCode: 401, error: 'Unauthorized', code: 'token_revoked', message: 'The access token has been revoked.' }
 */
export interface VerifierErrorBody {
  statusCode: 401 | 503
  error: 'Unauthorized' | 'Service Unavailable'
  /** The error's code, or `service_unavailable` for both codes that mean "cannot decide". */
  code: Exclude<VerifierErrorCode, 'keys_unavailable' | 'revocation_feed_unavailable'> | 'service_unavailable'
  message: string
}

/**
 * Options of the {@link VerifierError} constructor.
 *
 * @example
 * new VerifierError('invalid_token', 'unexpected "iss" claim value', { claim: 'iss', cause: err })
 */
export interface VerifierErrorOptions {
  cause?: unknown
  /** The claim (or header parameter: `alg`, `typ`, `kid`) that refused the token. */
  claim?: string
  /** No credentials were presented at all: the challenge carries no error code (RFC 6750 §3.1). */
  missing?: boolean
}

const UNAVAILABLE: ReadonlySet<VerifierErrorCode> = new Set(['keys_unavailable', 'revocation_feed_unavailable'])

/** Seconds a client is asked to wait after a 503: the verifier reconnects (or refetches) within about that. */
const RETRY_AFTER_S = 1

const PUBLIC_MESSAGES: Record<VerifierErrorCode, string> = {
  invalid_token: 'The access token is invalid.',
  token_expired: 'The access token has expired.',
  token_revoked: 'The access token has been revoked.',
  keys_unavailable: 'Token signing keys are unavailable.',
  revocation_feed_unavailable: 'Token revocation state is unavailable.',
}

/**
 * Thrown by `verify` and `verifyRequest`. `message` is for logs (it may name
 * the expected issuer or audience); `body` and `headers` are what to answer.
 *
 * @example
 * try {
 *   request.user = await verifier.verify(token)
 * } catch (err) {
 *   if (!(err instanceof VerifierError)) throw err
 *   if (err.claim !== undefined) log.warn(err.message) // e.g. the "iss" claim is "http://localhost:3000", expected "https://auth.example.com"
 *   return new Response(JSON.stringify(err.body), { status: err.status, headers: err.headers })
 * }
 */
export class VerifierError extends Error {
  override name = 'VerifierError'
  /** Why the token was not accepted. */
  readonly code: VerifierErrorCode
  /** The claim or header parameter that refused the token (`iss`, `aud`, `typ`, `alg`, `exp`, `nbf`, `kid`, `sub`…), when one did. */
  readonly claim: string | undefined
  /** The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3); undefined for a 503, where the token was not judged. */
  readonly wwwAuthenticate: string | undefined
  readonly #missing: boolean

  constructor (code: VerifierErrorCode, message: string, options: VerifierErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.claim = options.claim
    this.#missing = options.missing === true
    this.wwwAuthenticate = UNAVAILABLE.has(code) ? undefined : this.#missing ? 'Bearer' : 'Bearer error="invalid_token"'
  }

  /** True when the verifier could not decide (vouch unreachable): answer 503 and retry, never treat it as a verdict on the token. */
  get unavailable (): boolean {
    return UNAVAILABLE.has(this.code)
  }

  /** The HTTP status to answer: 401 for a verdict on the token, 503 when the verifier could not decide. */
  get status (): 401 | 503 {
    return this.unavailable ? 503 : 401
  }

  /** Seconds for `Retry-After` on a 503; undefined on a 401. */
  get retryAfter (): number | undefined {
    return this.unavailable ? RETRY_AFTER_S : undefined
  }

  /** The headers of the answer: `WWW-Authenticate` on a 401, `Retry-After` on a 503, and the JSON content type. */
  get headers (): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
    if (this.wwwAuthenticate !== undefined) headers['www-authenticate'] = this.wwwAuthenticate
    if (this.retryAfter !== undefined) headers['retry-after'] = String(this.retryAfter)
    return headers
  }

  /**
   * The body of the answer, in vouch's error shape. It names the claim that
   * refused the token but not the expected values (those are in `message`,
   * for the logs).
   */
  get body (): VerifierErrorBody {
    if (this.unavailable) {
      return { statusCode: 503, error: 'Service Unavailable', code: 'service_unavailable', message: PUBLIC_MESSAGES[this.code] }
    }
    const message = this.#missing
      ? 'A bearer access token is required.'
      : this.claim === undefined ? PUBLIC_MESSAGES[this.code] : `${PUBLIC_MESSAGES[this.code].slice(0, -1)}: refused on its "${this.claim}".`
    return { statusCode: 401, error: 'Unauthorized', code: this.code as VerifierErrorBody['code'], message }
  }

  /** The whole answer as a fetch `Response`, for fetch-style servers (Hono, edge runtimes, Deno, Bun). */
  toResponse (): Response {
    return new Response(JSON.stringify(this.body), { status: this.status, headers: this.headers })
  }
}
