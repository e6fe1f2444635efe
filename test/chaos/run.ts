/**
 * Chaos run (`npm run chaos`; issue 9): two vouch instances on one
 * PostgreSQL database (reached through a cuttable TCP proxy) and a Redis
 * server of the run's own, an in-process verifier following the revocation
 * feed, and mixed traffic from virtual users, while faults are injected one
 * after another with recovery in between:
 *
 *   instance b killed (SIGKILL) and restarted; Redis stopped (SIGTERM) and
 *   restarted; Redis frozen (SIGSTOP) and resumed (SIGCONT); every
 *   PostgreSQL connection cut (proxy) and restored.
 *
 * Every request lands in a ledger (ledger.ts); the assertions (checks.ts)
 * read it at the end: no revoked token accepted more than 1 s after its
 * revocation answered (by either instance or the verifier), no lost
 * increment, no forked refresh chain, theft not hidden, no 5xx but 503 and
 * 503 only during the database cut, and the p99 latency of requests that do
 * not need the lost component under 100 ms during each fault. Prints a table
 * per phase, each check, and a last line `N passed, M failed`; exits 1 on any
 * failure.
 *
 * Loopback only; bounded in time (about 100 s, `--quick` about 60 s, a hard
 * limit of 5 minutes); signals only the processes it started; cleans up on
 * every exit. Options: --quick, --hold=<seconds per fault>, --vus=<n>,
 * --seed=<n>, --logs=<dir> (write the servers' output there), --ledger=<file>
 * (write the ledger as JSON).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createDb, type Db } from '../../src/db/client.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase, type ScratchDatabase } from '../../src/db/scratch.js'
import { createVerifier, type Verifier } from '@vouch/verifier'
import { NO_RATE_LIMITS } from '../helpers/app.js'
import { createCuttableProxy } from '../helpers/proxy.js'
import {
  DEFAULT_SETTINGS, checkLatency, checkLiveStillWork, checkNoForkedChain, checkNoLostIncrement, checkRevokedNeverAccepted,
  checkServerErrors, checkTheftDetected, latencyRows, type CheckResult, type CheckSettings,
} from './checks.js'
import { createJsonClient } from './http.js'
import { Ledger, deathTimes, isSuccess, latencyOf, outcomeUnknown, quantile, type FaultKind, type FaultWindow, type Target } from './ledger.js'
import { createInstance, killChildren, startRedis, type VouchInstance } from './processes.js'
import { Harness, PASSWORDS, VirtualUser, verifierWorker, type Account, type Backend } from './traffic.js'

const argv = process.argv.slice(2)
const option = (name: string): string | undefined => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = argv.includes('--quick')
const holdS = Number(option('hold') ?? (quick ? 4 : 12))
const vus = Number(option('vus') ?? 16)
const seed = Number(option('seed') ?? Math.floor(Math.random() * 2 ** 31))
for (const [name, value] of [['hold', holdS], ['vus', vus], ['seed', seed]] as const) {
  if (!Number.isFinite(value) || value < (name === 'seed' ? 0 : 1)) throw new TypeError(`--${name}: expected a positive number, got ${value}`)
}
const plan = { warmupS: 3, baselineS: quick ? 5 : 8, holdS, recoverS: quick ? 3 : 4, finalS: quick ? 3 : 5 }
const logsDir = option('logs')
const ledgerFile = option('ledger')
const GRACE_S = 3
const TIME_LIMIT_MS = 5 * 60_000
const CLIENT_ID = 'chaos'
const ISSUER = 'http://auth.chaos.test'

const settings: CheckSettings = { ...DEFAULT_SETTINGS, graceMs: GRACE_S * 1000 }

/** A small seeded generator (mulberry32), so that a run's choices can be replayed with --seed. */
function seeded (value: number): () => number {
  let state = value >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const t0 = performance.now()
const now = () => performance.now() - t0
const log = (message: string) => process.stderr.write(`[chaos ${(now() / 1000).toFixed(1)} s] ${message}\n`)

/** Stops everything this run started (the throw-away database too, given 10 s), then exits. */
function abandon (reason: string, code: number): void {
  log(`${reason}; cleaning up`)
  killChildren()
  setTimeout(() => process.exit(code), 10_000).unref()
  void cleanUp().finally(() => process.exit(code))
}
process.once('SIGINT', () => abandon('interrupted', 130))
process.once('SIGTERM', () => abandon('terminated', 143))
setTimeout(() => abandon(`time limit of ${TIME_LIMIT_MS / 1000} s reached`, 2), TIME_LIMIT_MS).unref()

const ledger = new Ledger()
let phase = 'setup'
const activeFaults = new Set<string>()

/** The longest this process's own event loop stalled in each phase: client-side latencies include it. */
const stalls = new Map<string, number>()
let tick = now()
setInterval(() => {
  const at = now()
  stalls.set(phase, Math.max(stalls.get(phase) ?? 0, at - tick - 20))
  tick = at
}, 20).unref()

const cleanups: Array<() => Promise<unknown> | unknown> = []
async function cleanUp (): Promise<void> {
  // Last started, first stopped; each runs once even if cleaning up is asked twice.
  for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
    try { await cleanup() } catch (err) { log(`cleanup: ${(err as Error).message}`) }
  }
}

