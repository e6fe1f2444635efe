/**
 * Request and response schemas. Response schemas are a second guard: the
 * serializer writes only the listed properties, so a hash or secret that
 * strayed into a returned object never reaches the client.
 */
import { STATUS_CODES } from 'node:http'
import { Type, type Static, type TSchema } from 'typebox'
import { errorCatalogue, type ErrorCode } from '../errors.js'
import { PASSWORD_MAX_LENGTH } from '../config.js'
import { DEVICE_NAME_MAX_LENGTH } from '../domain/device-info.js'

/** Realistic values for the OpenAPI document's examples (src/http/plugins/openapi.ts). */
const EXAMPLE_PROFILE = { id: '0b7f4a52-3c1e-4d8a-9f6b-2e5d7c9a1f30', email: 'ada@example.com', createdAt: '2025-06-02T08:15:00.000Z' }
const EXAMPLE_REFRESH_TOKEN = '5c0a9e1d-7b2f-4e8c-a3d6-91f04b7e2c58.1.q3Vt8xYk2LbN0cR7mWfA9sJ4hP6dG1eZoU5iTnKyX2w'
const EXAMPLE_TOKEN_PAIR = {
  tokenType: 'Bearer' as const,
  accessToken: 'eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjUtMDYtMDEiLCJ0eXAiOiJhdCtqd3QifQ.eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJzdWIiOiIwYjdmNGE1MiJ9.c2lnbmF0dXJl',
  expiresIn: 900,
  refreshToken: EXAMPLE_REFRESH_TOKEN,
  refreshExpiresIn: 1_209_600,
  sessionId: '5c0a9e1d-7b2f-4e8c-a3d6-91f04b7e2c58',
}

/** Generous bound; the precise email rules live in domain/email.ts. */
const Email = Type.String({ minLength: 1, maxLength: 1024 })
const Password = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH })
/** Cleaned for display before it is stored (domain/device-info.ts); the limit holds after cleaning too. */
const DeviceName = Type.String({ minLength: 1, maxLength: DEVICE_NAME_MAX_LENGTH })
/** Dates are serialized as RFC 3339 strings. */
const Timestamp = Type.Unsafe<Date | string>({ type: 'string', format: 'date-time' })

export const Credentials = Type.Object({
  email: Email,
  password: Password,
  deviceName: Type.Optional(DeviceName),
}, { additionalProperties: false, examples: [{ email: 'ada@example.com', password: 'correct horse battery staple', deviceName: 'Work laptop' }] })
export type Credentials = Static<typeof Credentials>

/**
 * Room for any token vouch issues: an access token sent by mistake (about
 * 520 characters with RFC 9068's claims, more with a long issuer) is
 * answered as an invalid token, not a schema error.
 */
export const TOKEN_MAX_LENGTH = 4096

export const RefreshRequest = Type.Object({
  refreshToken: Type.String({ minLength: 1, maxLength: TOKEN_MAX_LENGTH }),
}, { additionalProperties: false, examples: [{ refreshToken: EXAMPLE_REFRESH_TOKEN }] })

export const ForgotPassword = Type.Object({
  email: Email,
}, { additionalProperties: false })

export const ResetPassword = Type.Object({
  token: Type.String({ minLength: 1, maxLength: TOKEN_MAX_LENGTH }),
  newPassword: Password,
  deviceName: Type.Optional(DeviceName),
}, { additionalProperties: false })

export const PasswordChange = Type.Object({
  currentPassword: Password,
  newPassword: Password,
}, { additionalProperties: false })

/** DELETE /auth/account: the password again, so that a stolen access token alone cannot delete the account. */
export const AccountDeletion = Type.Object({
  password: Password,
}, { additionalProperties: false })

export const SessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
})

/**
 * A new session's tokens, as a bearer-mode client gets them. Cookie mode
 * answers CookieTokenPair instead (below).
 */
export const TokenPair = Type.Object({
  tokenType: Type.Literal('Bearer'),
  accessToken: Type.String(),
  expiresIn: Type.Integer(),
  refreshToken: Type.String({ description: 'Absent in cookie mode, where it is set as an HttpOnly cookie instead.' }),
  refreshExpiresIn: Type.Integer(),
  sessionId: Type.String(),
}, { examples: [EXAMPLE_TOKEN_PAIR] })

