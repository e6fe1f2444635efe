/**
 * Never-ending `text/event-stream` responses (the revocation feed, the
 * session watch), opened the one way that keeps them safe:
 *
 * - hijacked from Fastify, so the headers set on the reply so far (security
 *   headers, CORS) are written with the stream's own or not at all;
 * - written through a bounded writer (src/http/stream-backpressure.ts): a
 *   reader that stops reading, or falls too far behind, is cut instead of
 *   buffered for;
 * - ended before the server stops listening, which would otherwise wait for
 *   responses that never end;
 * - `onClose` runs exactly once when the connection goes, even if it went
 *   before the stream was opened (while the request was authenticated or a
 *   backlog read), so a subscription is never left behind.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { boundedWriter, type BackpressureLimits } from './stream-backpressure.js'

export interface EventStreamOptions extends BackpressureLimits {
  /** The connection has closed (the reader left, the stream was cut or ended). */
  onClose: () => void
}

export interface EventStream {
  /** Writes SSE text; does nothing once the stream is closed or cut. */
  write (text: string): void
  /** Ends the response after what has been written. */
  end (): void
}

export type OpenEventStream = (reply: FastifyReply, options: EventStreamOptions) => EventStream

/** The opener for one plugin's streams, all ended on the app's preClose. */
export function eventStreams (app: FastifyInstance): OpenEventStream {
  const open = new Set<ServerResponse>()
  app.addHook('preClose', async () => { for (const stream of open) stream.end() })

  return (reply, { onClose, ...limits }) => {
    const stream = reply.raw
    reply.hijack()
    stream.writeHead(200, {
      ...reply.getHeaders() as OutgoingHttpHeaders,
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    open.add(stream)
    let closed = false
    const close = () => {
      if (closed) return
      closed = true
      open.delete(stream)
      onClose()
    }
    stream.on('close', close)
    if (stream.destroyed) close()
    return { write: boundedWriter(stream, limits), end: () => stream.end() }
  }
}

/** One server-sent event: its name and one `data` line of JSON. */
export function formatEvent (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}