async function main (): Promise<number> {
  log(`seed ${seed}, ${vus} virtual users, faults held ${plan.holdS} s`)
  const rng = seeded(seed)

  // --- the world ------------------------------------------------------------------------
  const redis = await startRedis()
  cleanups.push(() => redis.stop())
  const database: ScratchDatabase = await createScratchDatabase('postgresql')
  cleanups.push(() => database.drop())
  await applyMigrations(database.url)
  const real = new URL(database.url)
  const proxy = await createCuttableProxy({ host: real.hostname, port: Number(real.port || 5432) })
  cleanups.push(() => proxy.cut())
  const viaProxy = new URL(database.url)
  viaProxy.port = String(proxy.port)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vouch-chaos-'))
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }))

  const clientSecret = randomBytes(32).toString('base64url')
  const shared = {
    DATABASE_URL: viaProxy.toString(),
    REDIS_URL: redis.url,
    // Instances of one deployment share their key material.
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    // One issuer for the deployment, whatever address each instance listens on.
    JWT_ISSUER: ISSUER,
    RESOURCE_CLIENTS: `${CLIENT_ID}:${clientSecret}`,
    REFRESH_REUSE_GRACE: String(GRACE_S),
    LOG_LEVEL: 'warn',
    ...NO_RATE_LIMITS,
  }
  const instances: Record<'a' | 'b', VouchInstance> = {
    a: await createInstance('a', { ...shared, DATA_DIR: path.join(dataDir, 'a') }),
    b: await createInstance('b', { ...shared, DATA_DIR: path.join(dataDir, 'b') }),
  }
  for (const instance of Object.values(instances)) {
    cleanups.push(() => instance.stop())
    await instance.start()
  }
  log(`instances a ${instances.a.base}, b ${instances.b.base}; redis :${redis.port}; database through proxy :${proxy.port}`)

  // The verifier follows b's feed (b is the instance killed), with a as the other instance of the deployment.
  const verifier: Verifier = createVerifier({
    vouchUrl: [instances.b.base, instances.a.base],
    issuer: ISSUER,
    audience: 'vouch',
    clientId: CLIENT_ID,
    clientSecret,
  })
  cleanups.push(() => verifier.close())
  await verifier.ready(10_000)

  const clients = { a: createJsonClient(instances.a.base, 20_000), b: createJsonClient(instances.b.base, 20_000) }
  cleanups.push(() => { clients.a.close(); clients.b.close() })
  const backends: Backend[] = (['a', 'b'] as const).map((name) => ({
    name, client: clients[name], get up () { return instances[name].up },
  }))
  const h = new Harness(ledger, backends, verifier, rng, now, () => ({ phase, faults: [...activeFaults] }))

  // --- accounts and traffic ---------------------------------------------------------------
  const accounts: Account[] = []
  for (let i = 0; i < Math.ceil(vus / 2); i++) {
    const email = `chaos-${i}-${randomBytes(3).toString('hex')}@example.com`
    const { answer } = await h.send(h.backend('a'), {
      method: 'POST', path: '/auth/register', route: 'POST /auth/register', body: { email, password: PASSWORDS[0] },
    })
    if (answer.status !== 201) throw new Error(`cannot register ${email}: ${answer.status} ${JSON.stringify(answer.body)}`)
    accounts.push({ id: answer.body.user.id, email, password: 0 })
  }
  const users = Array.from({ length: vus }, (_, i) => new VirtualUser(h, accounts[Math.floor(i / 2)]!, i, {
    graceMs: settings.graceMs, thinkMs: [150, 350],
  }))
  h.startProbes(settings.propagationMs + 100)
  // Users arrive over the warm-up, not all at once (their first sign-ins are argon2 hashes).
  const running = [
    ...users.map(async (user) => { await sleep(rng() * plan.warmupS * 1000); await user.run() }),
    verifierWorker(h, users, 25),
  ]

  // --- faults, one after another ----------------------------------------------------------
  const hold = async (name: string, seconds: number) => {
    phase = name
    log(name)
    await sleep(seconds * 1000)
  }
  const fault = async (kind: FaultKind, label: string, inject: () => Promise<void> | void, undo: () => Promise<void> | void, target?: Target) => {
    const window: FaultWindow = { kind, start: now(), injected: NaN, end: NaN, recovered: NaN, ...(target !== undefined && { target }) }
    ledger.faults.push(window)
    phase = label
    activeFaults.add(label)
    await inject()
    window.injected = now()
    log(`${label}: injected`)
    await sleep(plan.holdS * 1000)
    window.end = now()
    await undo()
    window.recovered = now()
    activeFaults.delete(label)
    log(`${label}: undone, recovered in ${((window.recovered - window.end) / 1000).toFixed(1)} s`)
    await hold(`after ${label}`, plan.recoverS)
  }
  await hold('warm-up', plan.warmupS)
  await hold('baseline', plan.baselineS)
  await fault('instance-kill', 'kill b', () => instances.b.kill(), () => instances.b.start(), 'b')
  await fault('redis-stop', 'redis stopped', () => redis.stop(), () => redis.start())
  await fault('redis-freeze', 'redis frozen', () => redis.freeze(), () => redis.thaw())
  await fault('db-cut', 'database cut', () => proxy.cut(), () => proxy.start())
  await hold('final', plan.finalS)

  // --- the end ------------------------------------------------------------------------------
  h.stopping = true
  phase = 'end checks'
  log('traffic stopped; end checks')
  await Promise.all(running)
  await h.settle()
  await endChecks(h)

  const db = createDb(database.url, { pool: { poolSize: 2, statementTimeout: 5000, connectTimeout: 5000 } })
  cleanups.push(() => db.$disconnect())
  const versions = await readVersions(db, accounts.map((account) => account.id))

  const results: CheckResult[] = [
    checkRevokedNeverAccepted(ledger, settings),
    checkNoLostIncrement(ledger, versions),
    checkNoForkedChain(ledger, settings),
    checkTheftDetected(ledger),
    checkServerErrors(ledger, settings),
    checkLatency(ledger, settings),
    checkLiveStillWork(ledger),
  ]
  report(results)
  const failed = results.filter((result) => result.violations.length > 0).length
  for (const instance of Object.values(instances)) process.stdout.write(summarizeLog(instance.name, instance.output()))
  if (logsDir !== undefined) {
    await mkdir(logsDir, { recursive: true })
    for (const instance of Object.values(instances)) await writeFile(path.join(logsDir, `vouch-${instance.name}.log`), instance.output())
    await writeFile(path.join(logsDir, 'redis.log'), redis.output())
    log(`server output written to ${logsDir}`)
  }
  if (ledgerFile !== undefined) {
    await writeFile(ledgerFile, JSON.stringify({ seed, entries: ledger.entries, faults: ledger.faults, revocations: ledger.revocations, versions: [...versions] }))
    log(`ledger written to ${ledgerFile}`)
  }
  process.stdout.write(`\n${results.length - failed} passed, ${failed} failed\n`)
  return failed === 0 ? 0 : 1
}

