/**
 * Benchmark 6: the revocation feed's fan-out to many resource servers. One
 * vouch process (bench/lib/protected-server.ts, counting its SQL statements
 * with BENCH_QUERIES=1), and in this process raw HTTP readers of
 * GET /auth/revocations, one connection each, as many verifiers would hold.
 * With 0, then 10, then 1,000 streams connected, each round registers a user
 * and signs it out everywhere (POST /auth/logout-all); every stream records
 * when the `revocations` event naming that user arrives. Reported: arrival
 * after the logout-all answered (p50/p99/max over every stream and round),
 * the statements the server ran from the request to the last arrival (the
 * 0-stream rounds give the logout-all's own share, as the feed reads nothing
 * without streams), and the server's RSS and heap after GC with the streams
 * connected and idle. The heartbeat (and its safety-net poll) is set to a
 * minute, so no poll falls inside a count.
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { openFileLimit } from '../src/http/connections.js'
import { createScratchDatabase } from '../src/db/scratch.js'
import type { Provider } from '../src/db/schema.js'
import { Client, getJson, int, mb, median, ms, percentile, procStats, sleep, startBenchServer, type BenchServer } from './lib/harness.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const CLIENT = { id: 'fanout', secret: randomBytes(32).toString('base64url') }
const AUTHORIZATION = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`
const PASSWORD = 'benchmark password'
const WANTED_STREAMS = 1000
/** Descriptors this process keeps for everything but its streams. */
const SPARE_FILE_DESCRIPTORS = 200
/** Streams opened at once (the server's listen backlog is 511). */
const OPEN_BATCH = 100
/** Longest wait for a logout-all to reach every stream. */
const ARRIVAL_TIMEOUT_MS = 30_000

interface Stream {
  /** performance.now() when the revocation of each user id arrived. */
  arrivals: Map<string, number>
  close (): void
}

/** Opens a feed stream; resolves once `ready` has arrived. */
function openStream (base: URL, watch: Map<string, Array<() => void>>): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const arrivals = new Map<string, number>()
    const request = http.get({ host: base.hostname, port: base.port, path: '/auth/revocations', agent: false, headers: { authorization: AUTHORIZATION } })
    const timer = setTimeout(() => { request.destroy(); reject(new Error('a feed stream did not become ready within 60 s')) }, 60_000)
    request.on('error', (err) => { clearTimeout(timer); reject(err) })
    request.on('response', (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer)
        res.resume()
        reject(new Error(`the feed answered ${res.statusCode}`))
        return
      }
      res.setEncoding('utf8')
      let buffer = ''
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const event = /^event: (.+)$/m.exec(block)?.[1]
          if (event === 'ready') {
            clearTimeout(timer)
            resolve({ arrivals, close: () => request.destroy() })
          } else if (event === 'revocations') {
            const at = performance.now()
            const batch = JSON.parse(/^data: (.+)$/m.exec(block)![1]!) as { users: Array<{ id: string }> }
            for (const { id } of batch.users) {
              if (arrivals.has(id)) continue
              arrivals.set(id, at)
              for (const arrived of watch.get(id) ?? []) arrived()
            }
          }
        }
      })
      res.on('error', () => {})
    })
  })
}

interface Round {
  /** Milliseconds from the answer to each stream's arrival (negative: it arrived before the answer did). */
  afterAnswer: number[]
  /** Milliseconds the logout-all took to answer. */
  answeredIn: number
  statements: number
}

