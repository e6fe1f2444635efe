/**
 * vouch's wire contracts, in one place for both sides: vouch itself imports
 * this module to sign and check its tokens, read bearer headers and write its
 * revocation feed, and the verifier to check and follow them. A change here
 * is a change of the protocol.
 *
 * - Access tokens (RFC 9068): `typ: at+jwt`, an asymmetric signature
 *   (EdDSA or ES256, never HMAC, never `none`), `iss`, `aud`, `exp`, and the
 *   claims below with their shapes.
 * - The bearer header (RFC 6750 §2.1).
 * - The revocation feed: server-sent events at {@link FEED_PATH},
 *   authenticated with client credentials, resumed with `?since=<cursor>`.
 *   The first event, `ready`, carries the backlog since the cursor with the
 *   stream's parameters; then `revocations` batches; between them
 *   `: heartbeat` comments. Every event's `id` is its cursor.
 *
 * Also here, for both sides: the verified-token cache (./token-cache.ts),
 * for vouch to put in front of its own signature checks, as the verifier does.
 *
 * @module
 */
import type { JWTPayload, JWTVerifyOptions } from 'jose'

export { createVerifiedTokenCache, type VerifiedTokenCache, type VerifiedTokenCacheOptions } from './token-cache.js'

/**
 * The `typ` header of vouch's access tokens (RFC 9068 §2.1).
 *
 * @example
 * new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid })
 */
export const ACCESS_TOKEN_TYPE = 'at+jwt'

/**
 * The algorithms vouch signs access tokens with. Never HMAC, never `none`:
 * a verifier accepts nothing else.
 *
 * @example
 * if (!ACCESS_TOKEN_ALGORITHMS.includes(alg)) throw new Error(`vouch does not sign with ${alg}`)
 */
export const ACCESS_TOKEN_ALGORITHMS: readonly AccessTokenAlgorithm[] = Object.freeze(['EdDSA', 'ES256'])

/**
 * An algorithm of {@link ACCESS_TOKEN_ALGORITHMS}.
 *
 * @example
 * const algorithm: AccessTokenAlgorithm = 'EdDSA'
 */
export type AccessTokenAlgorithm = 'EdDSA' | 'ES256'

/**
 * Claims every vouch access token carries, besides `iss` and `aud` (checked
 * by value). `client_id` is not among them: tokens signed before vouch set it
 * are still valid until they expire.
 *
 * @example
 * jwtVerify(token, key, { requiredClaims: [...REQUIRED_CLAIMS] })
 */
export const REQUIRED_CLAIMS: readonly string[] = Object.freeze(['sub', 'sid', 'ver', 'jti', 'iat', 'exp'])

/**
 * The claims of a vouch access token that an application uses.
 *
 * @example
 * const claims: AccessTokenClaims = await verifier.verify(token)
 * console.log(claims.sub, claims.sid, claims.client_id)
 */
export interface AccessTokenClaims {
  /** The user's id. */
  readonly sub: string
  /** The session's id. */
  readonly sid: string
  /** The user's token version when the token was issued: a token below the user's current version is revoked. */
  readonly ver: number
  /** The token's id. */
  readonly jti: string
  /** Issued at, seconds since the epoch. */
  readonly iat: number
  /** Expires at, seconds since the epoch. */
  readonly exp: number
  /** RFC 9068: the client the token was issued to; undefined only in tokens signed before vouch set it. */
  readonly client_id: string | undefined
}

/**
 * The outcome of {@link checkAccessTokenClaims}: the claims, or the name of
 * the first claim that is missing or of the wrong shape.
 *
 * @example
 * const { claims, claim } = checkAccessTokenClaims(payload)
 * if (claims === undefined) throw new Error(`malformed "${claim}" claim`)
 */
export type ClaimsCheck =
  | { readonly claims: AccessTokenClaims, readonly claim?: undefined }
  | { readonly claims?: undefined, readonly claim: string }