export const Profile = Type.Object({
  id: Type.String(),
  email: Type.String(),
  createdAt: Timestamp,
}, { examples: [EXAMPLE_PROFILE] })

export const Registration = Type.Intersect([Type.Object({ user: Profile }), TokenPair], { examples: [{ user: EXAMPLE_PROFILE, ...EXAMPLE_TOKEN_PAIR }] })

/**
 * Cookie mode (`Vouch-Mode: cookie`, src/http/plugins/refresh-cookie.ts):
 * the same answers with refreshToken absent, since it travels in the
 * HttpOnly cookie. Separate schemas rather than an optional refreshToken:
 * the serializer writes required properties first, so an optional one
 * would move refreshToken to the end of every bearer-mode answer.
 */
export const CookieTokenPair = Type.Omit(TokenPair, ['refreshToken'])
export const CookieRegistration = Type.Intersect([Type.Object({ user: Profile }), CookieTokenPair])

/** Each response schema that carries a refresh token, and its cookie-mode counterpart. */
export const cookieModeResponses: ReadonlyMap<object, TSchema> = new Map<object, TSchema>([
  [TokenPair, CookieTokenPair],
  [Registration, CookieRegistration],
])

export const SessionList = Type.Object({
  sessions: Type.Array(Type.Object({
    id: Type.String(),
    deviceName: Type.Union([Type.String(), Type.Null()]),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    createdAt: Timestamp,
    lastUsedAt: Timestamp,
    expiresAt: Timestamp,
    current: Type.Boolean(),
  })),
}, {
  examples: [{
    sessions: [{
      id: EXAMPLE_TOKEN_PAIR.sessionId, deviceName: 'Work laptop', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', ip: '203.0.113.7',
      createdAt: '2025-06-02T08:15:00.000Z', lastUsedAt: '2025-06-02T09:40:12.000Z', expiresAt: '2025-06-16T08:15:00.000Z', current: true,
    }],
  }],
})

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])

/** Row ids (users, sessions, events) are lower-case UUIDs. */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

/**
 * A page of a security timeline: `before` is the previous page's `next`
 * (an event id), `limit` 1 to 100 (default 50). Query values are strings
 * (the validator does not coerce), hence the patterns.
 */
export const EventPageQuery = Type.Object({
  before: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$' })),
})

/** The domain's page options (SecurityEvents.page) from a validated EventPageQuery. */
export function eventPageOptions ({ before, limit }: Static<typeof EventPageQuery>): { before: string | undefined, limit: number } {
  return { before, limit: limit === undefined ? 50 : Number(limit) }
}

/** What every view of an event shows. */
const EventFields = {
  id: Type.String(),
  type: Type.String(),
  at: Timestamp,
  sessionId: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  actor: Type.String(),
}

/** GET /auth/events: the user's own timeline, without the internal detail (a failed sign-in's reason) or the admin client's id. */
export const UserEventPage = Type.Object({
  events: Type.Array(Type.Object(EventFields)),
  next: Type.Optional(Type.String()),
})

/** GET /admin/users/:id/events: everything stored. */
export const AdminEventPage = Type.Object({
  events: Type.Array(Type.Object({
    ...EventFields,
    actorId: Nullable(Type.String()),
    detail: Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true }),
  })),
  next: Type.Optional(Type.String()),
})

export const AdminUserQuery = Type.Object({ email: Email })

/** Malformed ids are a 404 (the domain finds no such row), so the schema bounds only their length. */
export const AdminUserParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
})

export const AdminSessionParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  sessionId: Type.String({ minLength: 1, maxLength: 64 }),
})

export const AdminUser = Type.Object({
  user: Type.Object({
    id: Type.String(),
    email: Type.String(),
    createdAt: Timestamp,
    disabledAt: Nullable(Timestamp),
    tokenVersion: Type.Integer(),
  }),
})

export const AdminSessionList = Type.Object({
  sessions: Type.Array(Type.Object({
    id: Type.String(),
    deviceName: Nullable(Type.String()),
    userAgent: Nullable(Type.String()),
    ip: Nullable(Type.String()),
    createdAt: Timestamp,
    lastUsedAt: Timestamp,
    expiresAt: Timestamp,
  })),
})

