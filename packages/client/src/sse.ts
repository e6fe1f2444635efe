/**
 * A parser for `text/event-stream` (server-sent events) with hard bounds, for
 * the session-watch stream read through fetch (EventSource cannot send an
 * Authorization header). It follows the WHATWG rules ("Parsing an event
 * stream"): UTF-8, a leading BOM dropped, lines ending in CRLF, LF or CR
 * (also when a CRLF is split between chunks), `:` comments, `event`/`data`/
 * `id`/`retry` fields, one space after the colon dropped, a blank line
 * dispatching, an event without data not dispatched, an unfinished event at
 * the end discarded.
 *
 * The bounds are what a client owes itself when reading from the network: a
 * line longer than `maxLineLength` characters, or an event whose data grows
 * past `maxEventLength`, is refused with an SseLimitError as soon as the
 * bound is crossed (the pieces of an unfinished line are counted as they
 * arrive, so memory stays bounded however the stream is split). The caller
 * drops the connection and reconnects.
 *
 * @module
 */

/**
 * One dispatched event.
 *
 * @example
 * const event: SseEvent = { type: 'revoked', data: '{"sessionId":"6f1c…"}', id: '' }
 */
export interface SseEvent {
  /** The `event` field, or `message`. */
  type: string
  /** The `data` lines joined with LF. */
  data: string
  /** The last event id seen so far. */
  id: string
}

/**
 * What the parser reports.
 *
 * @example
 * const handlers: SseHandlers = { onEvent: (e) => console.log(e.type), onComment: () => { lastHeard = Date.now() } }
 */
export interface SseHandlers {
  onEvent (event: SseEvent): void
  /** A comment line, without its colon (vouch's heartbeat is `: hb`). */
  onComment? (text: string): void
  /** A valid `retry` field, in milliseconds. */
  onRetry? (ms: number): void
}

/**
 * Bounds of one stream.
 *
 * @example
 * const limits: SseLimits = { maxLineLength: 4096, maxEventLength: 16_384 }
 */
export interface SseLimits {
  /** Most characters in one line, its end excluded; default 8192. */
  maxLineLength?: number
  /** Most characters of data in one event; default 65536. */
  maxEventLength?: number
}

/**
 * A bound was crossed: the stream is not what it claims to be, or is hostile.
 *
 * @example
 * try { parser.push(chunk) } catch (err) { if (err instanceof SseLimitError) controller.abort() }
 */
export class SseLimitError extends Error {
  override name = 'SseLimitError'
}

/**
 * A parser for one stream: push chunks in order, then `end`.
 *
 * @example
 * const parser = createSseParser({ onEvent: (e) => handle(e) })
 * parser.push(new TextEncoder().encode('event: ready\ndata: {}\n\n'))
 * parser.end()
 */
export interface SseParser {
  /** Parses the next chunk (bytes or already-decoded text). Throws SseLimitError past a bound. */
  push (chunk: Uint8Array | string): void
  /** The stream ended: an unfinished line or event is discarded. */
  end (): void
}

/**
 * Creates a parser.
 *
 * @example
 * const parser = createSseParser({
 *   onEvent: ({ type, data }) => { if (type === 'revoked') signOut(JSON.parse(data)) },
 *   onComment: () => { lastHeard = Date.now() },
 * }, { maxLineLength: 4096 })
 * const reader = response.body!.getReader()
 * for (let r = await reader.read(); !r.done; r = await reader.read()) parser.push(r.value)
 * parser.end()
 */
export function createSseParser (handlers: SseHandlers, limits: SseLimits = {}): SseParser {
  const maxLine = limits.maxLineLength ?? 8192
  const maxEvent = limits.maxEventLength ?? 65_536
  const decoder = new TextDecoder('utf-8')
  const lineEnd = /\r\n|\r|\n/g
  let partial: string[] = []
  let partialLength = 0
  let skipLF = false
  let type = ''
  let data: string[] = []
  let dataLength = 0
  let hasData = false
  let id = ''
  let pendingId = ''

  const reset = () => {
    type = ''
    data = []
    dataLength = 0
    hasData = false
  }

  const dispatch = () => {
    id = pendingId
    if (!hasData) {
      type = ''
      return
    }
    const event = { type: type === '' ? 'message' : type, data: data.join('\n'), id }
    reset()
    handlers.onEvent(event)
  }

  const line = (text: string) => {
    if (text === '') return dispatch()
    const colon = text.indexOf(':')
    if (colon === 0) {
      handlers.onComment?.(text.slice(1))
      return
    }
    const field = colon < 0 ? text : text.slice(0, colon)
    let value = colon < 0 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        type = value
        break
      case 'data':
        dataLength += value.length + (hasData ? 1 : 0)
        if (dataLength > maxEvent) throw new SseLimitError(`an event's data is longer than ${maxEvent} characters`)
        data.push(value)
        hasData = true
        break
      case 'id':
        if (!value.includes('\0')) pendingId = value
        break
      case 'retry':
        if (/^[0-9]+$/.test(value)) handlers.onRetry?.(Number.parseInt(value, 10))
        break
      default:
        // Unknown fields are ignored.
    }
  }

  const keep = (piece: string) => {
    partialLength += piece.length
    if (partialLength > maxLine) throw new SseLimitError(`a line is longer than ${maxLine} characters`)
    partial.push(piece)
  }

  const text = (chunk: string) => {
    if (skipLF && chunk !== '') {
      skipLF = false
      if (chunk.startsWith('\n')) chunk = chunk.slice(1)
    }
    let start = 0
    lineEnd.lastIndex = 0
    for (let match = lineEnd.exec(chunk); match !== null; match = lineEnd.exec(chunk)) {
      const piece = chunk.slice(start, match.index)
      start = match.index + match[0].length
      if (match[0] === '\r' && start === chunk.length) skipLF = true
      keep(piece)
      const whole = partial.length === 1 ? partial[0]! : partial.join('')
      partial = []
      partialLength = 0
      line(whole)
    }
    if (start < chunk.length) keep(chunk.slice(start))
  }

  return {
    push (chunk) {
      text(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }))
    },
    end () {
      text(decoder.decode())
      partial = []
      partialLength = 0
      reset()
    },
  }
}
