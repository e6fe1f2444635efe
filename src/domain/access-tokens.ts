/**
 * Access tokens: RFC 9068 JWT access tokens (`typ: at+jwt`; `iss`, `exp`,
 * `aud`, `sub`, `client_id`, `iat`, `jti`, plus vouch's `sid` and `ver`),
 * signed with the current key of the key set, so that any standard JWT
 * library accepts them from the issuer's metadata and JWKS. Verification
 * accepts only the configured algorithm (never `none`, never HMAC), a key
 * published under the token's `kid`, the configured `iss` and `aud`, and a
 * well-formed `sub`/`sid`/`ver`/`jti`. `client_id` is not required, so that
 * tokens signed before it was added (at most ACCESS_TOKEN_TTL old) still
 * work, and any string is accepted: changing JWT_CLIENT_ID signs no one out.
 * Whether the token's version and session are still live is decided by the
 * session service, not here.
 */
import { randomUUID } from 'node:crypto'
import { SignJWT, errors, jwtVerify, type JWTHeaderParameters } from 'jose'
import { ACCESS_TOKEN_TYPE, accessTokenVerifyOptions, checkAccessTokenClaims, type AccessTokenClaims } from '@vouch/verifier/protocol'
import type { KeySet } from '../crypto/keys.js'
import { DomainError } from '../errors.js'
import type { Clock } from './clock.js'

/** The claims of an access token: the wire contract, defined once in the verifier package. */
export type AccessClaims = AccessTokenClaims

export interface AccessTokenSettings {
  readonly issuer: string
  readonly audience: string
  /** `client_id`: the client the tokens are issued to (vouch's first-party applications). */
  readonly clientId: string
  /** Seconds. */
  readonly ttl: number
  /** Seconds. */
  readonly clockSkew: number
}

export interface AccessTokens {
  readonly ttl: number
  issue (subject: { userId: string, sessionId: string, version: number }): Promise<string>
  /** Throws DomainError `invalid_token` or `token_expired`. */
  verify (token: string): Promise<AccessClaims>
}

/** The claim rules (typ, required claims, their shapes) are a wire contract: they live with the verifier. */
export { ACCESS_TOKEN_TYPE }

/** Verified tokens remembered, so a client's repeated requests skip the signature check. */
const VERIFIED_CACHE_SIZE = 10_000

export function createAccessTokens (keys: KeySet, settings: AccessTokenSettings, clock: Clock): AccessTokens {
  const resolveKey = (header: JWTHeaderParameters) => {
    const key = header.kid === undefined ? undefined : keys.byKid.get(header.kid)
    if (key === undefined) throw new DomainError('invalid_token')
    return key
  }

  // Token string → its claims and the key that verified it. A hit is the
  // very same bytes already verified; it stands while that key is still
  // published and the token has not expired (checked on every hit).
  const verified = new Map<string, { claims: AccessClaims, kid: string, key: unknown }>()
  const remembered = (token: string): AccessClaims | undefined => {
    const entry = verified.get(token)
    if (entry === undefined) return undefined
    if (keys.byKid.get(entry.kid) !== entry.key) {
      verified.delete(token)
      return undefined
    }
    if (clock.now().getTime() / 1000 >= entry.claims.exp + settings.clockSkew) {
      verified.delete(token)
      throw new DomainError('token_expired')
    }
    return entry.claims
  }
  const remember = (token: string, claims: AccessClaims, nbf: unknown) => {
    const kid = decodeKid(token)
    if (kid === undefined || nbf !== undefined) return // tokens with nbf are rare; never cache them
    if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value as string)
    verified.set(token, { claims, kid, key: keys.byKid.get(kid) })
  }

  return {
    ttl: settings.ttl,

    issue ({ userId, sessionId, version }) {
      const now = Math.floor(clock.now().getTime() / 1000)
      return new SignJWT({ client_id: settings.clientId, sid: sessionId, ver: version })
        .setProtectedHeader({ alg: keys.algorithm, typ: ACCESS_TOKEN_TYPE, kid: keys.current.kid })
        .setIssuer(settings.issuer)
        .setAudience(settings.audience)
        .setSubject(userId)
        .setIssuedAt(now)
        .setExpirationTime(now + settings.ttl)
        .setJti(randomUUID())
        .sign(keys.current.privateKey)
    },

    async verify (token) {
      const hit = remembered(token)
      if (hit !== undefined) return hit
      let payload
      try {
        ({ payload } = await jwtVerify(token, resolveKey, accessTokenVerifyOptions({
          algorithms: [keys.algorithm],
          issuer: settings.issuer,
          audience: settings.audience,
          clockTolerance: settings.clockSkew,
          currentDate: clock.now(),
        })))
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new DomainError('token_expired')
        throw new DomainError('invalid_token')
      }
      const { claims } = checkAccessTokenClaims(payload)
      if (claims === undefined) throw new DomainError('invalid_token')
      remember(token, claims, payload.nbf)
      return claims
    },
  }
}

function decodeKid (token: string): string | undefined {
  try {
    const kid = (JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString()) as { kid?: unknown }).kid
    return typeof kid === 'string' ? kid : undefined
  } catch {
    return undefined
  }
}
