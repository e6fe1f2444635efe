/**
 * What resource servers use, authenticated by their client credentials:
 * token introspection (RFC 7662) and the revocation feed (server-sent
 * events) that src/verifier/ follows.
 */
import formbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ServerResponse } from 'node:http'
import type { Services } from '../services.js'
import { ErrorResponses } from '../schemas.js'

export interface ResourceServerOptions {
  services: Services
  /** Milliseconds between heartbeats (and database polls, the safety net) on the feed. */
  heartbeatMs: number
}

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
})

export const resourceServerRoutes: FastifyPluginAsyncTypebox<ResourceServerOptions> = async (app, { services, heartbeatMs }) => {
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

  app.get('/auth/revocations', {
    config: { client: true },
    schema: {
      querystring: Type.Object({ since: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
      response: ErrorResponses,
    },
  }, async (request, reply) => {
    const lastEventId = request.headers['last-event-id']
    let cursor = Number(request.query.since ?? (typeof lastEventId === 'string' && /^\d{1,15}$/.test(lastEventId) ? lastEventId : 0))
    // Read the backlog before answering, so that a database failure is a proper 503.
    const backlog = await revocationFeed.changesSince(cursor)

    reply.hijack()
    const stream = reply.raw
    stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    streams.add(stream)
    const send = (event: string, data: unknown, id?: number) =>
      stream.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

    let busy = false
    let again = false
    let closed = false
    const deliver = (batch: Awaited<ReturnType<typeof revocationFeed.changesSince>>) => {
      if (batch.users.length > 0 || batch.sessions.length > 0) send('revocations', batch, batch.cursor)
      cursor = batch.cursor
    }
    const flush = async () => {
      if (busy) { again = true; return }
      busy = true
      try {
        do {
          again = false
          deliver(await revocationFeed.changesSince(cursor))
        } while (again && !closed)
      } catch (err) {
        // The verifier notices the end of the stream and reconnects with its cursor.
        request.log.warn({ err }, 'revocation feed: cannot read changes; closing the stream')
        stream.end()
      } finally {
        busy = false
      }
    }

    // The backlog rides on `ready`, so a verifier's state is complete the moment it is ready.
    send('ready', { maxTokenAge: revocationFeed.maxTokenAge, heartbeatMs, ...backlog }, backlog.cursor)
    cursor = backlog.cursor
    const unwatch = revocationFeed.watch(() => { void flush() })
    const timer = setInterval(() => {
      stream.write(`: heartbeat ${Date.now()}\n\n`)
      void flush()
    }, heartbeatMs)
    timer.unref()
    stream.on('close', () => {
      closed = true
      streams.delete(stream)
      unwatch()
      clearInterval(timer)
    })
  })
}
