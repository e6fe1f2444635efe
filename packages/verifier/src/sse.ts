/**
 * A parser for `text/event-stream` (server-sent events), following the
 * WHATWG HTML standard's "Parsing an event stream" and "Interpreting an
 * event stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 *
 * - bytes are decoded as UTF-8 (invalid sequences become U+FFFD), and one
 *   byte order mark at the start of the stream is dropped;
 * - lines end with CRLF, LF or CR, also when a CRLF is split between two
 *   chunks;
 * - a line starting with `:` is a comment; a line with a colon is a field
 *   and its value (one space after the colon is dropped, no more); a line
 *   without a colon is a field with an empty value;
 * - `event` sets the type, `data` lines are joined with LF, `id` sets the
 *   last event id unless it contains U+0000, `retry` sets the reconnection
 *   time if it is made of ASCII digits only; other fields are ignored;
 * - a blank line dispatches the event (type `message` when none was given);
 *   an event without data is not dispatched, but its `id` still counts;
 * - an event that the stream ends in the middle of is discarded.
 *
 * Nothing here is Node-specific: it runs wherever TextDecoder does.
 *
 * @module
 */

/**
 * One dispatched event.
 *
 * @example
 * const event: ServerSentEvent = { type: 'ready', data: '{"cursor":1}', lastEventId: '1' }
 */
export interface ServerSentEvent {
  /** The `event` field, or `message` when the event had none. */
  readonly type: string
  /** The `data` lines, joined with LF. */
  readonly data: string
  /** The last `id` seen on the stream so far (ids persist from one event to the next). */
  readonly lastEventId: string
}

/**
 * What the parser reports, as it reads.
 *
 * @example
 * const handlers: EventStreamHandlers = { onEvent: (event) => console.log(event.type, event.data) }
 */
export interface EventStreamHandlers {
  /** A complete event (its blank line was read). */
  onEvent (event: ServerSentEvent): void
  /** A comment line, without its leading colon (vouch's heartbeats are comments). */
  onComment? (comment: string): void
  /** A valid `retry` field: the reconnection time the server asks for, in milliseconds. */
  onRetry? (ms: number): void
}

/**
 * An event-stream parser: push the response body's chunks in order, then
 * call `end` when the body ends.
 *
 * @example
 * const parser = createEventStreamParser({ onEvent })
 * for await (const chunk of response.body) parser.push(chunk)
 * parser.end()
 */
export interface EventStreamParser {
  /** Parses the next chunk of the body's bytes. Handlers are called synchronously, in order. */
  push (chunk: Uint8Array): void
  /** The stream has ended: an event without its final blank line is discarded. */
  end (): void
  /** The last event id set by an `id` field ('' until one is). */
  readonly lastEventId: string
  /** The reconnection time set by the last valid `retry` field, if any. */
  readonly retry: number | undefined
}

const DIGITS = /^[0-9]+$/

/**
 * Creates a parser for one event stream (one connection: make a new one for
 * each, since a parser keeps the stream's decoder and last event id).
 *
 * @example
 * const parser = createEventStreamParser({
 *   onEvent: (event) => { if (event.type === 'revocations') apply(JSON.parse(event.data)) },
 *   onComment: () => { lastHeard = Date.now() },
 *   onRetry: (ms) => { reconnectAfter = ms },
 * })
 * const reader = response.body.getReader()
 * for (let r = await reader.read(); !r.done; r = await reader.read()) parser.push(r.value)
 * parser.end()
 */
export function createEventStreamParser ({ onEvent, onComment, onRetry }: EventStreamHandlers): EventStreamParser {
  // fatal: false replaces invalid sequences with U+FFFD; ignoreBOM: false drops a leading BOM.
  const decoder = new TextDecoder('utf-8')
  const lineEnd = /\r\n|\r|\n/g
  /** The start of a line whose end has not arrived yet (kept in pieces: a long line costs linear time). */
  let partial: string[] = []
  /** The last chunk ended with CR: an LF at the start of the next one belongs to it. */
  let skipLF = false
  let type = ''
  let data = ''
  let hasData = false
  let idBuffer = ''
  let lastEventId = ''
  let retry: number | undefined

  const dispatch = () => {
    lastEventId = idBuffer
    if (!hasData) {
      type = ''
      return
    }
    const event = { type: type === '' ? 'message' : type, data, lastEventId }
    type = ''
    data = ''
    hasData = false
    onEvent(event)
  }

  const line = (text: string) => {
    if (text === '') return dispatch()
    const colon = text.indexOf(':')
    if (colon === 0) {
      onComment?.(text.slice(1))
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
        data = hasData ? `${data}\n${value}` : value
        hasData = true
        break
      case 'id':
        if (!value.includes('\0')) idBuffer = value
        break
      case 'retry':
        if (DIGITS.test(value)) {
          retry = Number.parseInt(value, 10)
          onRetry?.(retry)
        }
        break
      default:
        // Unknown fields are ignored.
    }
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
      if (partial.length === 0) {
        line(piece)
      } else {
        partial.push(piece)
        const whole = partial.join('')
        partial = []
        line(whole)
      }
    }
    if (start < chunk.length) partial.push(chunk.slice(start))
  }

  return {
    push (chunk) {
      text(decoder.decode(chunk, { stream: true }))
    },
    end () {
      text(decoder.decode())
      // Whatever is left is an unfinished line or event: discarded.
      partial = []
      type = ''
      data = ''
      hasData = false
    },
    get lastEventId () { return lastEventId },
    get retry () { return retry },
  }
}
