/**
 * GET /auth/session/watch: a web page's push channel for the end of its
 * session (server-sent events), so it learns within a second that it was
 * signed out elsewhere without polling. Bearer-authenticated with the
 * page's access token; a missing, expired or revoked token is answered with
 * its catalogue error, never a stream.
 *
 * Events: `ready` at once; `revoked` with `{sessionId}` (this session was
 * revoked) or `{minVersion}` (the user's token version moved past the
 * token's `ver`: logout-all, a password change or reset, revoke-others,
 * account deletion), then the end; `expired` at the token's `exp`, then the
 * end; a `: hb` comment between them to keep the connection open. A stream
 * that ends without one of those (the feed lost the database, the server is
 * stopping) tells the page nothing: it reconnects.
 *
 * What is watched, and the guarantees, are src/domain/session-watch.ts's;
 * opening, bounding and closing the stream src/http/event-stream.ts's.
 * Streams are capped per process (SESSION_WATCH_MAX_STREAMS, apart from the
 * revocation feed's; past it 503 with Retry-After) and per user (429).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { decodeJwt } from 'jose'
import { bearerToken } from '@vouch/verifier/protocol'
import { SESSION_WATCH_PATH, WATCH_EVENTS } from '@vouch/client/protocol'
import type { WatchEnd } from '../../domain/session-watch.js'
import { eventStreams, formatEvent, type EventStream } from '../event-stream.js'
import { errorResponses, EventStreamResponse, Failures } from '../schemas.js'
import type { Services } from '../services.js'

// The path and event names are a wire contract with the client SDK: defined there, once.
export { SESSION_WATCH_PATH, WATCH_EVENTS }

/** A comment: EventSource and the SDK's parser skip it. */
const HEARTBEAT = ': hb\n\n'
/** Bytes a watch stream may have queued (its events are a few dozen bytes) before its reader's progress is checked. */
const MAX_BUFFERED_BYTES = 16 * 1024
/** A reader with more than that waiting that has taken nothing for this long has stopped reading. */
const STALL_MS = 30_000

/** The event that says why the watch ended, if it says anything. */
function endEvent (end: WatchEnd): string | undefined {
  if (end.reason === 'expired') return formatEvent(WATCH_EVENTS.expired, {})
  if (end.reason === 'revoked') return formatEvent(WATCH_EVENTS.revoked, 'sessionId' in end ? { sessionId: end.sessionId } : { minVersion: end.minVersion })
  return undefined
}

export const sessionWatchRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { sessionWatch } = services
  const openStream = eventStreams(app)

  app.get(SESSION_WATCH_PATH, {
    config: { auth: 'bearer' },
    schema: {
      summary: 'Server-sent events telling a page that its session ended; 429 past the per-user cap, 503 past SESSION_WATCH_MAX_STREAMS',
      response: { 200: EventStreamResponse, ...errorResponses(Failures.bearer) },
    },
  }, async (request, reply) => {
    // Authenticated already (config.auth): the token is present, verified and live; its exp is read back from it.
    const { exp } = decodeJwt(bearerToken(request.headers.authorization)!)
    let stream: EventStream | undefined
    // Past a cap this throws, before the stream has cost anything. It never calls back before it returns.
    const cancel = sessionWatch.watch({ ...request.principal, expiresAt: exp! }, {
      ended: (end) => {
        if (end.reason === 'failed') request.log.warn({ err: end.err }, 'session watch: the revocation feed failed; closing the stream')
        const event = endEvent(end)
        if (event !== undefined) stream?.write(event)
        stream?.end()
      },
      heartbeat: () => stream?.write(HEARTBEAT),
    })
    stream = openStream(reply, {
      maxWaitingBytes: MAX_BUFFERED_BYTES,
      stallMs: STALL_MS,
      onCut: (waiting, reason) => request.log.info({ waiting, reason }, 'session watch: cutting a stream that does not keep up'),
      onClose: cancel,
    })
    stream.write(formatEvent(WATCH_EVENTS.ready, {}))
  })
}
