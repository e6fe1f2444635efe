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
 * session service, not here. Tokens are signed synchronously with node:crypto
 * (microseconds), so that issuing one never waits on libuv's thread pool
 * behind password hashes; verification stays with jose.
 */
import { randomUUID, sign } from 'node:crypto'
import { errors, jwtVerify, type JWTHeaderParameters } from 'jose'
import { ACCESS_TOKEN_TYPE, accessTokenVerifyOptions, checkAccessTokenClaims, createVerifiedTokenCache, type AccessTokenClaims } from '@vouch/verifier/protocol'
import type { SigningAlgorithm } from '../config.js'
import type { KeySet, SigningKey } from '../crypto/keys.js'
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
  /** Signs synchronously (node:crypto, microseconds): never queued on libuv's pool behind password hashes. */
  issue (subject: { userId: string, sessionId: string, version: number }): string
  /** Throws DomainError `invalid_token` or `token_expired`. */
  verify (token: string): Promise<AccessClaims>
}

/** The claim rules (typ, required claims, their shapes) are a wire contract: they live with the verifier. */
export { ACCESS_TOKEN_TYPE }

/** Verified tokens remembered, so a client's repeated requests skip the signature check. */
const VERIFIED_CACHE = { maxEntries: 10_000, maxBytes: 8 * 1024 * 1024 }

export function createAccessTokens (keys: KeySet, settings: AccessTokenSettings, clock: Clock): AccessTokens {
  // A kid this process does not know may be a key another instance just
  // rotated in (and signs with when KEY_PUBLISH_DELAY is shorter than the
  // news takes): re-read the stored keys (at most once a second) before refusing.
  const resolveKey = async (header: JWTHeaderParameters) => {
    if (header.kid === undefined) throw new DomainError('invalid_token')
    if (!keys.byKid.has(header.kid)) await keys.unknownKid()
    const key = keys.byKid.get(header.kid)
    if (key === undefined) throw new DomainError('invalid_token')
    return key
  }

  // Token string → its claims and the key that verified it (the verifier
  // package's cache: exact token keys, LRU, bounded by entries and bytes,
  // nothing kept past exp + clock skew). A hit is the very same bytes already
  // verified; it stands while that key is still published.
  const verified = createVerifiedTokenCache<{ exp: number, claims: AccessClaims, kid: string, key: unknown }>(VERIFIED_CACHE)
  const remembered = (token: string): AccessClaims | undefined => {
    const entry = verified.get(token, clock.now().getTime() / 1000 - settings.clockSkew)
    if (entry === undefined || keys.byKid.get(entry.kid) !== entry.key) return undefined
    return entry.claims
  }
  const remember = (token: string, claims: AccessClaims, nbf: unknown) => {
    const kid = decodeKid(token)
    if (kid === undefined || nbf !== undefined) return // tokens with nbf are rare; never cache them
    verified.set(token, { exp: claims.exp, claims, kid, key: keys.byKid.get(kid) })
  }

  return {
    ttl: settings.ttl,

    issue ({ userId, sessionId, version }) {
      const now = Math.floor(clock.now().getTime() / 1000)
      // The members in the order jose's SignJWT wrote them: the claims it was
      // given, then iss, aud, sub, iat, exp, jti as its setters were called.
      const claims: AccessClaims & { readonly iss: string, readonly aud: string } = {
        client_id: settings.clientId,
        sid: sessionId,
        ver: version,
        iss: settings.issuer,
        aud: settings.audience,
        sub: userId,
        iat: now,
        exp: now + settings.ttl,
        jti: randomUUID(),
      }
      return signCompact(keys.current, keys.algorithm, claims)
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

/** Each key's encoded protected header, made once: `{"alg","typ","kid"}`, as jose wrote it. */
const encodedHeaders = new WeakMap<SigningKey, string>()

/**
 * A compact JWS of `claims` (RFC 7515), signed with node:crypto on the
 * calling thread: Ed25519 (deterministic), or ES256 with the raw r‖s
 * signature JWS requires (not DER).
 */
function signCompact (key: SigningKey, algorithm: SigningAlgorithm, claims: object): string {
  let header = encodedHeaders.get(key)
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg: algorithm, typ: ACCESS_TOKEN_TYPE, kid: key.kid })).toString('base64url')
    encodedHeaders.set(key, header)
  }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const signature = algorithm === 'EdDSA'
    ? sign(null, Buffer.from(input), key.privateKeyObject)
    : sign('sha256', Buffer.from(input), { key: key.privateKeyObject, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

function decodeKid (token: string): string | undefined {
  try {
    const kid = (JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString()) as { kid?: unknown }).kid
    return typeof kid === 'string' ? kid : undefined
  } catch {
    return undefined
  }
}