export const Jwks = Type.Object({
  keys: Type.Array(Type.Object({
    kty: Type.String(),
    crv: Type.String(),
    x: Type.String(),
    y: Type.Optional(Type.String()),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.Literal('sig'),
  })),
})

export const Accepted = Type.Object({ message: Type.String() })

export const HealthStatus = Type.Object({ status: Type.String() })

const CheckStatus = Type.Union([Type.Literal('ok'), Type.Literal('unavailable')])

/** GET /health/ready when the database answers (src/http/readiness.ts). */
export const ReadyStatus = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  checks: Type.Object({
    database: CheckStatus,
    redis: Type.Optional(CheckStatus),
    invalidations: CheckStatus,
  }),
})

/** The error body's title: the OpenAPI document states it once, by this name (src/http/plugins/openapi.ts). */
export const ERROR_BODY_TITLE = 'ErrorBody'

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.Unsafe<ErrorCode>({ type: 'string', enum: Object.keys(errorCatalogue) }),
  message: Type.String(),
}, { title: ERROR_BODY_TITLE })

export const NoContent = Type.Null({ description: 'No content' })

/** Every route answers errors in one shape. */
export const ErrorResponses = { '4xx': ErrorBody, '5xx': ErrorBody }

/** What makes a kind of route fail, apart from what is its own. */
export const Failures = {
  /** Path or query parameters outside their schema. */
  input: ['validation_failed'],
  /** A JSON body: invalid, not JSON, or too large. */
  body: ['validation_failed', 'payload_too_large', 'unsupported_media_type'],
  /** The per-IP limit on every /auth and /admin route (plugins/rate-limit.ts). */
  limited: ['rate_limited'],
  /** `Authorization: Bearer` (plugins/authenticate.ts). */
  bearer: ['invalid_token', 'token_expired', 'token_revoked', 'rate_limited'],
  /** `Vouch-Mode: cookie` from an origin not in COOKIE_ORIGINS, or another value (plugins/refresh-cookie.ts). */
  cookie: ['origin_not_allowed', 'validation_failed'],
  /** A resource client's credentials (plugins/client-auth.ts), throttled when wrong. */
  client: ['invalid_credentials', 'rate_limited'],
  /** An admin client's credentials (plugins/admin-auth.ts); a resource client's are forbidden. */
  admin: ['invalid_credentials', 'forbidden', 'rate_limited'],
} as const satisfies Record<string, readonly ErrorCode[]>

/**
 * A route's error answers by status, for its response schema: each written
 * in the ErrorBody shape (errors' catch-all ranges stay, so that a status
 * not listed is written alike), and each naming the codes it can carry,
 * with an example of each, for the OpenAPI document. `internal_error` and
 * `service_unavailable` (the database is unreachable, or the server is
 * closing) can answer any request.
 */
export function errorResponses (...kinds: ReadonlyArray<ErrorCode | readonly ErrorCode[]>): Record<string, typeof ErrorBody> {
  const byStatus = new Map<number, Set<ErrorCode>>()
  for (const code of [...kinds.flat(), 'internal_error', 'service_unavailable'] as ErrorCode[]) {
    const { status } = errorCatalogue[code]
    byStatus.set(status, (byStatus.get(status) ?? new Set()).add(code))
  }
  const responses: Record<string, typeof ErrorBody> = { ...ErrorResponses }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = {
      ...ErrorBody,
      description: [...codes].map((code) => `\`${code}\``).join(', '),
      'x-examples': Object.fromEntries([...codes].map((code) => [code, {
        summary: errorCatalogue[code].message,
        value: { statusCode: status, error: STATUS_CODES[status], code, message: errorCatalogue[code].message },
      }])),
    } as typeof ErrorBody
  }
  return responses
}

/** A stream of server-sent events (the route writes it itself: this is for the OpenAPI document). */
export const EventStreamResponse = {
  description: 'A stream of server-sent events (text/event-stream).',
  content: { 'text/event-stream': { schema: { type: 'string' } } },
}
