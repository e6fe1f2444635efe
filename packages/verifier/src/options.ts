/**
 * The verifier's options, checked once when it is created: a caller's
 * mistake is a TypeError that names the option, thrown by `createVerifier`,
 * never a surprise on the first request.
 *
 * @module
 */
import { ACCESS_TOKEN_ALGORITHMS, FEED_PATH, INTROSPECTION_PATH, JWKS_PATH, type AccessTokenAlgorithm } from './protocol.js'
import { resolveVerifiedTokenCacheOptions, type VerifiedTokenCacheOptions } from './token-cache.js'

/**
 * The source of the current time, in milliseconds since the epoch. Every
 * decision the verifier makes about time (token expiry, feed silence, how
 * long a lost feed is trusted, how long the revocations are kept) reads it,
 * so tests move time instead of sleeping.
 *
 * @example
 * let now = Date.now()
 * const clock: Clock = { now: () => now }
 * now += 60_000 // a minute later, at once
 */
export interface Clock {
  now (): number
}

/**
 * How to create a verifier.
 *
 * @example
 * const options: VerifierOptions = {
 *   vouchUrl: ['https://auth-a.internal', 'https://auth-b.internal'],
 *   issuer: 'https://auth.example.com',
 *   audience: 'vouch',
 *   clientId: 'orders',
 *   clientSecret: process.env.VOUCH_CLIENT_SECRET!,
 * }
 */
export interface VerifierOptions {
  /**
   * vouch's base URL, or the base URLs of several instances of one
   * deployment (tried in turn when one is unreachable); the JWKS, feed and
   * introspection URLs default from it.
   */
  vouchUrl: string | string[]
  /** The `iss` vouch signs with (its `JWT_ISSUER`, or its `PUBLIC_URL`); see vouch's metadata at /.well-known/oauth-authorization-server. */
  issuer: string
  /** The `aud` vouch signs with (its `JWT_AUDIENCE`). */
  audience: string
  /** The resource server's client id at vouch (`RESOURCE_CLIENTS`), for the feed and introspection. */
  clientId: string
  /** Its client secret. */
  clientSecret: string
  /** Algorithms accepted, among 'EdDSA' and 'ES256' (default both). Never HMAC, never none. */
  algorithms?: AccessTokenAlgorithm[]
  /** Seconds of clock skew tolerated on `exp` and `nbf`; default 5. */
  clockTolerance?: number
  /** Milliseconds of silence (no event, no heartbeat) on a connected feed after which verification fails closed; default 15000. */
  maxFeedSilenceMs?: number
  /** Milliseconds the revocation state is still trusted after the feed's connection was lost, while it reconnects; default 500. */
  maxDisconnectedMs?: number
  /** What to do without signing keys or a live feed: fail closed (503, the default) or ask vouch's introspection endpoint. */
  fallback?: 'fail-closed' | 'introspect'
  /** Least milliseconds between two JWKS fetches triggered by an unknown kid; default 5000. */
  jwksCooldownMs?: number
  /** Overrides `${vouchUrl}/.well-known/jwks.json`. */
  jwksUrl?: string | string[]
  /** Overrides `${vouchUrl}/auth/revocations`. */
  feedUrl?: string | string[]
  /** Overrides `${vouchUrl}/auth/introspect`. */
  introspectionUrl?: string | string[]
  /** The time source (default `Date`); see {@link Clock}. */
  clock?: Clock
  /**
   * The cache of tokens whose signature and claims verified, so that a token
   * seen again skips that check (revocation is still checked every time):
   * its bounds (default 10,000 tokens, 8 MiB), or `false` for none.
   */
  tokenCache?: VerifiedTokenCacheOptions | false
}

