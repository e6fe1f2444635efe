/**
 * Benchmark: a resource server's route behind @vouch/verifier's Fastify
 * plugin against the same route with no auth, in the same process and the
 * same run (./lib/a2-resource-server.mjs: plain node, Fastify 5, the
 * package's build, the verifier following vouch's revocation feed).
 *
 * The tokens are real vouch tokens, issued for this run by a real vouch
 * (`node dist/server.js`, SQLite scratch database, RESOURCE_CLIENTS set for
 * the resource server's feed): 100 users registered, and, for the
 * never-seen case, further access tokens from refresh rotations of those
 * users' sessions (a sign-in costs an argon2 hash at no less than OWASP's
 * parameters, which vouch enforces; a refresh costs about a millisecond and
 * yields a new, distinct, fully valid access token of the same session).
 *
 * Runs, autocannon with 32 connections from this process, every request
 * built per request with its token (so the client's own work is the same
 * for every run): open, 100 users' tokens, never-seen, never-seen, 100
 * users' tokens, open (ABCCBA; in quick mode one never-seen run, ABCBA, to
 * keep the pool small), each open run carrying the same rotating
 * Authorization headers, which the open route ignores. A never-seen run
 * sends each pre-issued token exactly once (autocannon `amount`), so every
 * request is a signature check; it lasts as long as its tokens do.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import autocannon from 'autocannon'
import { Client, int, mb, ms, ratio, root, sampleProcess, startNode, startVouch, type NodeServer } from './lib/harness.js'
import { BENCH_ISSUER, createInstance, registerUsers } from './lib/instances.js'
import type { Context, Section, Target } from './lib/report.js'

const CONNECTIONS = 32
const USERS = 100
const TARGET_KNOWN = 0.7
const TARGET_FRESH = 0.3
const CLIENT_ID = 'bench-api'

type Kind = 'open' | 'known' | 'fresh'

interface Run {
  kind: Kind
  rps: number
  requests: number
  seconds: number
  p50: number
  p99: number
  cpuUsPerRequest: number
  rssEndKb: number
  /** Tokens sent more than once (never-seen runs: must be 0). */
  reused: number
}

/**
 * One autocannon run against `url`. Each request takes the next token of
 * `tokens` (wrapping around, counted in `reused` for a pool meant to be used
 * once). Fixed `seconds`, or, with `amount`, exactly that many requests.
 */
async function drive (server: NodeServer, pathname: string, tokens: string[], options: { seconds?: number, amount?: number, once?: boolean }): Promise<Omit<Run, 'kind'>> {
  let next = 0
  let reused = 0
  const sampler = sampleProcess(server.pid, 500)
  const t0 = performance.now()
  const result = await autocannon({
    url: `${server.base}${pathname}`,
    connections: CONNECTIONS,
    timeout: 30,
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.seconds ?? 3 }),
    requests: [{
      setupRequest: (request) => {
        if (next >= tokens.length) { next = 0; reused += 1 }
        return { ...request, headers: { ...request.headers, authorization: `Bearer ${tokens[next++]}` } }
      },
    }],
  })
  const seconds = (performance.now() - t0) / 1000
  const usage = sampler.stop()
  const failed = result.non2xx + result.errors + result.timeouts
  if (failed > 0) throw new Error(`${pathname}: ${failed} failed requests of ${result.requests.total} (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`)
  if (options.once === true && reused > 0) throw new Error(`${pathname}: the pool of ${tokens.length} never-seen tokens ran out (${reused} sent again)`)
  const requests = result.requests.total
  return {
    rps: requests / (options.amount !== undefined ? seconds : result.duration),
    requests,
    seconds: options.amount !== undefined ? seconds : result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUsPerRequest: usage.cpuMs * 1000 / requests,
    rssEndKb: usage.rssEndKb,
    reused,
  }
}

