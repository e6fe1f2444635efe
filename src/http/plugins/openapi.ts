/**
 * The API's description, generated from the routes' own schemas so that it
 * cannot drift from them: an OpenAPI 3.1 document at GET /openapi.json
 * (@fastify/swagger) and a reference page at /docs (@fastify/swagger-ui).
 * Both are off with API_DOCS=false. Registered before the routes, whose
 * onRoute events @fastify/swagger collects.
 *
 * What the document says beyond the schemas comes from what the routes
 * already declare, never from a list kept here: security from their
 * `config` (`auth: 'bearer'` and `cookieFallback`, `client`, `admin`, which
 * the plugins that enforce them read too), error codes and their examples from
 * `errorResponses(...)` (schemas.ts). The error body is one component,
 * `ErrorBody`, that every error response refers to.
 *
 * Invariants:
 * - Every asset of /docs is served by vouch (Swagger UI's files ship in the
 *   package): the page needs no network beyond vouch.
 * - /docs answers carry DOCS_CSP: scripts, styles, fetches and images from
 *   vouch's own origin only (images also as data: URIs, which Swagger UI's
 *   stylesheet uses for its icons), no inline script or style, no eval,
 *   no framing. Everything else keeps the deny-all CSP of security-headers.ts.
 * - The account page's routes are left out of the document: they answer
 *   HTML and files, not the API (README "Account page").
 */
import { STATUS_CODES } from 'node:http'
import swagger, { type SwaggerTransform } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { ERROR_BODY_TITLE, ErrorBody } from '../schemas.js'
import { VERSION } from '../../version.js'
import { refreshCookieOptions } from './refresh-cookie.js'

/** The docs page's CSP, exactly as documented (README "API documentation"). */
export const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

export const OPENAPI_PATH = '/openapi.json'
export const DOCS_PATH = '/docs'

/** Where the description leaves routes out, by path prefix, and why (test/http/openapi.test.ts lists the same). */
const HIDDEN_PREFIXES = ['/account', DOCS_PATH, OPENAPI_PATH]

/** Each operation's tag: the first whose paths match (listed most specific first; the document lists them in TAG_ORDER). */
const TAGS: ReadonlyArray<{ name: string, description: string, paths: RegExp }> = [
  { name: 'resource servers', description: 'Introspection (RFC 7662), revocation (RFC 7009) and the revocation feed, for resource servers and clients.', paths: /^\/auth\/(?:introspect|revoke|revocations)$/ },
  { name: 'sessions', description: 'The signed-in devices of the user, and watching the current one.', paths: /^\/auth\/(?:sessions|session)(?:\/|$)/ },
  { name: 'account', description: 'The user\'s security timeline, and deleting the account.', paths: /^\/auth\/(?:events|account)$/ },
  { name: 'auth', description: 'Registration, sign-in, refresh, sign-out, passwords.', paths: /^\/auth\// },
  { name: 'admin', description: 'Administration, with an admin client\'s credentials (ADMIN_CLIENTS).', paths: /^\/admin\// },
  { name: 'discovery', description: 'Keys, authorization-server metadata and health, without authentication.', paths: /^\/(?:\.well-known|health)\// },
]

const TAG_ORDER = ['auth', 'sessions', 'account', 'resource servers', 'admin', 'discovery']

const ERROR_BODY_REF = `#/components/schemas/${ERROR_BODY_TITLE}`

export interface ApiDocsOptions {
  /** config.publicUrl: the document's server. */
  publicUrl: string
  /** For the refresh cookie's name (refresh-cookie.ts), in the cookie-mode security scheme. */
  cookies: Config['cookies']
}

type RouteConfig = { auth?: 'bearer', cookieFallback?: true, client?: true | 'optional', admin?: true } | undefined
type Responses = Record<string, Record<string, unknown>>

/** Who may call a route, as the plugins that check it read its config. */
function securityOf (method: string, url: string, config: RouteConfig): Array<Record<string, string[]>> | undefined {
  // cookieFallback (logout): in cookie mode the refresh cookie may stand in for the access token.
  if (config?.auth === 'bearer') return config.cookieFallback === true ? [{ bearerAuth: [] }, { refreshCookie: [] }] : [{ bearerAuth: [] }]
  if (config?.admin === true) return [{ adminBasic: [] }]
  if (config?.client === true) return [{ clientBasic: [] }]
  // RFC 7009: a public client may revoke a token it holds without credentials.
  if (config?.client === 'optional') return [{}, { clientBasic: [] }]
  // Bearer mode sends the refresh token in the body; cookie mode in the cookie alone.
  if (method === 'POST' && url === '/auth/refresh') return [{}, { refreshCookie: [] }]
  return undefined
}

/** The headers of an error answer with this status, as the error handler sets them (error-handler.ts sendError). */
function errorHeaders (status: string, config: RouteConfig): Record<string, unknown> | undefined {
  if (status === '429' || status === '503') {
    return { 'retry-after': { type: 'integer', description: 'Seconds after which the request may be retried (429 always; 503 when known).' } }
  }
  if (status === '401' && config?.auth === 'bearer') return { 'www-authenticate': { type: 'string', description: 'Bearer error="invalid_token" (RFC 6750).' } }
  if (status === '401' && (config?.client !== undefined || config?.admin === true)) return { 'www-authenticate': { type: 'string', description: 'Basic realm="vouch".' } }
  return undefined
}

/**
 * The document's view of one route: hidden, tagged, its security, and its
 * error answers by status only (the catch-all 4xx and 5xx ranges of the
 * response schemas are for the serializer: every status a route answers is
 * listed).
 */
const transform: SwaggerTransform = ({ schema, url, route }) => {
  if (HIDDEN_PREFIXES.some((prefix) => url === prefix || url.startsWith(`${prefix}/`))) return { schema: { ...schema, hide: true }, url }
  const method = String(route.method)
  const config = route.config as RouteConfig
  const responses: Responses = {}
  for (const [status, response] of Object.entries((schema?.response ?? {}) as Responses)) {
    if (/^[45]xx$/.test(status)) continue
    if ((response as { title?: unknown }).title === ERROR_BODY_TITLE) {
      const headers = errorHeaders(status, config)
      responses[status] = headers === undefined ? response : { ...response, headers }
    } else {
      // A success's description: its own, or the status's name ("OK", "Created").
      responses[status] = { ...response, description: (response as { description?: string }).description ?? STATUS_CODES[status] }
    }
  }
  const security = securityOf(method, url, config)
  const tag = TAGS.find(({ paths }) => paths.test(url))
  const documented: FastifySchema = {
    ...schema,
    response: responses,
    ...(tag !== undefined && { tags: [tag.name] }),
    ...(security !== undefined && { security }),
    // The cookie-mode header, on every route whose answers mention it.
    ...(Object.values(responses).some((response) => JSON.stringify(response).includes('`origin_not_allowed`')) && {
      headers: {
        type: 'object',
        properties: {
          'vouch-mode': { type: 'string', enum: ['cookie'], description: 'Cookie mode: the refresh token travels only in an HttpOnly cookie, never in a body (only from an origin in COOKIE_ORIGINS).' },
        },
      },
    }),
  }
  return { schema: documented, url }
}

/** Every error response refers to the one ErrorBody component instead of repeating it. */
function shareErrorBody (document: Record<string, unknown>): Record<string, unknown> {
  const paths = document.paths as Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: { title?: unknown } }> }> }>>
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses ?? {})) {
        for (const media of Object.values(response.content ?? {})) {
          if (media.schema?.title === ERROR_BODY_TITLE) media.schema = { $ref: ERROR_BODY_REF } as typeof media.schema
        }
      }
    }
  }
  return document
}

