/**
 * Benchmark 1: sign out everywhere vs the number of sessions on file.
 *
 * Per database, two throw-away databases: a reference holding 1,000
 * sessions, and the main one, grown step by step to each N. At every N,
 * vouch's revocations run on both in alternating rounds, so the "vs 1,000"
 * ratio compares figures taken side by side under the same machine load:
 *   - endAll: the domain call behind POST /auth/logout-all (one UPDATE);
 *   - keepOnly with a password update: the password-change transaction
 *     (argon2 left out: hashes are precomputed);
 *   - POST /auth/logout-all over loopback HTTP (in-process server: bearer
 *     check, a cache miss, the UPDATE, the answer).
 * The baseline, on the main database at the same N: the classic store of
 * bench/lib/classic.ts, which must scan, verify and decode every unexpired
 * session to find one user's.
 * Before each timed call (untimed) the target's 5 sessions are made active
 * again, so every call really ends 5 live sessions.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import argon2 from 'argon2'
import type { FastifyInstance } from 'fastify'
import { buildApp, createLogger } from '../src/app.js'
import { loadConfig, OWASP_ARGON2_MINIMUM } from '../src/config.js'
import { createDb, prepareDatabase, type Db } from '../src/db/client.js'
import { applyMigrations } from '../src/db/migrate.js'
import { createScratchDatabase } from '../src/db/scratch.js'
import type { Provider } from '../src/db/schema.js'
import { createDomain, type Domain } from '../src/domain/index.js'
import { prepare } from '../src/start.js'
import { encodeSession, revokeAllClassic } from './lib/classic.js'
import { Client, int, median, ms, percentile, ratio } from './lib/harness.js'
import { openRawStore, type ClassicRow, type RawStore, type SessionRow, type UserRow } from './lib/raw-store.js'
import type { Context, Section, Target } from './lib/report.js'

const SESSIONS_PER_USER = 5
const CHUNK = 10_000 // sessions per seeding transaction (a multiple of SESSIONS_PER_USER)
/** The issue's bound: revoke-all at the largest N within this factor of its latency at 1,000 sessions. */
const TARGET = 1.2
const LIFETIME_MS = 1_209_600_000
const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
]
const DEVICES = ['laptop', 'phone', 'tablet', 'work desktop', 'tv']

interface Fixture {
  provider: Provider
  db: Db
  domain: Domain
  app: FastifyInstance
  client: Client
  store: RawStore
  classicSecret: Buffer
  target: { id: string, sessionIds: string[], version: number, hash: string, classicRows: ClassicRow[] }
  /** Sessions on file (vouch's table and the classic one hold the same number). */
  sessions: number
  close (): Promise<void>
}

async function createFixture (provider: Provider, hashes: readonly [string, string]): Promise<Fixture> {
  const scratch = await createScratchDatabase(provider)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-bench-revoke-'))
  const cleanups: Array<() => Promise<unknown>> = [() => rm(dataDir, { recursive: true, force: true }), () => scratch.drop()]
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
  try {
    await prepareDatabase(scratch.url)
    await applyMigrations(scratch.url)
    const config = loadConfig({
      DATABASE_URL: scratch.url,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'error',
      RATE_LIMIT_MAX: '1000000000',
      REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      // The bench's kept-alive connection idles while the other database is seeded and the classic scan runs
      // (seconds on a loaded machine): a server closing it at the default 5 s races the next call (ECONNRESET).
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000',
      HTTP_IDLE_TIMEOUT_MS: '3600000',
    })
    const { keys, refreshKey } = await prepare(config, { migrate: false })
    const db = createDb(scratch.url, { pool: config.database })
    cleanups.push(() => db.$disconnect())
    const domain = createDomain({ config, db, keys, refreshKey })
    const app = await buildApp({ config, db, keys, refreshKey, logger: createLogger('error') })
    await app.listen({ host: '127.0.0.1', port: 0 })
    cleanups.push(() => app.close())
    const { port } = app.server.address() as { port: number }
    const client = new Client(`http://127.0.0.1:${port}`, 4)
    cleanups.push(async () => client.close())
    const store = await openRawStore(provider, scratch.url)
    cleanups.push(() => store.close())
    await store.createClassicTable()
    return {
      provider, db, domain, app, client, store,
      classicSecret: randomBytes(32),
      target: { id: randomUUID(), sessionIds: [], version: 0, hash: hashes[0], classicRows: [] },
      sessions: 0,
      close,
    }
  } catch (err) {
    await close()
    throw err
  }
}

