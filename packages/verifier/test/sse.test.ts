/**
 * The event-stream parser, rule by rule against the WHATWG HTML standard
 * (§9.2.5 "Parsing an event stream", §9.2.6 "Interpreting an event stream").
 * Each rule is also checked with the stream cut into single bytes, since a
 * network may split a stream anywhere, even inside a CRLF or a UTF-8 sequence.
 */
import t, { type Test } from 'tap'
import { createEventStreamParser, type ServerSentEvent } from '../src/sse.js'

const bytes = (text: string) => new TextEncoder().encode(text)

/** Parses `input` (text or bytes) in one chunk, or one byte at a time; returns what the parser reported. */
function parse (input: string | Uint8Array, { split = false, end = true } = {}) {
  const events: ServerSentEvent[] = []
  const comments: string[] = []
  const retries: number[] = []
  const parser = createEventStreamParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (ms) => retries.push(ms),
  })
  const data = typeof input === 'string' ? bytes(input) : input
  if (split) for (let i = 0; i < data.length; i++) parser.push(data.subarray(i, i + 1))
  else parser.push(data)
  if (end) parser.end()
  return { events, comments, retries, lastEventId: parser.lastEventId, retry: parser.retry }
}

/** The same expectation in one chunk and byte by byte. */
function both (t: Test, input: string | Uint8Array, check: (result: ReturnType<typeof parse>, how: string) => void) {
  check(parse(input), 'one chunk')
  check(parse(input, { split: true }), 'byte by byte')
}

const message = (data: string, type = 'message', lastEventId = '') => ({ type, data, lastEventId })

t.test('a blank line dispatches the event; its type defaults to message', async (t) => {
  both(t, 'data: hello\n\n', ({ events }, how) => t.same(events, [message('hello')], how))
  both(t, 'event: ready\ndata: {}\n\n', ({ events }, how) => t.same(events, [message('{}', 'ready')], how))
})

t.test('lines end with LF, CRLF or CR, mixed in one stream', async (t) => {
  const stream = 'data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n'
  both(t, stream, ({ events }, how) => t.same(events.map((e) => e.data), ['a', 'b', 'c', 'd'], how))
})

t.test('a CRLF split between two chunks is one line end, not two', async (t) => {
  const events: ServerSentEvent[] = []
  const parser = createEventStreamParser({ onEvent: (event) => events.push(event) })
  parser.push(bytes('data: a\r'))
  parser.push(bytes('\ndata: b\r'))
  parser.push(bytes('\n\r'))
  parser.push(bytes('\n'))
  t.same(events, [message('a\nb')], 'the LF after a chunk-final CR is not an empty line')
})

t.test('multi-line data is joined with LF, and the last LF is removed', async (t) => {
  both(t, 'data: one\ndata: two\ndata:\ndata: three\n\n', ({ events }, how) => t.same(events, [message('one\ntwo\n\nthree')], how))
  both(t, 'data\n\n', ({ events }, how) => t.same(events, [message('')], `${how}: a data field without colon is empty data, still dispatched`))
})

t.test('one space after the colon is dropped, no more and nothing else', async (t) => {
  both(t, 'data:no space\n\ndata: one space\n\ndata:  two spaces\n\ndata:\ttab\n\n', ({ events }, how) => {
    t.same(events.map((e) => e.data), ['no space', 'one space', ' two spaces', '\ttab'], how)
  })
  both(t, 'data: a: b:c\n\n', ({ events }, how) => t.same(events, [message('a: b:c')], `${how}: only the first colon separates`))
})

t.test('a line without a colon is a field with an empty value', async (t) => {
  both(t, 'event\ndata: x\n\n', ({ events }, how) => t.same(events, [message('x')], `${how}: "event" alone sets an empty type, which is message`))
  both(t, 'id\ndata: x\n\n', ({ events }, how) => t.same(events, [message('x')], `${how}: "id" alone resets the last event id`))
})

