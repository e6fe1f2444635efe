// In-process probes for benchmarks, preloaded into a server the bench
// spawned with an IPC channel (stdio 'ipc'):
//   node --import ./bench/lib/probe.mjs dist/server.js
// Inert unless asked: no timer, no histogram, no route, nothing on the event
// loop until the bench sends a message; the channel is unref'd, so it never
// keeps the process alive. Requests are {vouchProbe: id, cmd, args}, answers
// {vouchProbe: id, result} or {vouchProbe: id, error}:
//   memory {gc?}            process.memoryUsage(), after a full collection if gc
//   event-loop-start        starts a monitorEventLoopDelay histogram (10 ms resolution)
//   event-loop {reset?}     its p50/p99/max/mean in ms since start or the last reset
// Messages of any other shape (cluster traffic) are ignored.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const RESOLUTION_MS = 10
let histogram
let gc

function collect () {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc')
  }
  gc()
}

const commands = {
  memory ({ gc: full } = {}) {
    if (full) collect()
    return { ...process.memoryUsage(), collected: Boolean(full) }
  },
  'event-loop-start' () {
    histogram ??= monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    histogram.enable()
    histogram.reset()
    return { resolution: RESOLUTION_MS }
  },
  'event-loop' ({ reset } = {}) {
    if (histogram === undefined) throw new Error('event-loop-start first')
    const ms = (ns) => ns / 1e6
    const answer = {
      p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max),
      mean: ms(histogram.mean), samples: histogram.count, resolution: RESOLUTION_MS,
    }
    if (reset) histogram.reset()
    return answer
  },
}

if (typeof process.send === 'function' && process.env.NODE_UNIQUE_ID === undefined) {
  process.on('message', (message) => {
    if (message === null || typeof message !== 'object' || message.vouchProbe === undefined) return
    const command = commands[message.cmd]
    try {
      if (command === undefined) throw new Error(`unknown probe command ${message.cmd}`)
      process.send({ vouchProbe: message.vouchProbe, result: command(message.args) })
    } catch (err) {
      process.send({ vouchProbe: message.vouchProbe, error: String(err?.message ?? err) })
    }
  })
  process.channel?.unref()
}