export async function resourceServerBench (ctx: Context): Promise<Section> {
  const seconds = ctx.quick ? 3 : 10
  // Never-seen tokens per fresh run; at 32 connections a run lasts pool ÷ (signature checks per second).
  const perFreshRun = ctx.quick ? 3_000 : 20_000
  // Quick mode: one never-seen run (open, known, fresh, known, open), to keep the token pool small.
  const order: Kind[] = ctx.quick ? ['open', 'known', 'fresh', 'known', 'open'] : ['open', 'known', 'fresh', 'fresh', 'known', 'open']
  const freshRuns = order.filter((k) => k === 'fresh').length
  const notes = [await ctx.quiet('resource-server')]
  const instance = await createInstance('sqlite')
  const secret = randomBytes(32).toString('base64url')
  const runs: Run[] = []
  let issuance: { tokens: number, seconds: number }
  try {
    const vouch = await startVouch({ label: 'vouch', env: { ...instance.env, RESOURCE_CLIENTS: `${CLIENT_ID}:${secret}` } })
    let api: NodeServer | undefined
    const client = new Client(vouch.base, CONNECTIONS)
    try {
      // 100 users, one session each: their access tokens are the "100 users" pool.
      const sessions = await registerUsers(vouch.base, USERS, 'rs')
      const known = sessions.map((s) => s.accessToken)
      const refreshTokens = sessions.map((s) => s.refreshToken)

      // Never-seen tokens: refresh rotations of those sessions, 32 at a time (each session's chain in order).
      const wanted = freshRuns * (perFreshRun + 2 * CONNECTIONS) // the margin: autocannon builds a request ahead on each connection
      ctx.log(`resource-server: issuing ${int(wanted)} access tokens by refresh rotation`)
      const fresh: string[] = []
      const t0 = performance.now()
      await Promise.all(Array.from({ length: CONNECTIONS }, async (_, worker) => {
        // Worker w owns the sessions w, w + 32, w + 64, …: each chain is refreshed by one worker, in order.
        const mine = Array.from({ length: USERS }, (_, s) => s).filter((s) => s % CONNECTIONS === worker)
        for (let k = 0; fresh.length < wanted; k++) {
          const session = mine[k % mine.length]!
          const pair = await client.json('POST', '/auth/refresh', { body: { refreshToken: refreshTokens[session] }, expected: 200 })
          refreshTokens[session] = pair.refreshToken as string
          fresh.push(pair.accessToken as string)
        }
      }))
      issuance = { tokens: fresh.length, seconds: (performance.now() - t0) / 1000 }
      if (new Set(fresh).size !== fresh.length || fresh.some((t) => known.includes(t))) throw new Error('refresh rotations returned a token twice')
      ctx.log(`resource-server: ${int(fresh.length)} tokens in ${issuance.seconds.toFixed(1)} s`)

      api = await startNode({
        label: 'resource server',
        script: path.join(root, 'bench/lib/a2-resource-server.mjs'),
        readyPath: '/open',
        env: { VOUCH_URL: vouch.base, VOUCH_ISSUER: BENCH_ISSUER, VOUCH_CLIENT_ID: CLIENT_ID, VOUCH_CLIENT_SECRET: secret },
      })
      // The route is really protected: no token and a forged one are refused, a real one passes.
      const forged = `${known[0]!.slice(0, known[0]!.lastIndexOf('.') + 1)}${Buffer.alloc(64).toString('base64url')}`
      const status = async (token?: string) => (await fetch(`${api!.base}/protected`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })).status
      const checks = [await status(), await status(forged), await status(known[0])]
      if (checks.join() !== '401,401,200') throw new Error(`the resource server answered ${checks.join(', ')} to no token, a forged one and a real one (expected 401, 401, 200)`)

      // Warm-up (JIT, connections), not counted.
      await drive(api, '/open', known, { seconds: 2 })
      await drive(api, '/protected', known, { seconds: 2 })
      const share = Math.floor(fresh.length / freshRuns)
      const pools = Array.from({ length: freshRuns }, (_, i) => fresh.slice(i * share, (i + 1) * share))
      for (const kind of order) {
        const result = kind === 'open'
          ? await drive(api, '/open', known, { seconds })
          : kind === 'known'
            ? await drive(api, '/protected', known, { seconds })
            : await drive(api, '/protected', pools.shift()!, { amount: perFreshRun, once: true })
        runs.push({ kind, ...result })
        ctx.log(`resource-server: ${kind} ${int(result.rps)} req/s`)
      }
    } finally {
      client.close()
      await api?.stop()
      await vouch.stop()
    }
  } finally {
    await instance.drop()
  }

  const sum = (kind: Kind) => {
    const mine = runs.filter((r) => r.kind === kind)
    const requests = mine.reduce((n, r) => n + r.requests, 0)
    const secs = mine.reduce((n, r) => n + r.seconds, 0)
    return {
      rps: requests / secs,
      requests,
      seconds: secs,
      p50: Math.max(...mine.map((r) => r.p50)),
      p99: Math.max(...mine.map((r) => r.p99)),
      cpuUsPerRequest: mine.reduce((n, r) => n + r.cpuUsPerRequest * r.requests, 0) / requests,
      rssEndKb: Math.max(...mine.map((r) => r.rssEndKb)),
    }
  }
  const open = sum('open')
  const known = sum('known')
  const fresh = sum('fresh')
  const knownRatio = known.rps / open.rps
  const freshRatio = fresh.rps / open.rps
  const row = (label: string, r: ReturnType<typeof sum>, vsOpen: string) =>
    [label, int(r.rps), vsOpen, int(r.requests), r.seconds.toFixed(1), ms(r.p50), ms(r.p99), r.cpuUsPerRequest.toFixed(0), mb(r.rssEndKb)]
  const targets: Target[] = [
    {
      goal: `resource server: Fastify route behind the verifier plugin, ${USERS} users' tokens ÷ the same route with no auth ≥ ${TARGET_KNOWN}×`,
      measured: `${ratio(knownRatio)} (${int(known.rps)} vs ${int(open.rps)} req/s)`,
      met: knownRatio >= TARGET_KNOWN,
    },
    {
      goal: `the same with a never-seen token on every request (signature check each time) ≥ ${TARGET_FRESH}×`,
      measured: `${ratio(freshRatio)} (${int(fresh.rps)} vs ${int(open.rps)} req/s)`,
      met: freshRatio >= TARGET_FRESH,
    },
  ]
  return {
    id: 'resource-server',
    title: 'Resource server: a route behind @vouch/verifier vs the same route with no auth',
    about: `One resource-server process (plain node, Fastify 5, \`@vouch/verifier/fastify\` from packages/verifier/dist, the verifier following a real vouch's revocation feed): GET /open (no auth) and GET /protected (the same handler in the plugin's scope). ` +
      `autocannon, ${CONNECTIONS} connections, from the benchmark process; runs ${order.map((k) => ({ open: 'open', known: `${USERS} users' tokens`, fresh: 'never-seen' })[k]).join(', ')}; ${seconds} s each, a never-seen run as long as its ${int(perFreshRun)} tokens last. ` +
      `Tokens: real vouch access tokens (EdDSA) from a \`node dist/server.js\` started for the run: ${USERS} registrations, then refresh rotations of those sessions for the never-seen pool, each token sent once.`,
    tables: [{
      caption: 'Requests per second (sums of each kind\'s runs)',
      header: ['route and tokens', 'req/s', '÷ open', 'requests', 'seconds', 'p50 ms (worst run)', 'p99 ms (worst run)', 'server CPU µs/req', 'server RSS MB (end)'],
      rows: [
        row('GET /open, no auth', open, '1.00×'),
        row(`GET /protected, ${USERS} users' tokens rotated`, known, `**${ratio(knownRatio)}**`),
        row('GET /protected, a never-seen token each request', fresh, `**${ratio(freshRatio)}**`),
      ],
    }],
    targets,
    notes: [
      ...notes,
      `Never-seen pool: ${int(issuance.tokens)} access tokens from refresh rotations in ${issuance.seconds.toFixed(1)} s (${int(issuance.tokens / issuance.seconds)} per s, ${CONNECTIONS} in flight), all distinct; each was sent once (autocannon \`amount\`; a pool that ran out would fail the run). ` +
        'Sign-ins cannot make them cheaply: vouch refuses argon2 parameters below OWASP\'s minimum (m = 19,456 KiB, t = 2), and a refresh returns a new access token of the same kind a sign-in does.',
      'Before the runs the resource server answered 401 to no token and to a token with a forged signature, and 200 to a real one.',
      'Every request is built with its own Authorization header (autocannon setupRequest) in every run, the open ones included, so the client does the same work on both sides of each ratio.',
    ],
    data: { open, known, fresh, knownRatio, freshRatio, runs, issuance },
  }
}
