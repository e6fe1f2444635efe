/**
 * A raw reader of a server-sent-events response (the revocation feed, the
 * session watch), on a connection of its own: every event as it arrives,
 * with its arrival time; a wait for one that matches; the end. It keeps up
 * with events of megabytes (linear time), and can read slowly, like a slow
 * link.
 */
import http, { type IncomingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Test } from 'tap'

/** Generous: the machine may be busy. */
const WAIT_MS = 15_000

export interface StreamEvent {
  /** `heartbeat` for a comment. */
  event: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any
  /** performance.now() when it arrived. */
  at: number
}

export interface EventStreamReader {
  status: number
  headers: IncomingHttpHeaders
  /** The body of a refusal (a status other than 200). */
  body: string
  events: StreamEvent[]
  /** The first event (past or future) that `match` accepts; rejects after `timeoutMs`. */
  next (match: (event: StreamEvent) => boolean, timeoutMs?: number): Promise<StreamEvent>
  /** Resolves when the server ends the stream (or the connection goes). */
  ended: Promise<void>
  close (): void
}

export const named = (name: string) => (event: StreamEvent) => event.event === name

export interface ReaderOptions {
  /** The reader takes no more than this: a slow link. */
  bytesPerSecond?: number
}

/** GET `url` (a full http URL); resolves once the answer's head has arrived, and for a refusal its body. */
export function openEventStream (t: Test, url: string, headers: Record<string, string> = {}, options: ReaderOptions = {}): Promise<EventStreamReader> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers: { accept: 'text/event-stream', ...headers } })
    t.teardown(() => request.destroy())
    request.on('error', reject)
    request.on('response', (res) => {
      res.setEncoding('utf8')
      const waiters = new Set<{ match: (event: StreamEvent) => boolean, resolve: (event: StreamEvent) => void }>()
      let ended!: () => void
      const reader: EventStreamReader = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: '',
        events: [],
        next (match, timeoutMs = WAIT_MS) {
          const seen = reader.events.find(match)
          if (seen) return Promise.resolve(seen)
          return new Promise((resolve, reject) => {
            const waiter = { match, resolve: (event: StreamEvent) => { clearTimeout(timer); resolve(event) } }
            const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`no such event within ${timeoutMs} ms`)) }, timeoutMs)
            waiters.add(waiter)
          })
        },
        ended: new Promise((resolve) => { ended = resolve }),
        close: () => request.destroy(),
      }
      res.on('close', () => ended())
      res.on('error', () => {})
      if (reader.status !== 200) {
        res.on('data', (chunk: string) => { reader.body += chunk })
        res.on('end', () => resolve(reader))
        return
      }
      // The text of the event being received, in pieces: a reader that keeps
      // up with a 10 MB event must not copy what it has so far on every chunk.
      let pending: string[] = []
      let slotStart = Date.now()
      let slotBytes = 0
      const emit = (block: string) => {
        const at = performance.now()
        const event: StreamEvent = block.startsWith(':')
          ? { event: 'heartbeat', data: undefined, at }
          : { event: /^event: (.+)$/m.exec(block)?.[1] ?? 'message', data: JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null'), at }
        reader.events.push(event)
        for (const waiter of waiters) if (waiter.match(event)) { waiters.delete(waiter); waiter.resolve(event) }
      }
      res.on('data', (chunk: string) => {
        // An event ends at a blank line; its "\n\n" may straddle two chunks.
        const last = pending.at(-1)
        let text = chunk
        if (last !== undefined && last.endsWith('\n') && chunk.startsWith('\n')) {
          pending[pending.length - 1] = last.slice(0, -1)
          text = '\n' + chunk
        }
        let end = text.indexOf('\n\n')
        while (end >= 0) {
          pending.push(text.slice(0, end))
          emit(pending.join(''))
          pending = []
          text = text.slice(end + 2)
          end = text.indexOf('\n\n')
        }
        if (text.length > 0) pending.push(text)
        if (options.bytesPerSecond !== undefined) {
          // A tenth of a second's worth at a time.
          slotBytes += chunk.length
          if (slotBytes >= options.bytesPerSecond / 10) {
            res.pause()
            setTimeout(() => { slotStart = Date.now(); slotBytes = 0; res.resume() }, Math.max(0, slotStart + 100 - Date.now()))
          }
        }
      })
      resolve(reader)
    })
  })
}
