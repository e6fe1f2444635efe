/**
 * @vouch/verifier: checks vouch access tokens inside a resource server, with
 * no call to vouch per request, and keeps vouch's promise that a bumped
 * version or a revoked session kills a token at once. Depends on jose only.
 *
 * - Signature, `alg`, `typ: at+jwt`, `iss`, `aud`, `exp`/`nbf` (with skew)
 *   against vouch's published JWKS (./keys.ts).
 * - Revocation: the verifier follows vouch's revocation feed (./feed.ts) and
 *   keeps, for the longest an access token lives, each user's lowest valid
 *   version and the revoked session ids. Reconnects resume from a cursor,
 *   missing nothing, and go at once to the next of several instances.
 * - Never a verdict without the facts. A JWKS that cannot be fetched is
 *   `keys_unavailable`, not `invalid_token`. Revocation state that is not
 *   known to be current (feed lost for longer than `maxDisconnectedMs`, or
 *   silent for longer than `maxFeedSilenceMs`) is `revocation_feed_unavailable`.
 *   With `fallback: 'introspect'` both ask vouch's introspection endpoint
 *   instead, and fail only when vouch is wholly unreachable.
 *
 * @example
 * const verifier = createVerifier({ vouchUrl: ['https://auth-a.example.com', 'https://auth-b.example.com'],
 *   issuer: 'https://auth.example.com', audience: 'vouch', clientId: 'orders', clientSecret: process.env.VOUCH_CLIENT_SECRET })
 * const claims = await verifier.verify(token) // throws VerifierError; `err.unavailable` means 503, not 401
 */
import { errors, jwtVerify } from 'jose'
import { VerifierError, type VerifierErrorCode } from './errors.js'
import { followRevocationFeed } from './feed.js'
import { createKeys, KeysUnavailable } from './keys.js'

export { VerifierError, type VerifierErrorCode } from './errors.js'

export interface VerifierOptions {
  /**
   * vouch's base URL, or the base URLs of several instances of one
   * deployment (tried in turn when one is unreachable); the JWKS, feed and
   * introspection URLs default from it.
   */
  vouchUrl: string | string[]
  issuer: string
  audience: string
  clientId: string
  clientSecret: string
  /** Default ['EdDSA', 'ES256']. Never HMAC, never none. */
  algorithms?: string[]
  /** Seconds of clock skew tolerated; default 5. */
  clockTolerance?: number
  /** Milliseconds of silence (no event, no heartbeat) on a connected feed after which verification fails closed; default 15000. */
  maxFeedSilenceMs?: number
  /** Milliseconds the revocation state is still trusted after the feed's connection was lost, while it reconnects; default 500. */
  maxDisconnectedMs?: number
  /** What to do without signing keys or a live feed; default 'fail-closed'. */
  fallback?: 'fail-closed' | 'introspect'
  /** Least milliseconds between two JWKS fetches triggered by an unknown kid; default 5000. */
  jwksCooldownMs?: number
  jwksUrl?: string | string[]
  feedUrl?: string | string[]
  introspectionUrl?: string | string[]
}

export interface VerifiedToken {
  sub: string
  sid: string
  ver: number
  jti: string
  iat: number
  exp: number
}

export interface Verifier {
  verify (token: string): Promise<VerifiedToken>
  /** Resolves once the feed has delivered its first state (or rejects after `timeoutMs`). */
  ready (timeoutMs?: number): Promise<void>
  /** True while the revocation state may be trusted (connected and heard from, or only just disconnected). */
  readonly feedLive: boolean
  close (): Promise<void>
}

/** An introspection request that has not answered within this long is given up (for the next URL). */
const INTROSPECTION_TIMEOUT_MS = 5000

function urlList (value: string | string[] | undefined, name: string): string[] | undefined {
  if (value === undefined) return undefined
  const urls = typeof value === 'string' ? [value] : value
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every((url) => typeof url === 'string' && URL.canParse(url))) {
    throw new TypeError(`"${name}" must be a URL or a non-empty array of URLs`)
  }
  return urls.map((url) => url.replace(/\/+$/, ''))
}

function duration (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`"${name}" must be a non-negative number of milliseconds`)
  return value
}

/** The claims vouch puts in an access token, or undefined when one is missing or of the wrong type. */
function claimsOf (payload: Record<string, unknown>): VerifiedToken | undefined {
  const { sub, sid, ver, jti, iat, exp } = payload
  if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string' ||
      typeof ver !== 'number' || !Number.isSafeInteger(ver) || ver < 0 || typeof iat !== 'number' || typeof exp !== 'number') {
    return undefined
  }
  return { sub, sid, ver, jti, iat, exp }
}