/** Adds sessions until `to` are on file: SESSIONS_PER_USER per user, the first user being the target. */
async function grow (f: Fixture, to: number, hashes: readonly [string, string]): Promise<void> {
  const now = Date.now()
  while (f.sessions < to) {
    const from = f.sessions
    const until = Math.min(to, from + CHUNK)
    const users: UserRow[] = []
    const sessions: SessionRow[] = []
    const classic: ClassicRow[] = []
    const secrets = randomBytes(32 * (until - from))
    let userId = ''
    for (let i = from; i < until; i++) {
      const u = Math.floor(i / SESSIONS_PER_USER)
      if (i % SESSIONS_PER_USER === 0) {
        userId = u === 0 ? f.target.id : randomUUID()
        users.push({ id: userId, email: `user-${u}@bench.example`, passwordHash: hashes[0], tokenVersion: 0, createdAt: new Date(now - 86_400_000) })
      }
      const createdAt = new Date(now - (i % 997) * 60_000)
      const expiresAt = new Date(createdAt.getTime() + LIFETIME_MS)
      const session: SessionRow = {
        id: randomUUID(),
        userId,
        tokenVersion: 0,
        refreshTokenHash: secrets.subarray((i - from) * 32, (i - from + 1) * 32).toString('base64url'),
        deviceName: DEVICES[i % DEVICES.length]!,
        userAgent: USER_AGENTS[i % USER_AGENTS.length]!,
        ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        createdAt,
        lastUsedAt: new Date(now),
        expiresAt,
      }
      sessions.push(session)
      const row: ClassicRow = {
        sid: session.id,
        sess: encodeSession(f.classicSecret, {
          cookie: { originalMaxAge: LIFETIME_MS, expires: expiresAt.toISOString(), httpOnly: true, secure: true, sameSite: 'lax', path: '/' },
          passport: { user: userId },
          device: { name: session.deviceName, userAgent: session.userAgent, ip: session.ip },
          createdAt: createdAt.toISOString(),
          csrfSecret: session.refreshTokenHash.slice(0, 24),
        }),
        expire: expiresAt,
      }
      classic.push(row)
      if (u === 0) {
        f.target.sessionIds.push(session.id)
        f.target.classicRows.push(row)
      }
    }
    await f.store.insertChunk(users, sessions, classic)
    f.sessions = until
  }
  await f.store.analyze()
}

interface Op {
  name: string
  /** Untimed set-up before each call. */
  before (f: Fixture): Promise<unknown>
  run (f: Fixture, state: unknown): Promise<void>
}

const reactivate = (f: Fixture) => f.db.session.updateMany({
  where: { userId: f.target.id },
  data: { tokenVersion: f.target.version, revokedAt: null, revokedReason: null },
})

function ops (hashes: readonly [string, string]): Op[] {
  return [
    {
      name: 'endAll',
      before: reactivate,
      async run (f) {
        await f.domain.sessions.endAll(f.target.id)
        f.target.version += 1
      },
    },
    {
      name: 'keepOnly',
      before: reactivate,
      async run (f) {
        const next = f.target.hash === hashes[0] ? hashes[1] : hashes[0]
        await f.domain.sessions.keepOnly(
          { userId: f.target.id, sessionId: f.target.sessionIds[0]!, version: f.target.version },
          { passwordHash: next, verifiedHash: f.target.hash },
        )
        f.target.version += 1
        f.target.hash = next
      },
    },
    {
      name: 'http',
      async before (f) {
        await reactivate(f)
        return f.domain.accessTokens.issue({ userId: f.target.id, sessionId: f.target.sessionIds[0]!, version: f.target.version })
      },
      async run (f, token) {
        const res = await f.client.request('POST', '/auth/logout-all', { token: token as string })
        if (res.status !== 204) throw new Error(`POST /auth/logout-all: ${res.status} ${res.body}`)
        f.target.version += 1
      },
    },
  ]
}