/**
 * After the traffic: the sessions the ledger knows to be alive (no revocation
 * touched them, and none of their requests went unanswered) must still work
 * everywhere, and rotate twice; then, past the grace window, each one's token
 * from two rotations back is replayed (theft: the session must die), and
 * superseded tokens of other sessions are presented (none may refresh).
 */
async function endChecks (h: Harness): Promise<void> {
  await h.sleep(settings.propagationMs + 500)
  const dead = deathTimes(ledger)
  const uncertainSessions = new Set<string>()
  const uncertainUsers = new Set<string>()
  for (const entry of ledger.entries) {
    if (entry.target === 'verifier' || !outcomeUnknown(entry, ledger.faults)) continue
    if (entry.route === 'POST /auth/refresh' && entry.refresh) {
      const session = ledger.refresh.get(entry.refresh)?.sessionId
      if (session) uncertainSessions.add(session)
    } else if (entry.route === 'POST /auth/logout' && entry.access) {
      const session = ledger.access.get(entry.access)?.sessionId
      if (session) uncertainSessions.add(session)
    } else if (entry.route === 'DELETE /auth/sessions/:id' && entry.pathSession) {
      uncertainSessions.add(entry.pathSession)
    } else if (['POST /auth/logout-all', 'POST /auth/password', 'POST /auth/sessions/revoke-others'].includes(entry.route) && entry.userId) {
      uncertainUsers.add(entry.userId)
    }
  }
  const sessionIds = [...new Set([...ledger.refresh.values()].map((info) => info.sessionId))]
  const live: Array<{ sessionId: string, access: string, refresh: string }> = []
  for (const sessionId of sessionIds) {
    const chain = ledger.chainOf(sessionId)
    const [refresh, info] = chain.at(-1)!
    if (uncertainSessions.has(sessionId) || uncertainUsers.has(info.userId) || dead.refresh(refresh) !== undefined) continue
    // Issued while a revocation of its user was in flight: it may have been born dead.
    const issuing = ledger.entries[info.entry]!
    if (ledger.revocations.some((r) => r.kind === 'user' && r.userId === info.userId && issuing.sent < r.answered && issuing.answered > r.sent)) continue
    const access = [...ledger.access].find(([, a]) => a.entry === info.entry)?.[0]
    if (access === undefined || dead.access(access) !== undefined) continue
    live.push({ sessionId, access, refresh })
  }
  const checked = live.sort(() => h.rng() - 0.5).slice(0, 40)
  log(`end: ${live.length} sessions believed live, checking ${checked.length}`)
  const [a, b] = [h.backend('a'), h.backend('b')]
  const ua = (sessionId: string) => h.userAgents.get(sessionId)
  const refreshCall = (token: string, userAgent: string | undefined) => ({
    method: 'POST', path: '/auth/refresh', route: 'POST /auth/refresh', body: { refreshToken: token }, refresh: token, ...(userAgent !== undefined && { userAgent }),
  })

  for (const session of checked) {
    for (const backend of [a, b]) await h.send(backend, { method: 'GET', path: '/auth/me', route: 'GET /auth/me', token: session.access }, 'end', 'live')
    await h.verify(session.access, 'end', 'live')
    let token = session.refresh
    for (const backend of [a, b]) {
      const { answer } = await h.send(backend, refreshCall(token, ua(session.sessionId)), 'end', 'live')
      if (answer.status !== 200) break
      token = answer.body.refreshToken
    }
  }

  await h.sleep(settings.graceMs + 1000)
  const theftChecked = new Set<string>()
  for (const session of checked) {
    const chain = ledger.chainOf(session.sessionId)
    const [latest, info] = chain.at(-1)!
    const old = chain.find(([, other]) => other.segment === info.segment && other.pos === info.pos - 2)
    if (old === undefined) continue
    theftChecked.add(session.sessionId)
    await h.send(a, refreshCall(old[0], 'vouch-chaos thief'), 'end', 'theft-old')
    await h.send(b, refreshCall(latest, ua(session.sessionId)), 'end', 'theft-latest')
  }
  // Superseded tokens of every other session: none may refresh.
  const superseded = sessionIds.filter((id) => !theftChecked.has(id))
    .flatMap((id) => ledger.chainOf(id).slice(0, -1).map(([token]) => ({ token, sessionId: id })))
    .sort(() => h.rng() - 0.5).slice(0, 80)
  for (const { token, sessionId } of superseded) {
    await h.send(h.rng() < 0.5 ? a : b, refreshCall(token, ua(sessionId)), 'end', 'superseded')
  }
}

