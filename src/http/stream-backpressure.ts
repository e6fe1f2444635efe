/**
 * What a never-ending response (the revocation feed) may queue for a reader
 * that does not keep up. Two rules, so that a reader that stops reading costs
 * a bounded amount of memory and a slow one that keeps reading is served:
 *
 * - a stream with more than `maxWaitingBytes` waiting that has taken nothing
 *   for `stallMs` (the feed writes at least once a heartbeat, so this is
 *   checked that often) is cut: its reader has stopped;
 * - whatever its progress, a stream is cut once more than `maxWaitingBytes`
 *   beyond its largest single event waits: one large event (a backlog after
 *   a mass revocation) may take its time, but a reader slower than the
 *   events themselves cannot make the queue grow for ever.
 *
 * Progress has to be seen to be judged, and Node counts everything handed to
 * a socket as queued until all of it has gone (it sends what waits in one
 * write). So text waits here, in 64 KiB pieces, and a piece goes to the
 * stream only once the stream has drained the previous ones: what waits is
 * this queue plus at most about a piece in the stream, and each piece handed
 * on is progress. The kernel's socket buffers (a few MiB on Linux) come on
 * top and are not counted. A cut stream's reader reconnects with its cursor
 * and loses nothing.
 */

/** Characters per piece handed to the stream. */
const PIECE = 64 * 1024

/** The part of a ServerResponse (or any Writable) this needs. */
export interface QueuedStream {
  readonly writableLength: number
  readonly destroyed: boolean
  /** False when the caller should wait for 'drain'. */
  write (text: string): boolean
  once (event: 'drain', listener: () => void): unknown
  destroy (): void
}

export interface BackpressureLimits {
  /** Bytes that may wait for a reader before its progress is checked. */
  maxWaitingBytes: number
  /** Milliseconds without progress, with more than maxWaitingBytes waiting, after which the stream is cut. */
  stallMs: number
  /** Milliseconds; Date.now by default. */
  now?: () => number
  /** Told once, before a stream is cut, of the bytes waiting and why. */
  onCut?: (waitingBytes: number, reason: 'stalled' | 'too_far_behind') => void
}

/** Returns the stream's write function under the two rules above; it does nothing once the stream is cut or destroyed. */
export function boundedWriter (stream: QueuedStream, limits: BackpressureLimits): (text: string) => void {
  const { maxWaitingBytes, stallMs, now = Date.now, onCut = () => {} } = limits
  const pieces: string[] = []
  /** Bytes in `pieces`. */
  let queued = 0
  /** Bytes handed to the stream so far. */
  let handed = 0
  let handedAtLastProgress = 0
  let lastProgress = now()
  let largest = 0
  let awaitingDrain = false

  const pump = () => {
    awaitingDrain = false
    while (pieces.length > 0 && !stream.destroyed) {
      const piece = pieces.shift()!
      const bytes = Buffer.byteLength(piece)
      queued -= bytes
      handed += bytes
      if (!stream.write(piece)) {
        awaitingDrain = true
        stream.once('drain', pump)
        return
      }
    }
  }

  return (text) => {
    if (stream.destroyed) return
    const waiting = queued + stream.writableLength
    const at = now()
    if (handed > handedAtLastProgress) {
      handedAtLastProgress = handed
      lastProgress = at
    }
    const reason = waiting > maxWaitingBytes + largest
      ? 'too_far_behind'
      : waiting > maxWaitingBytes && at - lastProgress >= stallMs ? 'stalled' : undefined
    if (reason !== undefined) {
      onCut(waiting, reason)
      pieces.length = 0
      queued = 0
      stream.destroy()
      return
    }
    const bytes = Buffer.byteLength(text)
    largest = Math.max(largest, bytes)
    queued += bytes
    for (let start = 0; start < text.length;) {
      let end = Math.min(start + PIECE, text.length)
      // Never between the two halves of a surrogate pair: each piece is encoded on its own.
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end += 1
      pieces.push(start === 0 && end === text.length ? text : text.slice(start, end))
      start = end
    }
    if (!awaitingDrain) pump()
  }
}

function isHighSurrogate (code: number): boolean {
  return code >= 0xD800 && code <= 0xDBFF
}