/** Runs `op` on each fixture in alternating order, `rounds` × `perRound` timed calls each (after a warm-up). */
async function interleaved (fixtures: Fixture[], op: Op, rounds: number, perRound: number): Promise<number[][]> {
  const samples = fixtures.map(() => [] as number[])
  for (let round = -1; round < rounds; round++) {
    const order = round % 2 === 0 ? fixtures.map((_, i) => i) : fixtures.map((_, i) => fixtures.length - 1 - i)
    for (const i of order) {
      const f = fixtures[i]!
      for (let k = 0; k < perRound; k++) {
        const state = await op.before(f)
        const t0 = performance.now()
        await op.run(f, state)
        const elapsed = performance.now() - t0
        if (round >= 0) samples[i]!.push(elapsed) // round -1 is the warm-up
      }
    }
  }
  return samples
}

async function measureClassic (f: Fixture, minRuns: number, maxRuns: number, budgetMs: number): Promise<number[]> {
  const times: number[] = []
  const started = performance.now()
  while (times.length < maxRuns && (times.length < minRuns || performance.now() - started < budgetMs)) {
    const t0 = performance.now()
    const { scanned, deleted } = await revokeAllClassic(f.store, f.classicSecret, f.target.id)
    times.push(performance.now() - t0)
    if (deleted !== SESSIONS_PER_USER || scanned !== f.sessions) {
      throw new Error(`classic revoke found ${deleted} of the target's sessions among ${scanned} scanned (expected ${SESSIONS_PER_USER} of ${f.sessions})`)
    }
    await f.store.insertClassic(f.target.classicRows) // untimed: the target signs in again
  }
  return times
}

interface Point {
  n: number
  vouch: Record<string, { median: number, p90: number, ref: number, samples: number }>
  classic: { median: number, runs: number }
  seedSeconds: number
}