t.test('lines starting with a colon are comments (heartbeats), not data', async (t) => {
  both(t, ': heartbeat 1\n\n:\ndata: x\n: inside an event\n\n', ({ events, comments }, how) => {
    t.same(events, [message('x')], how)
    t.same(comments, [' heartbeat 1', '', ' inside an event'], how)
  })
})

t.test('unknown fields are ignored, and field names are case-sensitive', async (t) => {
  both(t, 'foo: bar\nData: no\nEVENT: no\ndata: yes\n\n', ({ events }, how) => t.same(events, [message('yes')], how))
})

t.test('an event without data is not dispatched, and the type does not leak into the next event', async (t) => {
  both(t, 'event: ready\n\ndata: x\n\n', ({ events }, how) => t.same(events, [message('x')], how))
  both(t, '\n\n\n', ({ events }, how) => t.same(events, [], how))
})

t.test('id sets the last event id, which persists across events; an id with NUL is ignored', async (t) => {
  both(t, 'id: 1\ndata: a\n\ndata: b\n\nid: 2\u0000x\ndata: c\n\nid: 3\ndata: d\n\n', ({ events, lastEventId }, how) => {
    t.same(events, [message('a', 'message', '1'), message('b', 'message', '1'), message('c', 'message', '1'), message('d', 'message', '3')], how)
    t.equal(lastEventId, '3', how)
  })
  both(t, 'id: 7\n\n', ({ events, lastEventId }, how) => {
    t.same(events, [], how)
    t.equal(lastEventId, '7', `${how}: an event without data still sets the last event id`)
  })
})

t.test('retry sets the reconnection time only when it is ASCII digits', async (t) => {
  both(t, 'retry: 1500\n\nretry: 1.5\nretry: -1\nretry: 12a\nretry:\nretry:  30\nretry: ３\n\n', ({ retries, retry, events }, how) => {
    t.same(retries, [1500], how)
    t.equal(retry, 1500, how)
    t.same(events, [], `${how}: retry alone dispatches nothing`)
  })
})

t.test('bytes are decoded as UTF-8, also when a character is split between chunks; invalid bytes become U+FFFD', async (t) => {
  both(t, 'data: žluťoučký 🐎\n\n', ({ events }, how) => t.same(events, [message('žluťoučký 🐎')], how))
  const invalid = new Uint8Array([...bytes('data: a'), 0xff, ...bytes('b\n\n')])
  both(t, invalid, ({ events }, how) => t.same(events, [message('a\uFFFDb')], how))
})

t.test('one byte order mark at the start of the stream is dropped, and only there', async (t) => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf])
  both(t, new Uint8Array([...bom, ...bytes('data: x\n\n')]), ({ events }, how) => t.same(events, [message('x')], how))
  both(t, new Uint8Array([...bom, ...bytes('event: e\ndata: x\n\n')]), ({ events }, how) => {
    t.same(events, [message('x', 'e')], `${how}: the first field's name is whole`)
  })
  both(t, new Uint8Array([...bytes('data: x'), ...bom, ...bytes('\n\n')]), ({ events }, how) => {
    t.same(events, [message('x\uFEFF')], `${how}: a BOM later in the stream is data`)
  })
})

t.test('an event the stream ends in the middle of is discarded', async (t) => {
  both(t, 'data: complete\n\ndata: cut', ({ events }, how) => t.same(events, [message('complete')], how))
  both(t, 'data: complete\n\ndata: cut\n', ({ events }, how) => t.same(events, [message('complete')], `${how}: a line, but no blank line`))
})

t.test('a 16 MiB line that arrives in 256 chunks is read whole (the pieces are joined once, not re-scanned per chunk)', async (t) => {
  const events: ServerSentEvent[] = []
  const parser = createEventStreamParser({ onEvent: (event) => events.push(event) })
  const chunk = bytes('x'.repeat(64 * 1024))
  parser.push(bytes('data: '))
  for (let i = 0; i < 256; i++) parser.push(chunk) // 16 MiB on one line
  parser.push(bytes('\n\n'))
  t.equal(events.length, 1)
  t.equal(events[0]!.data.length, 16 * 1024 * 1024)
})
