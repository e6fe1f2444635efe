/**
 * The two rules that bound what a revocation-feed stream queues for its
 * reader (src/http/stream-backpressure.ts), on a stream whose reader is
 * simulated: `take(n)` is the reader (or the kernel) taking n bytes.
 */
import { EventEmitter } from 'node:events'
import t from 'tap'
import { boundedWriter, type QueuedStream } from '../../src/http/stream-backpressure.js'

const KiB = 1024
const MAX = 1024 * KiB
const STALL = 5000

function fakeStream (highWaterMark = 16 * KiB) {
  const emitter = new EventEmitter()
  let queued = 0
  let needDrain = false
  let destroyed = false
  const stream: QueuedStream & { take (n: number): void, delivered: number, cuts: string[], waitingAtCut: number[] } = {
    get writableLength () { return queued },
    get destroyed () { return destroyed },
    write (text) {
      queued += Buffer.byteLength(text)
      needDrain = queued >= highWaterMark
      return !needDrain
    },
    once (event, listener) { return emitter.once(event, listener) },
    destroy () { destroyed = true },
    /** The reader (through the kernel) takes up to n bytes; like a socket, the stream emits 'drain' once it is empty. */
    take (n) {
      while (n > 0 && queued > 0) {
        const bite = Math.min(n, queued)
        queued -= bite
        n -= bite
        stream.delivered += bite
        if (queued === 0 && needDrain) {
          needDrain = false
          emitter.emit('drain')
        }
      }
    },
    delivered: 0,
    cuts: [],
    waitingAtCut: [],
  }
  let time = 0
  const write = boundedWriter(stream, {
    maxWaitingBytes: MAX, stallMs: STALL, now: () => time, onCut: (waiting, reason) => { stream.cuts.push(reason); stream.waitingAtCut.push(waiting) },
  })
  return { stream, write, advance: (ms: number) => { time += ms } }
}

const event = (bytes: number) => 'x'.repeat(bytes)

t.test('a reader that stops reading is cut once more than 1 MiB waits and it has taken nothing for a heartbeat', async (t) => {
  const { stream, write, advance } = fakeStream()
  for (let i = 0; i < 11; i++) { write(event(100 * KiB)); advance(100) }
  t.notOk(stream.destroyed, 'over 1 MiB, but it took bytes less than a heartbeat ago (at the start)')
  advance(STALL)
  write(': heartbeat\n\n')
  t.ok(stream.destroyed, 'nothing taken for a whole heartbeat: cut')
  t.same(stream.cuts, ['stalled'])
  write('more')
  t.same(stream.cuts, ['stalled'], 'told once; later writes do nothing')
})

t.test('a slow reader of one large event (a backlog after a mass revocation) is not cut while it keeps taking bytes', async (t) => {
  const { stream, write, advance } = fakeStream()
  write(event(8 * MAX))
  for (let second = 0; second < 30; second++) {
    stream.take(200 * KiB)
    advance(1000)
    write(`: heartbeat ${second}\n\n`)
    write(event(200))
  }
  t.notOk(stream.destroyed, `still open after 30 s at 200 KiB/s, ${(stream.delivered / MAX).toFixed(1)} MiB delivered`)
  t.ok(stream.delivered < 8 * MAX, 'with megabytes still waiting all along')
  t.same(stream.cuts, [])
})

t.test('a reader slower than the events themselves is cut once 1 MiB beyond its largest event waits, progress or not', async (t) => {
  const { stream, write, advance } = fakeStream()
  write(event(2 * MAX))
  let writes = 0
  while (!stream.destroyed && writes < 10_000) {
    stream.take(5 * KiB)
    advance(10)
    write(event(10 * KiB))
    writes += 1
  }
  t.ok(stream.destroyed, `cut after ${writes} events`)
  t.same(stream.cuts, ['too_far_behind'])
  const waiting = stream.waitingAtCut[0]!
  t.ok(waiting > 3 * MAX && waiting <= 3 * MAX + 10 * KiB, `cut with ${(waiting / KiB).toFixed(0)} KiB waiting: 1 MiB beyond its largest event (2 MiB), not more`)
})

t.test('a reader that keeps up is never cut, however long it follows the feed', async (t) => {
  const { stream, write, advance } = fakeStream()
  for (let i = 0; i < 10_000; i++) {
    write(event(200))
    stream.take(200)
    advance(STALL)
  }
  t.notOk(stream.destroyed)
})