export async function revokeAllBench (ctx: Context): Promise<Section> {
  const sizes = ctx.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000, 1_000_000]
  const providers: Provider[] = ['sqlite', 'postgresql']
  const rounds = ctx.quick ? 8 : 20
  const perRound = ctx.quick ? 8 : 15
  const classicRuns = ctx.quick ? { min: 3, max: 15, budgetMs: 1500 } : { min: 5, max: 25, budgetMs: 20_000 }
  const hashOptions = { type: argon2.argon2id, ...OWASP_ARGON2_MINIMUM } as const
  const hashes = [await argon2.hash('old password 1', hashOptions), await argon2.hash('new password 2', hashOptions)] as const
  const results: Record<string, Point[]> = {}

  for (const provider of providers) {
    const points: Point[] = []
    results[provider] = points
    const ref = await createFixture(provider, hashes)
    let main: Fixture | undefined
    try {
      await grow(ref, 1_000, hashes)
      main = await createFixture(provider, hashes)
      for (const n of sizes) {
        const t0 = performance.now()
        await grow(main, n, hashes)
        const seedSeconds = (performance.now() - t0) / 1000
        ctx.log(`revoke-all ${provider}: ${int(n)} sessions on file (seeded in ${seedSeconds.toFixed(1)} s)`)
        const point: Point = { n, vouch: {}, classic: { median: NaN, runs: 0 }, seedSeconds }
        for (const op of ops(hashes)) {
          const [onMain, onRef] = await interleaved([main, ref], op, rounds, perRound)
          point.vouch[op.name] = { median: median(onMain!), p90: percentile(onMain!, 90), ref: median(onRef!), samples: onMain!.length }
        }
        const classic = await measureClassic(main, classicRuns.min, classicRuns.max, classicRuns.budgetMs)
        point.classic = { median: median(classic), runs: classic.length }
        ctx.log(`revoke-all ${provider} @ ${int(n)}: vouch endAll ${ms(point.vouch.endAll!.median)} ms, classic ${ms(point.classic.median)} ms`)
        points.push(point)
      }
    } finally {
      await main?.close()
      await ref.close()
    }
  }

  const largest = sizes.at(-1)!
  const comparison: Array<Array<string | number>> = []
  const detail: Array<Array<string | number>> = []
  const targets: Target[] = []
  const cell = (v: Point['vouch'][string]) => `${ms(v.median)} (${ratio(v.median / v.ref)})`
  for (const provider of providers) {
    const points = results[provider]!
    const classicAt1k = points[0]!.classic.median
    for (const p of points) {
      comparison.push([provider, int(p.n), ms(p.vouch.endAll!.median), ms(p.classic.median), ratio(p.classic.median / p.vouch.endAll!.median),
        ratio(p.vouch.endAll!.median / p.vouch.endAll!.ref), ratio(p.classic.median / classicAt1k)])
      detail.push([provider, int(p.n), cell(p.vouch.endAll!), cell(p.vouch.keepOnly!), cell(p.vouch.http!), ms(p.vouch.endAll!.ref), p.vouch.endAll!.samples, p.classic.runs, p.seedSeconds.toFixed(1)])
    }
    const last = points.at(-1)!
    for (const [name, label] of [['endAll', 'sessions.endAll'], ['keepOnly', 'keepOnly (password change)'], ['http', 'POST /auth/logout-all']] as const) {
      const v = last.vouch[name]!
      targets.push({
        goal: `revoke-all at ${ctx.quick ? `${int(largest)} sessions (quick mode; full mode: 1,000,000)` : `${int(largest)} sessions`} ÷ at 1k ≤ ${TARGET}× (keep): ${provider}, ${label}`,
        measured: `${ratio(v.median / v.ref)} (${ms(v.median)} ms vs ${ms(v.ref)} ms, side by side)`,
        met: v.median / v.ref <= TARGET,
      })
    }
  }

  return {
    id: 'revoke-all',
    title: '1. Sign out everywhere vs the number of sessions',
    about: `N sessions on file over N/${SESSIONS_PER_USER} users, the target user holding ${SESSIONS_PER_USER}. vouch: one atomic \`UPDATE users SET tokenVersion = tokenVersion + 1\`. ` +
      'Classic baseline (same database, same run): a `classic_sessions(sid, sess, expire)` table whose rows are signed blobs (base64url JSON + HMAC-SHA256) with the user id inside; ' +
      'revoking streams every unexpired row, verifies and decodes it, and deletes the matches. The baseline uses the raw drivers (better-sqlite3, pg with a server-side cursor), vouch goes through Prisma. ' +
      `Medians of ${rounds * perRound} calls per vouch operation per N; "vs 1k" divides by the same operation on a 1,000-session reference database measured in alternating rounds alongside.`,
    tables: [
      {
        caption: 'Revoke-all latency (median ms): vouch endAll vs the classic scan',
        header: ['database', 'sessions', 'vouch endAll ms', 'classic ms', 'classic ÷ vouch', 'vouch vs 1k', 'classic vs its 1k'],
        rows: comparison,
      },
      {
        caption: 'vouch\'s three revoke-all paths: median ms (÷ the same path on the 1,000-session reference, measured side by side)',
        header: ['database', 'sessions', 'endAll', 'keepOnly + password', 'POST /auth/logout-all', 'endAll @ ref 1k', 'samples / path', 'classic runs', 'seeding s'],
        rows: detail,
      },
    ],
    targets,
    notes: [
      'keepOnly runs the password-change transaction (version bump + new hash, reset tokens deleted, the kept session re-keyed) with precomputed argon2 hashes, so it times the database work, not the hashing.',
      'POST /auth/logout-all goes over loopback HTTP to an in-process server: the bearer check misses the revocation cache (the previous call invalidated it) and reads the session once, by primary key.',
    ],
    data: results,
  }
}
