/**
 * The verifier: checks vouch access tokens inside a resource server, with no
 * call to vouch per request, and keeps vouch's promise that a bumped version
 * or a revoked session kills a token at once.
 *
 * - Signature, `alg`, `typ: at+jwt`, `iss`, `aud`, `exp`/`nbf` (with skew)
 *   against vouch's published JWKS (./keys.ts), by the rules of
 *   ./protocol.ts. A refusal on a claim names it (`err.claim`, and the
 *   expected and actual values in `err.message`).
 * - A token whose signature and claims verified is kept in a bounded cache
 *   (./token-cache.ts), so a token seen again skips that check, until its
 *   `exp` (with the same tolerance). Only verdicts reached with the current
 *   keys: the cache is emptied when the key set changes, a check that began
 *   under other keys is not kept, and a key set past its age goes back
 *   through jose (which refetches it). Revocation is checked every time.
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
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose'
import { VerifierError, type VerifierErrorCode } from './errors.js'
import { followRevocationFeed, type FeedStatus } from './feed.js'
import { createKeys, KeysUnavailable } from './keys.js'
import { resolveOptions, type ResolvedOptions, type VerifierOptions } from './options.js'
import { ACCESS_TOKEN_TYPE, accessTokenVerifyOptions, bearerToken, checkAccessTokenClaims, type AccessTokenClaims } from './protocol.js'
import { createVerifiedTokenCache } from './token-cache.js'

/**
 * The claims of an accepted token.
 *
 * @example
 * const { sub, sid, client_id: clientId } = await verifier.verify(token)
 */
export type VerifiedToken = AccessTokenClaims

/**
 * A running verifier (it follows vouch's revocation feed until `close`).
 *
 * @example
 * const verifier = createVerifier({ vouchUrl, issuer, audience: 'vouch', clientId, clientSecret })
 * await verifier.ready()
 * const claims = await verifier.verify(token)
 * await verifier.close()
 */
export interface Verifier {
  /**
   * Checks an access token; resolves to its claims or throws a
   * {@link VerifierError} (`err.status` 401 for a verdict, 503 when vouch
   * could not be reached).
   */
  verify (token: string): Promise<VerifiedToken>
  /**
   * Checks the `Authorization: Bearer` header of a fetch-style request
   * (Hono, edge runtimes, Deno, Bun, Node's own `Request`): the claims, or a
   * {@link VerifierError} carrying the answer (`status`, `headers`, `body`,
   * `toResponse()`).
   */
  verifyRequest (request: Pick<Request, 'headers'>): Promise<VerifiedToken>
  /** Checks the value of an `Authorization` header (missing or not Bearer: `invalid_token`, with a challenge without error code). */
  verifyAuthorization (header: string | null | undefined): Promise<VerifiedToken>
  /** Resolves once the feed has delivered its first state; rejects with `revocation_feed_unavailable` after `timeoutMs` (default 10 s). */
  ready (timeoutMs?: number): Promise<void>
  /** True while the revocation state may be trusted (connected and heard from, or only just disconnected). */
  readonly feedLive: boolean
  /** A snapshot of the feed's state (live, connected, cursor, last heard from), for health checks and logs. */
  feedStatus (): FeedStatus
  /** Stops following the feed. */
  close (): Promise<void>
}

/** An introspection request that has not answered within this long is given up (for the next URL). */
const INTROSPECTION_TIMEOUT_MS = 5000

const iso = (seconds: unknown) => typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : String(seconds)
const show = (value: unknown) => value === undefined ? 'missing' : JSON.stringify(value)

