/**
 * What resource servers use, authenticated by their client credentials:
 * token introspection (RFC 7662) and the revocation feed (server-sent
 * events) that @vouch/verifier (packages/verifier) follows.
 *
 * Feed streams cost a connection each, and little else: the feed reads the
 * database once per revocation and once per heartbeat for all of them
 * (src/domain/revocation-feed.ts). They are capped per process
 * (REVOCATION_FEED_MAX_STREAMS; past it, 503 with Retry-After), and a reader
 * that stops reading, or falls 1 MiB behind, is cut (src/http/stream-backpressure.ts,
 * through src/http/event-stream.ts), so no stream buffers without bound.
 */
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FEED_CURSOR_PARAM, FEED_CURSOR_PATTERN, FEED_EVENTS, FEED_PATH, formatFeedEvent, formatHeartbeat, type RevocationBatch } from '@vouch/verifier/protocol'
import type { Services } from '../services.js'
import { eventStreams, type EventStream } from '../event-stream.js'
import { errorResponses, EventStreamResponse, Failures } from '../schemas.js'

export interface ResourceServerOptions {
  services: Services
}

/** Bytes a feed stream may have queued for a slow reader before its progress is checked (src/http/stream-backpressure.ts). */
const MAX_BUFFERED_BYTES = 1024 * 1024

const IntrospectionRequest = Type.Object({
  token: Type.String({ maxLength: 4096 }),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
  client_secret: Type.Optional(Type.String({ maxLength: 1024 })),
})

const IntrospectionResponse = Type.Object({
  active: Type.Boolean(),
  token_type: Type.Optional(Type.String()),
  sub: Type.Optional(Type.String()),
  sid: Type.Optional(Type.String()),
  ver: Type.Optional(Type.Integer()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.String()),
  iat: Type.Optional(Type.Integer()),
  exp: Type.Optional(Type.Integer()),
  jti: Type.Optional(Type.String()),
  /** RFC 7662 / RFC 9068: the client the token was issued to (JWT_CLIENT_ID). */
  client_id: Type.Optional(Type.String()),
})

export const resourceServerRoutes: FastifyPluginAsyncTypebox<ResourceServerOptions> = async (app, { services }) => {
  const { sessions, revocationFeed } = services
  // RFC 7662 requests are form-encoded; only these routes accept forms.
  await app.register(formbody, { bodyLimit: 16 * 1024 })

  app.post('/auth/introspect', {
    config: { client: true },
    schema: {
      summary: 'Token introspection (RFC 7662), form-encoded or JSON',
      body: IntrospectionRequest,
      response: { 200: IntrospectionResponse, ...errorResponses(Failures.client, Failures.body) },
    },
  }, async (request) => {
    const claims = await sessions.inspect(request.body.token)
    if (claims === null) return { active: false }
    return { active: true, token_type: 'Bearer', ...claims, iss: services.issuer, aud: services.audience }
  })

  const openStream = eventStreams(app)

  app.get(FEED_PATH, {
    config: { client: true },
    schema: {
      querystring: Type.Object({ [FEED_CURSOR_PARAM]: Type.Optional(Type.String({ pattern: FEED_CURSOR_PATTERN.source })) }),
      summary: 'The revocation feed (server-sent events) that @vouch/verifier follows; 503 past REVOCATION_FEED_MAX_STREAMS',
      response: { 200: EventStreamResponse, ...errorResponses(Failures.client, Failures.input) },
    },
  }, async (request, reply) => {
    const lastEventId = request.headers['last-event-id']
    const since = Number(request.query[FEED_CURSOR_PARAM] ?? (typeof lastEventId === 'string' && FEED_CURSOR_PATTERN.test(lastEventId) ? lastEventId : 0))
    // Follow the feed before reading the backlog, so nothing falls between the two; hold what arrives meanwhile.
    // Past the cap this throws service_unavailable, before the stream has cost anything.
    let stream: EventStream | undefined
    let pending: RevocationBatch[] | undefined = []
    const unsubscribe = revocationFeed.subscribe({
      revocations: (batch) => { if (pending) pending.push(batch); else stream?.write(formatFeedEvent(FEED_EVENTS.revocations, batch)) },
      heartbeat: () => { if (!pending) stream?.write(formatHeartbeat(Date.now())) },
      failed: (err) => {
        request.log.warn({ err }, 'revocation feed: closing the stream')
        reply.raw.end()
      },
    })
    let backlog: RevocationBatch
    try {
      // Read before answering, so that a database failure is a proper 503.
      backlog = await revocationFeed.changesSince(since)
    } catch (err) {
      unsubscribe()
      throw err
    }

    // A consumer that stopped reading, or fell too far behind, is cut off rather than buffered for: it reconnects with its cursor.
    stream = openStream(reply, {
      maxWaitingBytes: MAX_BUFFERED_BYTES,
      stallMs: revocationFeed.heartbeatMs,
      onCut: (waiting, reason) => request.log.info({ waiting, reason }, 'revocation feed: cutting a stream that does not keep up'),
      onClose: () => {
        unsubscribe()
        request.log.debug({ streams: revocationFeed.subscribers }, 'revocation feed: stream closed')
      },
    })
    request.log.debug({ streams: revocationFeed.subscribers, max: revocationFeed.maxStreams }, 'revocation feed: stream opened')
    // The backlog rides on `ready`, so a verifier's state is complete the moment it is ready.
    stream.write(formatFeedEvent(FEED_EVENTS.ready, { maxTokenAge: revocationFeed.maxTokenAge, heartbeatMs: revocationFeed.heartbeatMs, ...backlog }))
    const held = pending
    pending = undefined
    for (const batch of held) stream.write(formatFeedEvent(FEED_EVENTS.revocations, batch))
  })
}