const isString = (value: unknown): value is string => typeof value === 'string'
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/**
 * Checks the shape of a verified token's payload: `sub`, `sid` and `jti`
 * strings, `ver` a non-negative safe integer, `iat` and `exp`
 * numbers, `client_id` absent or a string. The signature, `iss`, `aud`,
 * `typ`, `alg` and the times are jose's to check ({@link accessTokenVerifyOptions}).
 *
 * @example
 * const { payload } = await jwtVerify(token, key, accessTokenVerifyOptions({ issuer, audience }))
 * const { claims, claim } = checkAccessTokenClaims(payload)
 */
export function checkAccessTokenClaims (payload: JWTPayload | Record<string, unknown>): ClaimsCheck {
  const { sub, sid, ver, jti, iat, exp, client_id: clientId } = payload as Record<string, unknown>
  if (!isString(sub)) return { claim: 'sub' }
  if (!isString(sid)) return { claim: 'sid' }
  if (typeof ver !== 'number' || !Number.isSafeInteger(ver) || ver < 0) return { claim: 'ver' }
  if (!isString(jti)) return { claim: 'jti' }
  if (!isTime(iat)) return { claim: 'iat' }
  if (!isTime(exp)) return { claim: 'exp' }
  if (clientId !== undefined && typeof clientId !== 'string') return { claim: 'client_id' }
  return { claims: { sub, sid, ver, jti, iat, exp, client_id: clientId } }
}

/**
 * What {@link accessTokenVerifyOptions} needs to know.
 *
 * @example
 * const settings: AccessTokenRules = { issuer: 'https://auth.example.com', audience: 'vouch' }
 */
export interface AccessTokenRules {
  issuer: string
  audience: string
  /** Default {@link ACCESS_TOKEN_ALGORITHMS}. */
  algorithms?: readonly string[]
  /** Seconds; default 5. */
  clockTolerance?: number
  /** The time to judge `exp` and `nbf` by; default now. */
  currentDate?: Date
}

/**
 * jose's `jwtVerify` options for a vouch access token: the algorithms, `typ`,
 * `iss`, `aud`, the required claims and the clock.
 *
 * @example
 * const { payload } = await jwtVerify(token, getKey, accessTokenVerifyOptions({ issuer, audience, currentDate: new Date() }))
 */
export function accessTokenVerifyOptions ({ issuer, audience, algorithms = ACCESS_TOKEN_ALGORITHMS, clockTolerance = 5, currentDate }: AccessTokenRules): JWTVerifyOptions {
  return {
    algorithms: [...algorithms],
    typ: ACCESS_TOKEN_TYPE,
    issuer,
    audience,
    clockTolerance,
    requiredClaims: [...REQUIRED_CLAIMS],
    ...(currentDate === undefined ? {} : { currentDate }),
  }
}

/** RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token; trailing spaces tolerated. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or
 * undefined when the header is missing or is not a bearer credential.
 *
 * @example
 * const token = bearerToken(request.headers.get('authorization'))
 */
export function bearerToken (header: string | null | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  return BEARER.exec(header)?.[1]
}

/**
 * Where vouch serves its JWKS, relative to its base URL.
 *
 * @example
 * const jwksUrl = `${vouchUrl}${JWKS_PATH}`
 */
export const JWKS_PATH = '/.well-known/jwks.json'

/**
 * Where vouch serves token introspection (RFC 7662), relative to its base URL.
 *
 * @example
 * const introspectionUrl = `${vouchUrl}${INTROSPECTION_PATH}`
 */
export const INTROSPECTION_PATH = '/auth/introspect'

/**
 * Where vouch serves the revocation feed, relative to its base URL.
 *
 * @example
 * const feedUrl = `${vouchUrl}${FEED_PATH}`
 */
export const FEED_PATH = '/auth/revocations'

/**
 * The query parameter that resumes the feed from a cursor (the last
 * `cursor` received); vouch also takes the SSE `Last-Event-ID` header.
 *
 * @example
 * fetch(`${feedUrl}?${FEED_CURSOR_PARAM}=${cursor}`)
 */
export const FEED_CURSOR_PARAM = 'since'

/**
 * A cursor as the feed accepts it: up to 15 decimal digits (milliseconds).
 *
 * @example
 * const since = FEED_CURSOR_PATTERN.test(value) ? Number(value) : 0
 */
export const FEED_CURSOR_PATTERN = /^[0-9]{1,15}$/