async function readVersions (db: Db, ids: string[]): Promise<Map<string, number>> {
  const rows = await db.user.findMany({ where: { id: { in: ids } }, select: { id: true, tokenVersion: true } })
  return new Map(rows.map((row) => [row.id, row.tokenVersion]))
}

// --- the report -----------------------------------------------------------------------------

/** The warnings and errors an instance logged, counted by message and error. */
function summarizeLog (name: string, output: string): string {
  const counts = new Map<string, number>()
  for (const line of output.split('\n')) {
    let record: { level?: number, msg?: string, err?: { type?: string, code?: string, message?: string } }
    try { record = JSON.parse(line) } catch { if (line.startsWith('--- ')) continue; record = { level: 50, msg: line.slice(0, 160) } }
    if (record.level === undefined || record.level < 40 || line.trim() === '') continue
    const err = record.err ? ` (${[record.err.type, record.err.code, record.err.message?.trim().split('\n').at(-1)?.slice(0, 100)].filter(Boolean).join(' ')})` : ''
    const key = `${record.level >= 50 ? 'error' : 'warn'}: ${record.msg ?? ''}${err}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  if (counts.size === 0) return `\ninstance ${name}: nothing logged at warn or above\n`
  const lines = [...counts].sort(([, x], [, y]) => y - x).slice(0, 12).map(([key, count]) => `  ${String(count).padStart(5)} × ${key}`)
  return `\ninstance ${name} logged:\n${lines.join('\n')}\n`
}

function row (cells: Array<string | number>): string {
  return `| ${cells.join(' | ')} |`
}

const ms = (value: number) => Number.isNaN(value) ? '–' : value.toFixed(1)

function report (results: CheckResult[]): void {
  const phases: string[] = []
  for (const entry of ledger.entries) if (!phases.includes(entry.phase)) phases.push(entry.phase)
  const out: string[] = ['', '## Requests per phase (HTTP to both instances; the verifier apart)', '',
    row(['phase', 'requests', '2xx', '4xx', '503', 'other 5xx', 'no answer', 'p50 ms', 'p99 ms', 'max ms', 'verify', 'accepted', 'refused', 'failed closed', 'client stall ms']),
    row(Array(15).fill('---'))]
  for (const name of phases) {
    const http = ledger.entries.filter((e) => e.phase === name && e.target !== 'verifier')
    const verify = ledger.entries.filter((e) => e.phase === name && e.target === 'verifier')
    const latencies = http.filter((e) => e.status !== 0).map(latencyOf)
    const count = (test: (status: number) => boolean) => http.filter((e) => test(e.status)).length
    out.push(row([
      name, http.length, count(isSuccess), count((s) => s >= 400 && s < 500), count((s) => s === 503), count((s) => s >= 500 && s !== 503), count((s) => s === 0),
      ms(quantile(latencies, 0.5)), ms(quantile(latencies, 0.99)), ms(quantile(latencies, 1)),
      verify.length, verify.filter((e) => e.status === 200).length, verify.filter((e) => e.status === 401).length, verify.filter((e) => e.status === 503).length,
      ms(stalls.get(name) ?? NaN),
    ]))
  }
  out.push('', 'client stall: the longest this process\'s event loop was held up (a loaded machine); it is part of every latency above.')
  out.push('', '## During each fault: requests that do not need the lost component (sign-in and password changes apart)', '',
    row(['fault', 'held s', 'recovered in s', 'requests', 'p99 ms', 'baseline p99', 'bound', 'sign-in/password', 'p99 ms', 'baseline p99', 'bound']),
    row(Array(11).fill('---')))
  for (const { fault, light, hashing } of latencyRows(ledger, settings)) {
    out.push(row([
      `${fault.kind}${fault.target ? ` ${fault.target}` : ''}`, ((fault.end - fault.start) / 1000).toFixed(1), ((fault.recovered - fault.end) / 1000).toFixed(1),
      light.count, ms(light.p99), ms(light.baselineP99), light.bound.toFixed(0), hashing.count, ms(hashing.p99), ms(hashing.baselineP99), hashing.bound.toFixed(0),
    ]))
  }
  out.push('', '## Checks', '')
  for (const result of results) {
    out.push(`${result.violations.length === 0 ? 'PASS' : 'FAIL'} ${result.name}`)
    out.push(`     ${result.summary}`)
    for (const violation of result.violations.slice(0, 8)) out.push(`     - ${violation}`)
    if (result.violations.length > 8) out.push(`     - … and ${result.violations.length - 8} more`)
  }
  process.stdout.write(`${out.join('\n')}\n`)
}

let code = 1
try {
  code = await main()
} catch (err) {
  log(`the run broke: ${(err as Error).stack ?? err}`)
  process.stdout.write('\n0 passed, 1 failed\n')
} finally {
  await cleanUp()
}
killChildren()
process.exit(code)