/**
 * POST /auth/refresh takes its token from the body in bearer mode and from the
 * cookie alone in cookie mode, where a body token is refused: the route's
 * schema sees the cookie's token either way (refresh-cookie.ts puts it there
 * before validation), so only the document says the body is optional.
 */
function refreshBodyOptional (document: Record<string, unknown>): Record<string, unknown> {
  const refresh = (document.paths as Record<string, Record<string, { requestBody?: Record<string, unknown> }>>)['/auth/refresh']?.post
  if (refresh?.requestBody !== undefined) {
    refresh.requestBody = {
      ...refresh.requestBody,
      required: false,
      description: 'Bearer mode: the refresh token. Cookie mode (`Vouch-Mode: cookie`): no body, or `{}`; the refresh cookie carries the token.',
    }
  }
  return document
}

export const apiDocs = fp<ApiDocsOptions>(async (app, { publicUrl, cookies }) => {
  const refreshCookie = refreshCookieOptions(cookies)
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'vouch',
        version: VERSION,
        description: 'Stateless JWT authentication with O(1) sign-out-everywhere. Every error answers `{statusCode, error, code, message}` ' +
          '(the ErrorBody schema) with a stable `code`; each operation lists its statuses and the codes each can carry. ' +
          'Any request may also be answered 408 `request_timeout` when it does not arrive in time.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: publicUrl }],
      tags: TAG_ORDER.map((name) => ({ name, description: TAGS.find((tag) => tag.name === name)!.description })),
      components: {
        schemas: { [ERROR_BODY_TITLE]: JSON.parse(JSON.stringify(ErrorBody)) },
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token (RFC 9068 `at+jwt`) from sign-in, registration or refresh.' },
          clientBasic: {
            type: 'http', scheme: 'basic',
            description: 'A resource client\'s id and secret (RESOURCE_CLIENTS, or `vouch clients add --kind resource`). ' +
              'Introspection and revocation also take them as `client_id` and `client_secret` in the body (RFC 6749 §2.3.1).',
          },
          adminBasic: { type: 'http', scheme: 'basic', description: 'An admin client\'s id and secret (ADMIN_CLIENTS, or `vouch clients add --kind admin`). A resource client\'s credentials are 403 `forbidden`.' },
          refreshCookie: {
            type: 'apiKey', in: 'cookie', name: refreshCookie.name,
            description: 'Cookie mode (`Vouch-Mode: cookie` from an origin in COOKIE_ORIGINS): the refresh token, HttpOnly, SameSite=Strict, ' +
              `sent to ${refreshCookie.paths.join(' and ')} only. Logout reads it when the request has no access token or an expired one.`,
          },
        },
      },
    },
    transform,
    transformObject: (document) => 'openapiObject' in document
      ? refreshBodyOptional(shareErrorBody(document.openapiObject as Record<string, unknown>))
      : document.swaggerObject,
  })

  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger())

  // Encapsulated: the CSP hook applies to the docs page's routes only.
  await app.register(async (docs) => {
    docs.addHook('onSend', async (_request, reply) => {
      if (reply.statusCode < 400) reply.header('content-security-policy', DOCS_CSP)
    })
    await docs.register(swaggerUi, {
      routePrefix: DOCS_PATH,
      theme: { title: 'vouch API' },
      // No top bar (it would load any URL typed into it); the document is the page's own /docs/json.
      uiConfig: { layout: 'BaseLayout', deepLinking: true, defaultModelsExpandDepth: 0 },
      validatorUrl: false,
    })
  })
}, { name: 'vouch-api-docs', fastify: '5.x' })
