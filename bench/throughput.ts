/**
 * Benchmark 2: authenticated request throughput. One server process,
 * autocannon on GET /bench/protected (vouch's full bearer check: signature,
 * claims, the revocation cache) and on GET /bench/open (the same route, no
 * auth), in ABBA order so that drift in the machine's load cancels out. The
 * server's CPU time and memory are read from /proc during each run.
 */
import { generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { createScratchDatabase } from '../src/db/scratch.js'
import type { Provider } from '../src/db/schema.js'
import { int, load, mb, mean, ms, post, ratio, sampleProcess, startBenchServer, type BenchServer, type LoadResult, type Usage } from './lib/harness.js'
import { profileServer } from './lib/profile.js'
import type { Context, Section, Table, Target } from './lib/report.js'

const CONNECTIONS = 20
const TARGET = 0.7

interface Run { load: LoadResult, usage: Usage }

async function measure (server: BenchServer, url: string, seconds: number, headers?: Record<string, string>): Promise<Run> {
  const sampler = sampleProcess(server.pid)
  const result = await load(`${server.base}${url}`, seconds, { connections: CONNECTIONS, ...(headers && { headers }) })
  return { load: result, usage: sampler.stop() }
}

async function signUp (server: BenchServer): Promise<Record<string, string>> {
  const { accessToken } = await post(server.base, '/auth/register', { email: `bench-${Date.now()}@example.com`, password: 'benchmark password' })
  return { authorization: `Bearer ${accessToken as string}` }
}

/**
 * CPU time (all threads of this process) of one jose jwtVerify of an EdDSA
 * access token with vouch's options, in microseconds: the floor of a check
 * that verifies a signature on every request.
 */
async function signatureCost (): Promise<number> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
  const token = await new SignJWT({ sid: 'session', ver: 0 })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })
    .setIssuer('http://localhost:3000').setAudience('vouch').setSubject('user')
    .setIssuedAt().setExpirationTime('15m').setJti('jti').sign(privateKey)
  const options = { algorithms: ['EdDSA'], typ: 'at+jwt', issuer: 'http://localhost:3000', audience: 'vouch', requiredClaims: ['sub', 'sid', 'ver', 'jti', 'iat', 'exp'] }
  const run = async (n: number) => {
    let left = n
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (left-- > 0) await jwtVerify(token, publicKey, options)
    }))
  }
  await run(500)
  const before = process.cpuUsage()
  await run(3000)
  const used = process.cpuUsage(before)
  return (used.user + used.system) / 3000
}

