/**
 * @vouch/verifier: checks vouch access tokens inside a resource server, with
 * no call to vouch per request, and keeps vouch's promise that a bumped
 * version or a revoked session kills a token at once. Depends on jose only;
 * runs on Node ≥ 20 and on web runtimes (no Node-only globals).
 *
 * Subpaths: `@vouch/verifier/fastify` (Fastify plugin),
 * `@vouch/verifier/express` (Express/Connect middleware),
 * `@vouch/verifier/protocol` (the wire contracts, also exported here).
 *
 * @example
 * import { createVerifier, VerifierError } from '@vouch/verifier'
 *
 * const verifier = createVerifier({ vouchUrl: 'https://auth.example.com', issuer: 'https://auth.example.com',
 *   audience: 'vouch', clientId: 'orders', clientSecret: process.env.VOUCH_CLIENT_SECRET! })
 * export default {
 *   async fetch (request: Request) {
 *     try {
 *       const user = await verifier.verifyRequest(request)
 *       return Response.json({ owner: user.sub })
 *     } catch (err) {
 *       if (err instanceof VerifierError) return err.toResponse() // 401 with a Bearer challenge, or 503 with Retry-After
 *       throw err
 *     }
 *   },
 * }
 *
 * @module
 */
export { createVerifier, type Verifier, type VerifiedToken } from './verifier.js'
export { VerifierError, type VerifierErrorBody, type VerifierErrorCode, type VerifierErrorOptions } from './errors.js'
export type { Clock, VerifierOptions } from './options.js'
export type { FeedStatus } from './feed.js'
export { createEventStreamParser, type EventStreamHandlers, type EventStreamParser, type ServerSentEvent } from './sse.js'
export * from './protocol.js'