/** One logout-all of a fresh user, timed at every stream; the statements from the request to the last arrival. */
async function round (server: BenchServer, client: Client, streams: Stream[], watch: Map<string, Array<() => void>>, n: number): Promise<Round> {
  const user = await client.json('POST', '/auth/register', { body: { email: `fanout-${n}-${Date.now()}@bench.example`, password: PASSWORD }, expected: 201 })
  const userId = (user.user as { id: string }).id
  let pending = streams.length
  const all = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the logout-all reached ${streams.length - pending} of ${streams.length} streams in ${ARRIVAL_TIMEOUT_MS} ms`)), ARRIVAL_TIMEOUT_MS)
    const arrived = () => { if (--pending === 0) { clearTimeout(timer); resolve() } }
    if (pending === 0) { clearTimeout(timer); resolve() }
    watch.set(userId, Array.from({ length: streams.length }, () => arrived))
  })
  // Let the registration's statements settle before the count starts.
  await sleep(100)
  const before = (await getJson(server.base, '/bench/queries')).statements as number
  const sent = performance.now()
  await client.json('POST', '/auth/logout-all', { token: user.accessToken as string, expected: 204 })
  const answered = performance.now()
  await all
  watch.delete(userId)
  // Anything the revocation still causes (none is expected) is counted too.
  await sleep(streams.length === 0 ? 500 : 200)
  const after = (await getJson(server.base, '/bench/queries')).statements as number
  return {
    afterAnswer: streams.map((stream) => stream.arrivals.get(userId)! - answered),
    answeredIn: answered - sent,
    statements: after - before,
  }
}

interface Level {
  provider: Provider
  streams: number
  rounds: Round[]
  /** Seconds to open the streams added at this level. */
  openSeconds: number
  rssKb: number
  heapAfterGcBytes: number
}

export async function feedFanoutBench (ctx: Context): Promise<Section> {
  const roundsPerLevel = ctx.quick ? 3 : 10
  const fdLimit = openFileLimit()
  // Each stream is a descriptor here and one in the server; both processes have this limit.
  const most = fdLimit === undefined ? WANTED_STREAMS : Math.min(WANTED_STREAMS, fdLimit - SPARE_FILE_DESCRIPTORS)
  const levels = [0, 10, most]
  // Quick mode (CI): SQLite only, about 20 s.
  const providers: Provider[] = ctx.quick ? ['sqlite'] : ['sqlite', 'postgresql']
  const results: Level[] = []
  const notes: string[] = []
  if (most < WANTED_STREAMS) notes.push(`The open-file limit (${fdLimit}) allows ${most} streams, not ${WANTED_STREAMS}: raise it (ulimit -n) for the full figure.`)

  for (const provider of providers) {
    const database = await createScratchDatabase(provider)
    let server: BenchServer | undefined
    const streams: Stream[] = []
    try {
      server = await startBenchServer({
        DATABASE_URL: database.url,
        BENCH_QUERIES: '1',
        BENCH_MEMORY: '1',
        RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`,
        // No heartbeat poll inside a count; idle streams stay open (the idle timeout must be at least twice the heartbeat).
        REVOCATION_FEED_HEARTBEAT_MS: '60000',
        HTTP_IDLE_TIMEOUT_MS: '180000',
        HTTP_MAX_CONNECTIONS: String(most + 200),
        REVOCATION_FEED_MAX_STREAMS: String(most + 100),
      }, { nodeArgs: ['--expose-gc'] })
      const base = new URL(server.base)
      const client = new Client(server.base, 4)
      const watch = new Map<string, Array<() => void>>()
      // Warm-up: a round trip of every path measured.
      await round(server, client, [], watch, -1)
      for (const level of levels) {
        const start = performance.now()
        while (streams.length < level) {
          const batch = Math.min(OPEN_BATCH, level - streams.length)
          streams.push(...await Promise.all(Array.from({ length: batch }, () => openStream(base, watch))))
        }
        const openSeconds = (performance.now() - start) / 1000
        ctx.log(`feed-fanout ${provider}: ${streams.length} streams connected in ${openSeconds.toFixed(1)} s`)
        await sleep(1000)
        // RSS moves by tens of MB between readings (allocator, GC): the median of a few, before the full GC.
        const samples: number[] = []
        for (let i = 0; i < 5; i++) { samples.push(procStats(server.pid)?.rssKb ?? NaN); await sleep(200) }
        const rssKb = median(samples)
        const memory = await getJson(server.base, '/bench/memory?gc')
        const rounds: Round[] = []
        for (let i = 0; i < roundsPerLevel; i++) rounds.push(await round(server, client, streams, watch, i))
        results.push({ provider, streams: level, rounds, openSeconds, rssKb, heapAfterGcBytes: memory.heapUsed as number })
      }
      client.close()
    } finally {
      for (const stream of streams) stream.close()
      await server?.stop()
      await database.drop()
    }
  }

  const at = (provider: Provider, streams: number) => results.find((r) => r.provider === provider && r.streams === streams)!
  const statementsOf = (level: Level) => median(level.rounds.map((r) => r.statements))
  const arrivalRows = results.filter((r) => r.streams > 0).map((r) => {
    const all = r.rounds.flatMap((x) => x.afterAnswer)
    return [r.provider, int(r.streams), r.rounds.length, int(all.length), ms(percentile(all, 50)), ms(percentile(all, 99)), ms(Math.max(...all)),
      ms(median(r.rounds.map((x) => x.answeredIn))), r.openSeconds.toFixed(1)]
  })
  const statementRows = results.map((r) => {
    const own = statementsOf(at(r.provider, 0))
    const each = r.rounds.map((x) => x.statements)
    return [r.provider, int(r.streams), String(statementsOf(r)), `${Math.min(...each)}–${Math.max(...each)}`, r.streams === 0 ? '(the logout-all alone)' : String(statementsOf(r) - own)]
  })
  const memoryRows = results.map((r) => {
    const idle = at(r.provider, 0)
    const rssDelta = (r.rssKb - idle.rssKb) / 1024
    return [r.provider, int(r.streams), mb(r.rssKb), r.streams === 0 ? 'n/a' : `${rssDelta >= 0 ? '+' : ''}${rssDelta.toFixed(0)}`,
      (r.heapAfterGcBytes / 2 ** 20).toFixed(1), r.streams === 0 ? 'n/a' : ((r.heapAfterGcBytes - idle.heapAfterGcBytes) / 1024 / r.streams).toFixed(1)]
  })
  const tables: Table[] = [
    {
      caption: 'One logout-all reaching every stream: ms from the answer to each stream\'s event (negative: before the answer reached its caller), every stream of every round',
      header: ['database', 'streams', 'rounds', 'arrivals', 'p50 ms', 'p99 ms', 'max ms', 'logout-all answered in (median ms)', 'streams opened in s'],
      rows: arrivalRows,
    },
    {
      caption: 'SQL statements per revocation, from the logout-all request to its arrival at the last stream (median of the rounds)',
      header: ['database', 'streams', 'statements', 'range', 'of which the feed (vs 0 streams)'],
      rows: statementRows,
    },
    {
      caption: 'Server memory with the streams connected and idle (VmRSS: median of 5 readings over 1 s; then the heap after a full GC)',
      header: ['database', 'streams', 'RSS MB', 'RSS vs 0 streams MB', 'heap after GC MB', 'heap KB per stream'],
      rows: memoryRows,
    },
  ]

  const targets: Target[] = []
  for (const provider of providers) {
    const few = statementsOf(at(provider, 10))
    const many = statementsOf(at(provider, most))
    targets.push({
      goal: `${provider}: statements per revocation at ${int(most)} streams = at 10`,
      measured: `${many} vs ${few} (the logout-all alone: ${statementsOf(at(provider, 0))})`,
      met: many === few,
    })
    const all = at(provider, most).rounds.flatMap((x) => x.afterAnswer)
    targets.push({
      goal: `${provider}: a logout-all reaches all ${int(most)} streams within 1 s of its answer (max)`,
      measured: `p50 ${ms(percentile(all, 50))} ms, p99 ${ms(percentile(all, 99))} ms, max ${ms(Math.max(...all))} ms`,
      met: Math.max(...all) < 1000,
    })
  }
  notes.push('Every stream is a separate TCP connection from this process, read as verifiers read it (text/event-stream); the bench process and the server share the two cores, so arrival times include this process parsing 1,000 events.')
  notes.push('RSS includes about 50 MB for tsx (bench/README.md, "The machine") and moves by ±20 MB between readings on this machine; the heap after a full GC is the steadier per-stream figure.')
  notes.push('The heartbeat poll is per instance whatever the number of streams (two statements per REVOCATION_FEED_HEARTBEAT_MS, 5 s by default): test/http/revocation-feed-streams.test.ts counts it; here it is set to 60 s so that the counts hold only the revocation.')

  return {
    id: 'feed-fanout',
    title: '6. Revocation feed fan-out',
    about: `One vouch process per database (quick mode: SQLite only), with 0, 10 and ${int(most)} revocation-feed streams connected from this process (one TCP connection each); ` +
      `${roundsPerLevel} rounds per level of: register a user, POST /auth/logout-all, wait for its \`revocations\` event on every stream. ` +
      'Statements are the SQL statements the server\'s database client sent (Prisma query events, BENCH_QUERIES=1) from the request to the last arrival; memory is the server\'s VmRSS and its heap after a full GC with the streams idle.',
    tables,
    targets,
    notes,
    data: results.map((r) => ({
      provider: r.provider, streams: r.streams, openSeconds: r.openSeconds, rssKb: r.rssKb, heapAfterGcBytes: r.heapAfterGcBytes,
      rounds: r.rounds.map((x) => ({ statements: x.statements, answeredInMs: x.answeredIn, p50: percentile(x.afterAnswer, 50), p99: percentile(x.afterAnswer, 99), max: Math.max(...x.afterAnswer) })),
    })),
  }
}
