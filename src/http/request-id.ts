/**
 * Request ids: one label that follows a request through a proxy, several
 * instances and every log line it causes.
 *
 * Invariants:
 * - An incoming `X-Request-Id` is kept only when it is 1–128 characters of
 *   `A-Z a-z 0-9 . _ ~ : / + = @ -` (UUIDs, ULIDs, hex, base64 and the ids
 *   of common proxies fit). Anything else (empty, longer, a comma from a
 *   repeated header, spaces, quotes, control characters, newlines) is
 *   dropped, never echoed or logged, and replaced: a malformed id is how a
 *   client would forge or split log lines.
 * - Otherwise the id is a random UUID (122 random bits), unique across
 *   instances and restarts, unlike Fastify's per-process `req-1` counter.
 * - Every answer carries the id back as `X-Request-Id`, and every log line
 *   of the request carries it as `reqId`.
 *
 * The incoming id is believed from any peer, not only TRUST_PROXY ones: it
 * is a label for correlating logs, never an identity. Nothing is authorized,
 * counted or cached by it, and the access log's line also names the peer.
 * A client that sends one only labels its own request (ids sent by clients
 * need not be unique). A proxy that must own the ids overwrites the header
 * (nginx: `proxy_set_header X-Request-Id $request_id`).
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'

/** The header read from requests and set on responses (Node's lower-case spelling). */
export const REQUEST_ID_HEADER = 'x-request-id'

/** The accepted incoming id: bounded, and no character that can break a log line or a header. */
export const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9._~:/+=@-]{1,128}$/

/** For Fastify's `genReqId`: the incoming id when well-formed, else a fresh random one. */
export function requestIdFor (request: IncomingMessage): string {
  const incoming = request.headers[REQUEST_ID_HEADER]
  return typeof incoming === 'string' && WELL_FORMED_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/**
 * Sets `X-Request-Id` at the start of every request's lifecycle, before any
 * other hook (rate limit, authentication) can answer, so that 404s, 413/415
 * and other early errors, 429s and answers sent from hooks all carry it (the
 * error handler keeps headers already set). Register it before any other
 * onRequest hook. Answers given before the lifecycle starts set it where
 * they are built (src/http/error-handler.ts: frameworkError, clientError).
 */
export function echoRequestId (app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id)
    done()
  })
}