/** A jose refusal, as a VerifierError that names the claim (or header parameter) and, in its message, what was expected. */
function refusal (err: unknown, token: string, options: ResolvedOptions, now: number): VerifierError {
  const header = (() => { try { return decodeProtectedHeader(token) } catch { return {} } })()
  if (err instanceof errors.JWTExpired) {
    return new VerifierError('token_expired',
      `the token expired at ${iso(err.payload.exp)} (now ${new Date(now).toISOString()}, ${options.clockTolerance} s of clock tolerance)`,
      { claim: 'exp', cause: err })
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const claim = err.claim
    const payload: JWTPayload = err.payload
    let detail: string
    if (claim === 'iss') detail = `its "iss" claim is ${show(payload.iss)}, expected ${show(options.issuer)} (the verifier's "issuer" option must be vouch's issuer)`
    else if (claim === 'aud') detail = `its "aud" claim is ${show(payload.aud)}, expected ${show(options.audience)} (the verifier's "audience" option)`
    else if (claim === 'typ') detail = `its "typ" header is ${show(header.typ)}, expected "${ACCESS_TOKEN_TYPE}" (not a vouch access token)`
    else if (claim === 'nbf') detail = `it is not valid before ${iso(payload.nbf)} ("nbf")`
    else if (err.reason === 'missing') detail = `it has no "${claim}" claim`
    else detail = `its "${claim}" claim is refused (${err.message})`
    return new VerifierError('invalid_token', `the token was refused: ${detail}`, { claim, cause: err })
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new VerifierError('invalid_token',
      `the token was refused: its "alg" header is ${show(header.alg)}, expected one of ${options.algorithms.join(', ')}`,
      { claim: 'alg', cause: err })
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new VerifierError('invalid_token',
      `the token was refused: vouch's JWKS has no single key for its "kid" header ${show(header.kid)} (a token of another issuer, or a forgery)`,
      { claim: 'kid', cause: err })
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new VerifierError('invalid_token', 'the token was refused: its signature does not verify', { cause: err })
  }
  return new VerifierError('invalid_token', `the token is malformed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}

/**
 * Creates a verifier and starts following vouch's revocation feed. Options
 * are checked at once: a mistake is a TypeError naming the option.
 *
 * @example
 * import { createVerifier, VerifierError } from '@vouch/verifier'
 *
 * const verifier = createVerifier({
 *   vouchUrl: ['https://auth-a.internal', 'https://auth-b.internal'],
 *   issuer: 'https://auth.example.com', audience: 'vouch',
 *   clientId: 'orders', clientSecret: process.env.VOUCH_CLIENT_SECRET!,
 * })
 * await verifier.ready()
 * try {
 *   const { sub } = await verifier.verify(token)
 * } catch (err) {
 *   if (err instanceof VerifierError) console.log(err.status, err.code, err.claim, err.message)
 * }
 */
export function createVerifier (options: VerifierOptions): Verifier {
  const resolved = resolveOptions(options)
  const { issuer, audience, authorization, clock, introspectionUrls } = resolved
  const introspectFallback = resolved.fallback === 'introspect'

  const verified = resolved.tokenCache === false ? undefined : createVerifiedTokenCache<VerifiedToken>(resolved.tokenCache)
  // Bumped with every change of the key set: a check that began before it is not cached.
  let keyGeneration = 0
  const keys = createKeys({
    urls: [...resolved.jwksUrls],
    cooldownMs: resolved.jwksCooldownMs,
    clock,
    onChange () {
      keyGeneration++
      verified?.clear()
    },
  })
  keys.warm()
  const feed = followRevocationFeed({
    urls: resolved.feedUrls,
    authorization,
    maxSilenceMs: resolved.maxFeedSilenceMs,
    maxDisconnectedMs: resolved.maxDisconnectedMs,
    clock,
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
    if (answer.active !== true) throw new VerifierError(inactive, 'vouch does not accept the token (introspection: inactive)')
    if (answer.iss !== issuer) {
      throw new VerifierError('invalid_token', `the token was refused: its "iss" is ${show(answer.iss)}, expected ${show(issuer)}`, { claim: 'iss' })
    }
    const aud = answer.aud
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new VerifierError('invalid_token', `the token was refused: its "aud" is ${show(aud)}, expected ${show(audience)}`, { claim: 'aud' })
    }
    const { claims, claim } = checkAccessTokenClaims(answer)
    if (claims === undefined) throw new VerifierError('invalid_token', `the token was refused: its "${claim}" claim is missing or malformed`, { claim })
    return claims
  }

  /**
   * The signature and claims, checked by jose against the keys: the claims
   * (frozen: they may be shared through the cache), or, when the keys are
   * unavailable and the fallback is introspection, vouch's answer, which
   * has checked revocation too.
   */
  const check = async (token: string, now: number): Promise<{ claims: VerifiedToken, introspected: boolean }> => {
    const generation = keyGeneration
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, accessTokenVerifyOptions({
        issuer,
        audience,
        algorithms: resolved.algorithms,
        clockTolerance: resolved.clockTolerance,
        currentDate: new Date(now),
      })))
    } catch (err) {
      if (err instanceof KeysUnavailable) {
        // Nothing is known about the token: vouch may still judge it, else it is an outage.
        if (introspectFallback) return { claims: await introspect(token, 'keys_unavailable', 'invalid_token'), introspected: true }
        throw new VerifierError('keys_unavailable', "vouch's signing keys are unavailable", { cause: err })
      }
      throw refusal(err, token, resolved, now)
    }
    const { claims, claim } = checkAccessTokenClaims(payload)
    if (claims === undefined) throw new VerifierError('invalid_token', `the token was refused: its "${claim}" claim is malformed`, { claim })
    const frozen = Object.freeze(claims)
    // Not cached: a token with "nbf" (vouch sets none; a clock set back could make it not yet valid again), or one
    // checked against keys that have changed since.
    if (verified !== undefined && payload.nbf === undefined && generation === keyGeneration) verified.set(token, frozen)
    return { claims: frozen, introspected: false }
  }

  const verify = async (token: string): Promise<VerifiedToken> => {
    if (typeof token !== 'string' || token === '') throw new VerifierError('invalid_token', 'the token is missing', { missing: true })
    const now = clock.now()
    // jose's rule for exp (expired when exp <= now - tolerance), in exact seconds: a hit is never accepted where jose would refuse.
    let claims = verified !== undefined && keys.fresh ? verified.get(token, now / 1000 - resolved.clockTolerance) : undefined
    if (claims === undefined) {
      const checked = await check(token, now)
      if (checked.introspected) return checked.claims
      claims = checked.claims
    }
    if (!feed.live) {
      if (introspectFallback) await introspect(token, 'revocation_feed_unavailable', 'token_revoked')
      else throw new VerifierError('revocation_feed_unavailable', 'the revocation feed is unavailable: the revocation state is not known to be current')
    } else if (feed.revoked(claims.sub, claims.sid, claims.ver)) {
      throw new VerifierError('token_revoked', 'the token has been revoked')
    }
    return claims
  }

  const verifyAuthorization = (header: string | null | undefined) => {
    const token = bearerToken(header)
    if (token === undefined) {
      return Promise.reject(new VerifierError('invalid_token', 'the request carries no bearer access token', { missing: true }))
    }
    return verify(token)
  }

  return {
    verify,
    verifyAuthorization,

    verifyRequest (request) {
      return verifyAuthorization(request.headers.get('authorization'))
    },

    async ready (timeoutMs = 10_000) {
      try {
        await feed.ready(timeoutMs)
      } catch (err) {
        throw new VerifierError('revocation_feed_unavailable', `the revocation feed did not deliver its state within ${timeoutMs} ms`, { cause: err })
      }
    },

    get feedLive () { return feed.live },

    feedStatus () { return feed.status() },

    async close () {
      feed.close()
    },
  }
}
