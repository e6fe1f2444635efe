/**
 * What resource servers use, authenticated by their client credentials:
 * token introspection (RFC 7662) and the revocation feed (server-sent
 * events) that src/verifier/ follows.
 */
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ServerResponse } from 'node:http'
import { FEED_CURSOR_PARAM, FEED_CURSOR_PATTERN, FEED_EVENTS, FEED_PATH, formatFeedEvent, formatHeartbeat, type RevocationBatch } from '@vouch/verifier/protocol'
import type { Services } from '../services.js'
import { ErrorResponses } from '../schemas.js'

export interface ResourceServerOptions {
  services: Services
}

/** Bytes a feed stream may have queued for a slow reader before it is cut off. */
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
    schema: { body: IntrospectionRequest, response: { 200: IntrospectionResponse, ...ErrorResponses } },
  }, async (request) => {
    const claims = await sessions.inspect(request.body.token)
    if (claims === null) return { active: false }
    return { active: true, token_type: 'Bearer', ...claims, iss: services.issuer, aud: services.audience }
  })

  const streams = new Set<ServerResponse>()
  // Before the server stops listening: it would otherwise wait for these never-ending responses.
  app.addHook('preClose', async () => { for (const stream of streams) stream.end() })

  app.get(FEED_PATH, {
    config: { client: true },
    schema: {
      querystring: Type.Object({ [FEED_CURSOR_PARAM]: Type.Optional(Type.String({ pattern: FEED_CURSOR_PATTERN.source })) }),
      response: ErrorResponses,
    },
  }, async (request, reply) => {
    const lastEventId = request.headers['last-event-id']
    const since = Number(request.query[FEED_CURSOR_PARAM] ?? (typeof lastEventId === 'string' && FEED_CURSOR_PATTERN.test(lastEventId) ? lastEventId : 0))
    const stream = reply.raw
    const send = (event: string, data: RevocationBatch | object, id: number) => write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    const write = (text: string) => {
      // A consumer that stopped reading is cut off rather than buffered for: it reconnects with its cursor.
      if (stream.writableLength > MAX_BUFFERED_BYTES) stream.destroy()
      else stream.write(text)
    }

    // Follow the feed before reading the backlog, so nothing falls between the two; hold what arrives meanwhile.
    let pending: RevocationBatch[] | undefined = []
    const unsubscribe = revocationFeed.subscribe({
      revocations: (batch) => { if (pending) pending.push(batch); else write(formatFeedEvent(FEED_EVENTS.revocations, batch)) },
      heartbeat: () => { if (!pending) write(formatHeartbeat(Date.now())) },
      failed: (err) => {
        request.log.warn({ err }, 'revocation feed: closing the stream')
        stream.end()
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

    reply.hijack()
    stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    streams.add(stream)
    stream.on('close', () => {
      streams.delete(stream)
      unsubscribe()
    })
    // The backlog rides on `ready`, so a verifier's state is complete the moment it is ready.
    write(formatFeedEvent(FEED_EVENTS.ready, { maxTokenAge: revocationFeed.maxTokenAge, heartbeatMs: revocationFeed.heartbeatMs, ...backlog }))
    const held = pending
    pending = undefined
    for (const batch of held) write(formatFeedEvent(FEED_EVENTS.revocations, batch))
  })
}
