/**
 * The session-watch stream's parser: the WHATWG event-stream rules it relies
 * on, each checked in one chunk and split byte by byte (a network may cut a
 * stream anywhere, even inside a CRLF or a UTF-8 sequence), and its bounds:
 * an over-long line or event is refused as soon as the bound is crossed,
 * however the bytes arrive.
 */
import t, { type Test } from 'tap'
import { createSseParser, SseLimitError, type SseEvent, type SseLimits } from '../src/sse.js'

const bytes = (text: string) => new TextEncoder().encode(text)

function parse (input: string | Uint8Array, { split = false, limits = {} as SseLimits } = {}) {
  const events: SseEvent[] = []
  const comments: string[] = []
  const retries: number[] = []
  const parser = createSseParser({
    onEvent: (event) => events.push(event),
    onComment: (text) => comments.push(text),
    onRetry: (ms) => retries.push(ms),
  }, limits)
  const data = typeof input === 'string' ? bytes(input) : input
  if (split) for (let i = 0; i < data.length; i++) parser.push(data.subarray(i, i + 1))
  else parser.push(data)
  parser.end()
  return { events, comments, retries }
}

function both (t: Test, input: string | Uint8Array, check: (result: ReturnType<typeof parse>, how: string) => void) {
  check(parse(input), 'one chunk')
  check(parse(input, { split: true }), 'byte by byte')
}

t.test("vouch's watch events: ready, revoked (session or version), expired", async (t) => {
  const stream = 'event: ready\ndata: {}\n\n: hb\n\nevent: revoked\ndata: {"sessionId":"s1"}\n\nevent: revoked\ndata: {"minVersion":3}\n\nevent: expired\ndata: {}\n\n'
  both(t, stream, ({ events, comments }, how) => {
    t.same(events.map((e) => [e.type, e.data]), [['ready', '{}'], ['revoked', '{"sessionId":"s1"}'], ['revoked', '{"minVersion":3}'], ['expired', '{}']], how)
    t.same(comments, [' hb'], `${how}: the heartbeat is a comment`)
  })
})

t.test('CRLF, LF and CR all end lines, also with a CRLF split between chunks', async (t) => {
  both(t, 'event: ready\r\ndata: a\r\n\r\nevent: x\rdata: b\r\rdata: c\n\n', ({ events }, how) => {
    t.same(events.map((e) => [e.type, e.data]), [['ready', 'a'], ['x', 'b'], ['message', 'c']], how)
  })
  const parser = createSseParser({ onEvent: (e) => got.push(e.data) })
  const got: string[] = []
  parser.push('data: one\r')
  parser.push('\n\r')
  parser.push('\ndata: two\n\n')
  t.same(got, ['one', 'two'], 'a CRLF cut after the CR is one line end, not two')
})

t.test('comments are reported and never dispatch; unknown fields are ignored', async (t) => {
  both(t, ': hello\n:\nfoo: bar\ndata: x\n\n', ({ events, comments }, how) => {
    t.same(comments, [' hello', ''], how)
    t.same(events.map((e) => e.data), ['x'], how)
  })
})

t.test('data lines join with LF; one space after the colon is dropped, no more; a line without a colon is a field', async (t) => {
  both(t, 'data:a\ndata:  b\ndata\n\n', ({ events }, how) => t.same(events[0]?.data, 'a\n b\n', how))
})

t.test('an event without data is not dispatched; an unfinished event at the end is discarded', async (t) => {
  both(t, 'event: ready\n\ndata: done\n\ndata: cut', ({ events }, how) => t.same(events.map((e) => [e.type, e.data]), [['message', 'done']], how))
})

t.test('id and retry fields', async (t) => {
  both(t, 'id: 7\ndata: a\n\nretry: 1500\nretry: x\ndata: b\n\n', ({ events, retries }, how) => {
    t.same(events.map((e) => e.id), ['7', '7'], `${how}: the id persists`)
    t.same(retries, [1500], `${how}: only an all-digit retry counts`)
  })
})

t.test('UTF-8 split inside a character, and a leading BOM, are decoded correctly', async (t) => {
  both(t, new Uint8Array([0xef, 0xbb, 0xbf, ...bytes('data: Zoë ✓\n\n')]), ({ events }, how) => t.same(events[0]?.data, 'Zoë ✓', how))
})

t.test('a line longer than maxLineLength is refused, even when it arrives in small pieces', async (t) => {
  const limits = { maxLineLength: 64 }
  t.doesNotThrow(() => parse(`data: ${'a'.repeat(58)}\n\n`, { limits }), 'exactly at the bound is accepted')
  t.throws(() => parse(`data: ${'a'.repeat(59)}\n\n`, { limits }), SseLimitError, 'one character more is refused')
  // A line that never ends: refused once the bound is crossed, not held in memory until the end.
  const parser = createSseParser({ onEvent: () => {} }, limits)
  let pushed = 0
  t.throws(() => {
    for (; pushed < 1000; pushed++) parser.push('x')
  }, SseLimitError)
  t.equal(pushed, 64, 'refused on the first character past the bound')
  t.throws(() => parse(`: ${'c'.repeat(100)}\n`, { split: true, limits }), SseLimitError, 'comments count too')
})

t.test("an event's data past maxEventLength is refused, however many short lines carry it", async (t) => {
  const limits = { maxLineLength: 100, maxEventLength: 50 }
  t.doesNotThrow(() => parse('data: aaaaaaaaaaaaaaaaaaaaaaaa\ndata: bbbbbbbbbbbbbbbbbbbbbbbbb\n\n', { limits }), '50 characters with the joining LF')
  t.throws(() => parse(`${'data: aaaaaaaaaa\n'.repeat(6)}\n`, { limits }), SseLimitError)
  t.doesNotThrow(() => parse(`${'data: aaaaaaaaaa\n\n'.repeat(20)}`, { limits }), 'the bound is per event')
})
