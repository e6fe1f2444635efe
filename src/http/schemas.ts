/**
 * Request and response schemas. Response schemas are a second guard: the
 * serializer writes only the listed properties, so a hash or secret that
 * strayed into a returned object never reaches the client.
 */
import { Type, type Static, type TSchema } from 'typebox'
import { errorCatalogue, type ErrorCode } from '../errors.js'
import { PASSWORD_MAX_LENGTH } from '../config.js'
import { DEVICE_NAME_MAX_LENGTH } from '../domain/device-info.js'

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
}, { additionalProperties: false })
export type Credentials = Static<typeof Credentials>

/**
 * Room for any token vouch issues: an access token sent by mistake (about
 * 520 characters with RFC 9068's claims, more with a long issuer) is
 * answered as an invalid token, not a schema error.
 */
export const TOKEN_MAX_LENGTH = 4096

export const RefreshRequest = Type.Object({
  refreshToken: Type.String({ minLength: 1, maxLength: TOKEN_MAX_LENGTH }),
}, { additionalProperties: false })

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
})

export const Profile = Type.Object({
  id: Type.String(),
  email: Type.String(),
  createdAt: Timestamp,
})

export const Registration = Type.Intersect([Type.Object({ user: Profile }), TokenPair])

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

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  code: Type.Unsafe<ErrorCode>({ type: 'string', enum: Object.keys(errorCatalogue) }),
  message: Type.String(),
})

export const NoContent = Type.Null({ description: 'No content' })

/** Every route answers errors in one shape. */
export const ErrorResponses = { '4xx': ErrorBody, '5xx': ErrorBody }
