/**
 * An answer sent before the request's body has arrived (a 413 for a body
 * over the limit, declared or streamed) must still reach the client. Node
 * closes such a connection as soon as the answer is written; the client's
 * remaining bytes then meet a closed socket, the kernel resets the
 * connection, and a client that writes its whole body before reading (as
 * many do) gets EPIPE or ECONNRESET and never reads the answer.
 *
 * Robust servers close these connections with a "lingering close" (Apache's
 * lingering_close, nginx's lingering_close): send the answer with
 * `Connection: close`, shut down the sending side, keep reading and
 * discarding what the client still sends, and close once it is done.
 * vouch does the same, within a bound: at most LINGER_MAX_BYTES more body
 * (a declared Content-Length beyond it is not waited for) and at most
 * LINGER_MAX_MS; past either, the connection is closed as before. The
 * server's request timeout still applies, and the connection still counts
 * against the connection cap while it lingers.
 */
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'

/**
 * Most body bytes read and discarded after the answer. 2 MB uploads, the
 * usual mistake (an image, a log), drain with room to spare; a client
 * streaming more than this is cut off without its answer, as before.
 */
export const LINGER_MAX_BYTES = 8 * 1024 * 1024

/** Longest a connection lingers; shorter than the request timeout's default. */
export const LINGER_MAX_MS = 5_000

/**
 * Lingers before closing any connection whose request failed before its
 * body was read in full. Other answers are untouched: a connection kept
 * alive has its body drained by Node (within the request timeout), and a
 * complete request leaves nothing to drain.
 */
export function lingerOnEarlyErrors (app: FastifyInstance): void {
  app.addHook('onError', async (request) => {
    if (!request.raw.complete) lingerBeforeClosing(request.raw)
  })
}

/**
 * Replaces how this connection is closed after its response (Node's http
 * server calls `socket.destroySoon()` once the last response is written)
 * with a bounded lingering close, should the body still be arriving then.
 */
export function lingerBeforeClosing (request: IncomingMessage): void {
  const socket = request.socket
  socket.destroySoon = function destroyAfterLingering () {
    const declared = Number(request.headers['content-length'])
    if (request.complete || socket.destroyed || declared > LINGER_MAX_BYTES) {
      Socket.prototype.destroySoon.call(socket)
      return
    }
    const close = () => socket.destroy()
    const timer = setTimeout(close, LINGER_MAX_MS).unref()
    socket.once('close', () => clearTimeout(timer))
    // Node discards the rest of the body as the parser reads it. A body Node
    // dumps unread emits no data, but has a declared length, bounded above;
    // a chunked one was being read, and is counted here. Close once it ends.
    let drained = 0
    request.on('data', (chunk: Buffer) => {
      drained += chunk.length
      if (drained > LINGER_MAX_BYTES) close()
    })
    request.once('end', close)
    // The answer, then a FIN: the client reads its response while its own
    // writes still succeed (the server socket is half-open for reading).
    socket.end()
  }
}