export async function throughputBench (ctx: Context): Promise<Section> {
  const providers: Provider[] = ctx.quick ? ['sqlite'] : ['sqlite', 'postgresql']
  const seconds = ctx.quick ? 3 : 10
  const rows: Array<Array<string | number>> = []
  const targets: Target[] = []
  const tables: Table[] = []
  const notes: string[] = []
  const data: Record<string, unknown> = {}

  for (const provider of providers) {
    const database = await createScratchDatabase(provider)
    try {
      const server = await startBenchServer({ DATABASE_URL: database.url })
      const open: Run[] = []
      const protectedRuns: Run[] = []
      try {
        const headers = await signUp(server)
        await load(`${server.base}/bench/open`, 1, { connections: CONNECTIONS }) // warm-up
        await load(`${server.base}/bench/protected`, 1, { connections: CONNECTIONS, headers })
        open.push(await measure(server, '/bench/open', seconds))
        protectedRuns.push(await measure(server, '/bench/protected', seconds, headers))
        protectedRuns.push(await measure(server, '/bench/protected', seconds, headers))
        open.push(await measure(server, '/bench/open', seconds))
      } finally {
        await server.stop()
      }
      const summary = (label: string, runs: Run[]) => {
        const rps = mean(runs.map((r) => r.load.rps))
        const requests = runs.reduce((sum, r) => sum + r.load.requests, 0)
        const cpuMs = runs.reduce((sum, r) => sum + r.usage.cpuMs, 0)
        return {
          label,
          rps,
          p50: Math.max(...runs.map((r) => r.load.p50)),
          p99: Math.max(...runs.map((r) => r.load.p99)),
          cpuPercent: mean(runs.map((r) => r.usage.cpuPercent)),
          cpuUsPerRequest: cpuMs * 1000 / requests,
          rssPeakKb: Math.max(...runs.map((r) => r.usage.rssPeakKb)),
          hwmKb: Math.max(...runs.map((r) => r.usage.hwmKb)),
        }
      }
      const o = summary('GET /bench/open', open)
      const p = summary('GET /bench/protected', protectedRuns)
      data[provider] = { open: o, protected: p }
      for (const s of [o, p]) {
        rows.push([provider, s.label, int(s.rps), ms(s.p50), ms(s.p99), `${s.cpuPercent.toFixed(0)} %`, s.cpuUsPerRequest.toFixed(0), mb(s.rssPeakKb), mb(s.hwmKb)])
      }
      rows.push([provider, '**protected ÷ open**', `**${ratio(p.rps / o.rps)}**`, '', ratio(p.p99 / o.p99), '', ratio(p.cpuUsPerRequest / o.cpuUsPerRequest), '', ''])
      const r = p.rps / o.rps
      targets.push({
        goal: `${provider}: authenticated (full check) ÷ open requests per second ≥ ${TARGET}`,
        measured: `${r.toFixed(2)} (${int(p.rps)} vs ${int(o.rps)} req/s)`,
        met: r >= TARGET,
      })
      notes.push(`${provider}: the bearer check costs about ${(p.cpuUsPerRequest - o.cpuUsPerRequest).toFixed(0)} µs of server CPU per request (${p.cpuUsPerRequest.toFixed(0)} vs ${o.cpuUsPerRequest.toFixed(0)} µs).`)
      const verifyUs = await signatureCost()
      notes.push(`${provider}: for scale, one jose jwtVerify of an EdDSA token costs ${verifyUs.toFixed(0)} µs of CPU on its own (in-process, same moment): ` +
        `a check that paid for a signature on every request could reach at most ${(o.cpuUsPerRequest / (o.cpuUsPerRequest + verifyUs)).toFixed(2)} of the open rate here ` +
        `(open request ${o.cpuUsPerRequest.toFixed(0)} µs). The load reuses one token, as a client does for its token's lifetime.`)
      if (ctx.profile === 'always' || (ctx.profile === 'on-miss' && r < TARGET)) {
        ctx.log(`throughput ${provider}: profiling GET /bench/protected`)
        const profiled = await profileServer(ctx, `throughput-${provider}-protected`, { DATABASE_URL: database.url }, signUp, async (server, headers) => {
          await load(`${server.base}/bench/protected`, seconds, { connections: CONNECTIONS, headers })
        })
        tables.push(...profiled.tables)
        notes.push(`CPU profile of the protected route (${provider}): ${profiled.dir}`)
      }
    } finally {
      await database.drop()
    }
  }

  return {
    id: 'throughput',
    title: '2. Authenticated request throughput',
    about: `autocannon, ${CONNECTIONS} connections over loopback, ${seconds} s per run, runs in ABBA order (open, protected, protected, open) on one server process; ` +
      'GET /bench/protected runs vouch\'s full bearer check (EdDSA signature, claims, revocation cache) and nothing else, GET /bench/open is the same route without auth. ' +
      'Server CPU is user+system time from /proc over the run (100 % = one core); RSS peak is the highest sample during the runs, VmHWM the process\'s peak since start. ' +
      'The load generator shares the machine\'s cores with the server.',
    tables: [{
      caption: 'Requests per second, latency and server resources',
      header: ['database', 'route', 'req/s', 'p50 ms', 'p99 ms', 'server CPU', 'server CPU µs/req', 'RSS peak MB', 'VmHWM MB'],
      rows,
    }, ...tables],
    targets,
    notes,
    data,
  }
}