/**
 * The feed's event names: `ready` (first, once per stream) and `revocations`.
 *
 * @example
 * if (event.type === FEED_EVENTS.revocations) apply(parseRevocationBatch(event.data))
 */
export const FEED_EVENTS = Object.freeze({ ready: 'ready', revocations: 'revocations' } as const)

/**
 * A name of {@link FEED_EVENTS}.
 *
 * @example
 * const name: FeedEventName = 'ready'
 */
export type FeedEventName = typeof FEED_EVENTS[keyof typeof FEED_EVENTS]

/**
 * What a `revocations` event carries (and `ready`, for the backlog).
 *
 * @example
 * const batch: RevocationBatch = { users: [{ id: userId, minVersion: 3 }], sessions: [sessionId], cursor: Date.now() }
 */
export interface RevocationBatch {
  /** Users and the lowest token version (`ver`) still valid for each. */
  users: Array<{ id: string, minVersion: number }>
  /** Revoked session ids (`sid`). */
  sessions: string[]
  /** Pass back as `since` to get what came after. */
  cursor: number
}

/**
 * What the `ready` event carries: the backlog since the requested cursor and
 * the stream's parameters.
 *
 * @example
 * const ready: FeedReady = { maxTokenAge: 900, heartbeatMs: 5000, users: [], sessions: [], cursor: Date.now() }
 */
export interface FeedReady extends RevocationBatch {
  /** Seconds after which a revocation no longer matters (the longest an access token lives). */
  maxTokenAge: number
  /** Milliseconds between heartbeats. */
  heartbeatMs: number
}

/**
 * One feed event as server-sent-events text: `id` (the cursor), `event`,
 * one `data` line of JSON, and the blank line that ends it.
 *
 * @example
 * stream.write(formatFeedEvent(FEED_EVENTS.revocations, batch))
 */
export function formatFeedEvent (event: 'ready', data: FeedReady): string
export function formatFeedEvent (event: 'revocations', data: RevocationBatch): string
export function formatFeedEvent (event: FeedEventName, data: RevocationBatch): string {
  return `id: ${data.cursor}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/**
 * The heartbeat: an SSE comment, so that a reader hears from the feed
 * between revocations and EventSource clients ignore it.
 *
 * @example
 * setInterval(() => stream.write(formatHeartbeat(Date.now())), heartbeatMs)
 */
export function formatHeartbeat (now: number): string {
  return `: heartbeat ${now}\n\n`
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0

function batchOf (value: unknown): RevocationBatch {
  const { users, sessions, cursor } = (value ?? {}) as Partial<RevocationBatch>
  if (!Array.isArray(users) || !users.every((user) => typeof user?.id === 'string' && isCount(user.minVersion))) {
    throw new TypeError('revocation batch: "users" must be an array of {id, minVersion}')
  }
  if (!Array.isArray(sessions) || !sessions.every((id) => typeof id === 'string')) {
    throw new TypeError('revocation batch: "sessions" must be an array of session ids')
  }
  if (!isCount(cursor)) throw new TypeError('revocation batch: "cursor" must be a non-negative integer')
  return { users, sessions, cursor }
}

/**
 * Parses and checks the data of a `revocations` event; throws a TypeError
 * (or a SyntaxError) when it is not one.
 *
 * @example
 * const batch = parseRevocationBatch(event.data)
 */
export function parseRevocationBatch (data: string): RevocationBatch {
  return batchOf(JSON.parse(data))
}

/**
 * Parses and checks the data of a `ready` event; throws a TypeError (or a
 * SyntaxError) when it is not one.
 *
 * @example
 * const { maxTokenAge, heartbeatMs, ...backlog } = parseFeedReady(event.data)
 */
export function parseFeedReady (data: string): FeedReady {
  const value = JSON.parse(data) as Partial<FeedReady>
  const batch = batchOf(value)
  if (!isCount(value.maxTokenAge)) throw new TypeError('ready: "maxTokenAge" must be a non-negative integer (seconds)')
  if (!isCount(value.heartbeatMs)) throw new TypeError('ready: "heartbeatMs" must be a non-negative integer (milliseconds)')
  return { maxTokenAge: value.maxTokenAge, heartbeatMs: value.heartbeatMs, ...batch }
}