export function createVerifier (options: VerifierOptions): Verifier {
  const bases = urlList(options.vouchUrl, 'vouchUrl')!
  const jwksUrls = urlList(options.jwksUrl, 'jwksUrl') ?? bases.map((base) => `${base}/.well-known/jwks.json`)
  const feedUrls = urlList(options.feedUrl, 'feedUrl') ?? bases.map((base) => `${base}/auth/revocations`)
  const introspectionUrls = urlList(options.introspectionUrl, 'introspectionUrl') ?? bases.map((base) => `${base}/auth/introspect`)
  const authorization = `Basic ${btoa(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`)}`
  const introspectFallback = options.fallback === 'introspect'

  const keys = createKeys({ urls: jwksUrls, cooldownMs: duration(options.jwksCooldownMs, 5000, 'jwksCooldownMs') })
  keys.warm()
  const feed = followRevocationFeed({
    urls: feedUrls,
    authorization,
    maxSilenceMs: duration(options.maxFeedSilenceMs, 15_000, 'maxFeedSilenceMs'),
    maxDisconnectedMs: duration(options.maxDisconnectedMs, 500, 'maxDisconnectedMs'),
  })

  /**
   * Asks vouch (each introspection URL in turn) whether the token is active:
   * vouch checks the signature and every revocation itself. `unavailable` is
   * thrown when no URL answers, `inactive` when vouch refuses the token.
   */
  const introspect = async (token: string, unavailable: VerifierErrorCode, inactive: VerifierErrorCode): Promise<VerifiedToken> => {
    let answer: Record<string, unknown> | undefined
    const failures: unknown[] = []
    for (const url of introspectionUrls) {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
          signal: AbortSignal.timeout(INTROSPECTION_TIMEOUT_MS),
        })
        if (!res.ok) throw new Error(`introspection at ${url} answered ${res.status}`)
        answer = await res.json() as Record<string, unknown>
        break
      } catch (err) {
        failures.push(err)
      }
    }
    if (answer === undefined) {
      throw new VerifierError(unavailable, 'vouch could not be reached to introspect the token', {
        cause: failures.length === 1 ? failures[0] : new AggregateError(failures),
      })
    }
    if (answer.active !== true) throw new VerifierError(inactive, 'vouch does not accept the token')
    const audience = answer.aud
    const claims = claimsOf(answer)
    if (claims === undefined || answer.iss !== options.issuer ||
        !(audience === options.audience || (Array.isArray(audience) && audience.includes(options.audience)))) {
      throw new VerifierError('invalid_token', 'the token is invalid')
    }
    return claims
  }

  return {
    async verify (token) {
      let payload
      try {
        ({ payload } = await jwtVerify(token, keys.getKey, {
          algorithms: options.algorithms ?? ['EdDSA', 'ES256'],
          typ: 'at+jwt',
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: options.clockTolerance ?? 5,
          requiredClaims: ['sub', 'sid', 'ver', 'jti', 'iat', 'exp'],
        }))
      } catch (err) {
        if (err instanceof KeysUnavailable) {
          // Nothing is known about the token: vouch may still judge it, else it is an outage.
          if (introspectFallback) return introspect(token, 'keys_unavailable', 'invalid_token')
          throw new VerifierError('keys_unavailable', "vouch's signing keys are unavailable", { cause: err })
        }
        if (err instanceof errors.JWTExpired) throw new VerifierError('token_expired', 'the token has expired')
        throw new VerifierError('invalid_token', 'the token is invalid')
      }
      const claims = claimsOf(payload as Record<string, unknown>)
      if (claims === undefined) throw new VerifierError('invalid_token', 'the token is invalid')
      if (!feed.live) {
        if (introspectFallback) await introspect(token, 'revocation_feed_unavailable', 'token_revoked')
        else throw new VerifierError('revocation_feed_unavailable', 'the revocation feed is unavailable')
      } else if (feed.revoked(claims.sub, claims.sid, claims.ver)) {
        throw new VerifierError('token_revoked', 'the token has been revoked')
      }
      return claims
    },

    ready (timeoutMs = 10_000) {
      return feed.ready(timeoutMs)
    },

    get feedLive () { return feed.live },

    async close () {
      feed.close()
    },
  }
}
