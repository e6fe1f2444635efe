/**
 * Authorization-server metadata (RFC 8414), so that standard libraries find
 * vouch's keys and endpoints from its issuer alone. One document, served at
 * `/.well-known/oauth-authorization-server` and, for libraries that only
 * know OpenID Connect discovery, at `/.well-known/openid-configuration`.
 *
 * It claims only what vouch does. vouch issues tokens through its own JSON
 * API (`/auth/login`, `/auth/refresh`), not an OAuth token or authorization
 * endpoint: so no `token_endpoint` and no `authorization_endpoint`, and
 * `grant_types_supported` and `response_types_supported` are empty (left
 * out, RFC 8414 would default them to the authorization-code and implicit
 * grants). Nor is vouch an OpenID provider: no ID tokens, no userinfo.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import type { SigningAlgorithm } from '../../config.js'
import type { Services } from '../services.js'
import { errorResponses } from '../schemas.js'

/** RFC 6749 §2.3.1 client authentication, accepted by introspection and revocation; revocation also takes public clients (`none`). */
const CLIENT_SECRET_METHODS = ['client_secret_basic', 'client_secret_post']

export const AuthorizationServerMetadata = Type.Object({
  issuer: Type.String(),
  jwks_uri: Type.String(),
  introspection_endpoint: Type.String(),
  introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint: Type.String(),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  grant_types_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String()),
  /** Extension: the algorithm of the access tokens' signatures (RFC 8414 has no member for it). */
  vouch_access_token_signing_alg_values_supported: Type.Array(Type.String()),
  /** Extension: the revocation feed (server-sent events) that vouch's verifier follows. */
  vouch_revocation_feed_endpoint: Type.String(),
})
export type AuthorizationServerMetadata = Static<typeof AuthorizationServerMetadata>

export interface MetadataSettings {
  /** The tokens' `iss`. */
  readonly issuer: string
  /** Where clients reach vouch, without a trailing slash (config.publicUrl). */
  readonly publicUrl: string
  readonly algorithm: SigningAlgorithm
}

export function authorizationServerMetadata ({ issuer, publicUrl, algorithm }: MetadataSettings): AuthorizationServerMetadata {
  const at = (path: string) => `${publicUrl}${path}`
  return {
    issuer,
    jwks_uri: at('/.well-known/jwks.json'),
    introspection_endpoint: at('/auth/introspect'),
    introspection_endpoint_auth_methods_supported: CLIENT_SECRET_METHODS,
    revocation_endpoint: at('/auth/revoke'),
    revocation_endpoint_auth_methods_supported: [...CLIENT_SECRET_METHODS, 'none'],
    grant_types_supported: [],
    response_types_supported: [],
    vouch_access_token_signing_alg_values_supported: [algorithm],
    vouch_revocation_feed_endpoint: at('/auth/revocations'),
  }
}

export const METADATA_PATHS = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'] as const

export const metadataRoutes: FastifyPluginAsyncTypebox<{ services: Services, publicUrl: string }> = async (app, { services, publicUrl }) => {
  const document = authorizationServerMetadata({ issuer: services.issuer, publicUrl, algorithm: services.keys.algorithm })
  for (const url of METADATA_PATHS) {
    app.get(url, {
      schema: { summary: 'Authorization server metadata (RFC 8414)', response: { 200: AuthorizationServerMetadata, ...errorResponses() } },
    }, async (_request, reply) => {
      // Changes only with the configuration; cached like the JWKS it points to.
      reply.header('cache-control', 'public, max-age=300')
      return document
    })
  }
}