/** The options, checked, with their defaults. */
export interface ResolvedOptions {
  readonly issuer: string
  readonly audience: string
  readonly authorization: string
  readonly algorithms: readonly AccessTokenAlgorithm[]
  readonly clockTolerance: number
  readonly maxFeedSilenceMs: number
  readonly maxDisconnectedMs: number
  readonly fallback: 'fail-closed' | 'introspect'
  readonly jwksCooldownMs: number
  readonly jwksUrls: readonly string[]
  readonly feedUrls: readonly string[]
  readonly introspectionUrls: readonly string[]
  readonly clock: Clock
  readonly tokenCache: Required<VerifiedTokenCacheOptions> | false
}

const systemClock: Clock = { now: () => Date.now() }

function urlList (value: unknown, name: string): string[] | undefined {
  if (value === undefined) return undefined
  const urls: unknown = typeof value === 'string' ? [value] : value
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every((url) => typeof url === 'string' && URL.canParse(url) && /^https?:$/.test(new URL(url).protocol))) {
    throw new TypeError(`"${name}" must be an http(s) URL or a non-empty array of them`)
  }
  return urls.map((url: string) => url.replace(/\/+$/, ''))
}

function text (value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`"${name}" must be a non-empty string`)
  return value
}

function amount (value: unknown, fallback: number, name: string, unit: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`"${name}" must be a non-negative number of ${unit}`)
  return value
}

/** Checks the options (TypeError naming the first wrong one) and fills in the defaults. */
export function resolveOptions (options: VerifierOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('the verifier options must be an object')
  const bases = urlList(options.vouchUrl, 'vouchUrl')
  if (bases === undefined) throw new TypeError('"vouchUrl" is required: vouch\'s base URL, or an array of the URLs of its instances')
  const algorithms = options.algorithms ?? ACCESS_TOKEN_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every((alg) => ACCESS_TOKEN_ALGORITHMS.includes(alg))) {
    throw new TypeError(`"algorithms" must be a non-empty array of ${ACCESS_TOKEN_ALGORITHMS.join(', ')} (vouch never signs with anything else)`)
  }
  const fallback = options.fallback ?? 'fail-closed'
  if (fallback !== 'fail-closed' && fallback !== 'introspect') throw new TypeError('"fallback" must be \'fail-closed\' or \'introspect\'')
  const clock = options.clock ?? systemClock
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') throw new TypeError('"clock" must be an object with a now() method returning milliseconds')
  const clientId = text(options.clientId, 'clientId')
  const clientSecret = text(options.clientSecret, 'clientSecret')

  return Object.freeze({
    issuer: text(options.issuer, 'issuer'),
    audience: text(options.audience, 'audience'),
    // RFC 6749 §2.3.1: form-encode the id and the secret, then Basic.
    authorization: `Basic ${btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)}`,
    algorithms: Object.freeze([...algorithms]),
    clockTolerance: amount(options.clockTolerance, 5, 'clockTolerance', 'seconds'),
    maxFeedSilenceMs: amount(options.maxFeedSilenceMs, 15_000, 'maxFeedSilenceMs', 'milliseconds'),
    maxDisconnectedMs: amount(options.maxDisconnectedMs, 500, 'maxDisconnectedMs', 'milliseconds'),
    fallback,
    jwksCooldownMs: amount(options.jwksCooldownMs, 5000, 'jwksCooldownMs', 'milliseconds'),
    jwksUrls: urlList(options.jwksUrl, 'jwksUrl') ?? bases.map((base) => `${base}${JWKS_PATH}`),
    feedUrls: urlList(options.feedUrl, 'feedUrl') ?? bases.map((base) => `${base}${FEED_PATH}`),
    introspectionUrls: urlList(options.introspectionUrl, 'introspectionUrl') ?? bases.map((base) => `${base}${INTROSPECTION_PATH}`),
    clock,
    tokenCache: options.tokenCache === false ? false : resolveVerifiedTokenCacheOptions(options.tokenCache ?? {}, 'tokenCache'),
  })
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 wants for Basic credentials (btoa needs Latin-1: this yields ASCII). */
function formEncode (value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+')
}
