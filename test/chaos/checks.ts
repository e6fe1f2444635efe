/**
 * The chaos run's assertions, as pure functions of the ledger (and, for the
 * increments, the tokenVersions read from the database at the end). Each
 * returns its violations; a check with nothing to look at fails too, since a
 * check that cannot fail proves nothing. test/chaos/checks.test.ts feeds
 * each one a ledger that breaks it.
 */
import {
  BEARER_ROUTES, HASHING_ROUTES, VERSION_BUMPS, deathTimes, isSuccess, latencyOf, outcomeUnknown, quantile,
  type Entry, type FaultWindow, type Ledger,
} from './ledger.js'

export interface CheckResult {
  name: string
  violations: string[]
  /** What was looked at (printed with the result). */
  summary: string
}

export interface CheckSettings {
  /** How long after a revocation's answer an access token may still be accepted somewhere. */
  propagationMs: number
  /** REFRESH_REUSE_GRACE, in ms. */
  graceMs: number
  /** After the database comes back, 503s are still allowed for this long. */
  dbRecoveryMs: number
  /** Bound on the p99 latency of requests that do not need the lost component. */
  p99Ms: number
  /** The same for sign-in and password changes (argon2). */
  hashingP99Ms: number
  /** The phase whose latencies are the fault-free reference. */
  baselinePhase: string
  /** Bounds rise to this many times the baseline's p99 when the baseline already misses them (a loaded machine). */
  loadFactor: number
  /** Fewest requests a fault window's latency sample must have. */
  minLatencySample: number
}

export const DEFAULT_SETTINGS: CheckSettings = {
  propagationMs: 1000, graceMs: 10_000, dbRecoveryMs: 3000, p99Ms: 100, hashingP99Ms: 1000, baselinePhase: 'baseline', loadFactor: 1.5, minLatencySample: 20,
}

type LedgerView = Pick<Ledger, 'entries' | 'access' | 'refresh' | 'revocations' | 'faults'>

const at = (ms: number) => `${(ms / 1000).toFixed(3)} s`
const describe = (entry: Entry) =>
  `#${entry.id} ${entry.route} on ${entry.target} sent at ${at(entry.sent)} (${entry.phase}${entry.faults.length ? `, ${entry.faults.join('+')}` : ''}${entry.purpose === 'traffic' ? '' : `, ${entry.purpose}`})`

/** 1. No revoked token is accepted more than `propagationMs` after its revocation answered (refresh tokens: at all). */
export function checkRevokedNeverAccepted (ledger: LedgerView, settings: CheckSettings): CheckResult {
  const dead = deathTimes(ledger)
  const violations: string[] = []
  const checked = { a: 0, b: 0, verifier: 0, refresh: 0 }
  const late = new Map<string, { count: number, worst: number }>()
  const tally = (entry: Entry, deadAt: number) => {
    const key = `${entry.phase}/${entry.target}`
    const known = late.get(key) ?? { count: 0, worst: 0 }
    late.set(key, { count: known.count + 1, worst: Math.max(known.worst, entry.sent - deadAt) })
  }
  for (const entry of ledger.entries) {
    if (entry.access !== undefined && (BEARER_ROUTES.has(entry.route) || entry.route === 'verify')) {
      const deadAt = dead.access(entry.access)
      if (deadAt !== undefined && entry.sent > deadAt + settings.propagationMs) {
        checked[entry.target] += 1
        if (isSuccess(entry.status)) {
          violations.push(`${describe(entry)}: accepted an access token revoked at ${at(deadAt)} (${(entry.sent - deadAt).toFixed(0)} ms earlier)`)
          tally(entry, deadAt)
        }
      }
    }
    if (entry.refresh !== undefined && entry.route === 'POST /auth/refresh') {
      const deadAt = dead.refresh(entry.refresh)
      if (deadAt !== undefined && entry.sent > deadAt) {
        checked.refresh += 1
        if (isSuccess(entry.status)) {
          violations.push(`${describe(entry)}: refreshed with a refresh token revoked at ${at(deadAt)}`)
          tally(entry, deadAt)
        }
      }
    }
  }
  const sessions = ledger.revocations.filter((r) => r.kind === 'session').length
  const users = ledger.revocations.length - sessions
  if (checked.a === 0 || checked.b === 0 || checked.verifier === 0 || checked.refresh === 0) {
    violations.push(`too little was checked: dead tokens presented to a ${checked.a}, b ${checked.b}, the verifier ${checked.verifier}, dead refresh tokens ${checked.refresh}`)
  }
  return {
    name: `no revoked token accepted more than ${settings.propagationMs} ms after its revocation answered`,
    violations,
    summary: `${sessions} session and ${users} user revocations; dead access tokens presented after the bound: a ${checked.a}, b ${checked.b}, verifier ${checked.verifier}; dead refresh tokens presented: ${checked.refresh}` +
      (late.size === 0 ? '' : `\n     accepted late (phase/target: count, worst ms after the revocation): ${[...late].map(([key, { count, worst }]) => `${key}: ${count}, ${worst.toFixed(0)}`).join('; ')}`),
  }
}

/** 2. Every successful version bump is in the database: successes ≤ tokenVersion ≤ successes + bumps of unknown outcome. */
export function checkNoLostIncrement (ledger: LedgerView, versions: Map<string, number>): CheckResult {
  const done = new Map<string, number>()
  const unknown = new Map<string, number>()
  for (const entry of ledger.entries) {
    if (!VERSION_BUMPS.has(entry.route) || entry.userId === undefined) continue
    if (isSuccess(entry.status)) done.set(entry.userId, (done.get(entry.userId) ?? 0) + 1)
    else if (outcomeUnknown(entry, ledger.faults)) unknown.set(entry.userId, (unknown.get(entry.userId) ?? 0) + 1)
  }
  const violations: string[] = []
  for (const userId of done.keys()) {
    if (!versions.has(userId)) violations.push(`user ${userId}: no tokenVersion read from the database`)
  }
  let bumps = 0
  for (const [userId, version] of versions) {
    const least = done.get(userId) ?? 0
    const most = least + (unknown.get(userId) ?? 0)
    bumps += least
    if (version < least) violations.push(`user ${userId}: tokenVersion ${version} after ${least} successful bumps (${least - version} lost)`)
    else if (version > most) violations.push(`user ${userId}: tokenVersion ${version} but only ${least} successful and ${most - least} unanswered bumps`)
  }
  if (bumps === 0) violations.push('no successful version bump to count')
  const uncertain = [...unknown.values()].reduce((sum, n) => sum + n, 0)
  return {
    name: 'no lost increment: each user\'s tokenVersion counts its successful bumps',
    violations,
    summary: `${versions.size} users, ${bumps} successful bumps, ${uncertain} of unknown outcome (unanswered, or cut off by the database cut)`,
  }
}

/**
 * 3. No forked refresh chain: a successful refresh of token P is legitimate
 * only while P is the session's live token, or its parent within the grace
 * window (then it hands back the live token). Anything else means a second
 * live token for the session.
 */
export function checkNoForkedChain (ledger: LedgerView, settings: CheckSettings): CheckResult {
  const successes = ledger.entries
    .filter((e) => e.route === 'POST /auth/refresh' && isSuccess(e.status) && e.refresh !== undefined && e.issued !== undefined)
    .sort((x, y) => x.answered - y.answered)
  // The first answered successor of each token, and when it arrived.
  const successor = new Map<string, { token: string, at: number }>()
  for (const entry of successes) if (!successor.has(entry.refresh!)) successor.set(entry.refresh!, { token: entry.issued!.refresh, at: entry.answered })
  const bySession = new Map<string, Array<{ segment: number, pos: number, issued: number }>>()
  for (const info of ledger.refresh.values()) {
    const list = bySession.get(info.sessionId) ?? []
    list.push(info)
    bySession.set(info.sessionId, list)
  }

  const violations: string[] = []
  for (const entry of successes) {
    const presented = entry.refresh!
    const first = successor.get(presented)!
    if (first.token !== entry.issued!.refresh) {
      violations.push(`${describe(entry)}: the same refresh token was rotated into two different tokens`)
      continue
    }
    const info = ledger.refresh.get(presented)
    if (info === undefined) continue
    const newer = (bySession.get(info.sessionId) ?? []).find((other) =>
      other.issued < entry.sent && (other.segment > info.segment || (other.segment === info.segment && other.pos >= info.pos + 2)))
    if (newer !== undefined) {
      violations.push(`${describe(entry)}: refreshed with a token superseded twice over (a newer one was issued at ${at(newer.issued)})`)
    } else if (entry.sent > first.at + settings.graceMs + 500) {
      violations.push(`${describe(entry)}: refreshed with a token rotated at ${at(first.at)}, after the ${settings.graceMs} ms grace window`)
    }
  }
  const superseded = ledger.entries.filter((e) => e.tag === 'superseded' || e.tag === 'theft-old').length
  if (successes.length === 0) violations.push('no successful refresh to check')
  if (superseded === 0) violations.push('no superseded refresh token was presented at the end')
  return {
    name: 'no forked refresh chain: one live refresh token per session',
    violations,
    summary: `${successes.length} successful refreshes of ${new Set(successes.map((e) => e.refresh)).size} distinct tokens; ${superseded} superseded tokens presented after the grace window at the end`,
  }
}

/**
 * 3b. Theft cannot hide (SPEC, refresh-token theft): a refresh token
 * superseded two rotations ago, presented after the grace window, answers
 * refresh_token_reused and revokes its session, so the live token dies too.
 */
export function checkTheftDetected (ledger: LedgerView): CheckResult {
  const violations: string[] = []
  const old = ledger.entries.filter((e) => e.tag === 'theft-old')
  const latest = ledger.entries.filter((e) => e.tag === 'theft-latest')
  for (const entry of old) {
    if (entry.status !== 401 || entry.code !== 'refresh_token_reused') {
      violations.push(`${describe(entry)}: a token two rotations old answered ${entry.status} ${entry.code ?? entry.error ?? ''}, not 401 refresh_token_reused`)
    }
  }
  for (const entry of latest) {
    if (isSuccess(entry.status)) violations.push(`${describe(entry)}: the live token still refreshes after its chain's old token was replayed`)
  }
  if (old.length === 0) violations.push('no session had a chain long enough to check')
  return {
    name: 'refresh theft cannot hide: an old token replayed after the grace window revokes the session',
    violations,
    summary: `${old.length} sessions: a token two rotations old replayed, then the live one tried`,
  }
}

/** The time windows in which a failure is explained by a fault. */
function explained (ledger: LedgerView, entry: Entry, settings: CheckSettings): { unavailable: boolean, unanswered: boolean } {
  const overlaps = (start: number, end: number) => entry.sent <= end && entry.answered >= start
  let unavailable = false
  let unanswered = false
  for (const fault of ledger.faults) {
    if (fault.kind === 'db-cut' && overlaps(fault.start, fault.end + settings.dbRecoveryMs)) unavailable = true
    if (fault.kind === 'instance-kill' && fault.target === entry.target && overlaps(fault.start, fault.recovered)) unanswered = true
  }
  return { unavailable, unanswered }
}

/** 4. No 5xx but 503, 503 only around a database cut, no request unanswered but by the killed instance. */
export function checkServerErrors (ledger: LedgerView, settings: CheckSettings): CheckResult {
  const violations: string[] = []
  let unavailable = 0
  let unanswered = 0
  let requests = 0
  for (const entry of ledger.entries) {
    if (entry.target === 'verifier') continue
    requests += 1
    const why = explained(ledger, entry, settings)
    if (entry.status >= 500 && entry.status !== 503) {
      violations.push(`${describe(entry)}: ${entry.status} ${entry.code ?? ''}`)
    } else if (entry.status === 503) {
      unavailable += 1
      if (!why.unavailable) violations.push(`${describe(entry)}: 503 ${entry.code ?? ''} while the database was up`)
    } else if (entry.status === 0) {
      unanswered += 1
      if (!why.unanswered) violations.push(`${describe(entry)}: no answer (${entry.error ?? 'unknown'})`)
    }
  }
  if (requests === 0) violations.push('no request was made')
  return {
    name: 'no 5xx but 503, and 503 only while the database was cut',
    violations,
    summary: `${requests} requests: ${unavailable} answered 503, ${unanswered} unanswered (the killed instance's)`,
  }
}

/** Which requests of a fault window do not need the lost component. */
export function independentOf (fault: FaultWindow, entry: Entry): boolean {
  switch (fault.kind) {
    // Redis is optional: everything must work without it.
    case 'redis-stop':
    case 'redis-freeze':
      return true
    case 'instance-kill':
      return entry.target !== fault.target
    // Liveness, the key set and local verification need no database.
    case 'db-cut':
      return entry.target === 'verifier' || entry.route === 'GET /health/live' || entry.route === 'GET /.well-known/jwks.json'
  }
}

export interface LatencySample {
  count: number
  p99: number
  /** The same requests' p99 in the fault-free baseline phase. */
  baselineP99: number
  /** What p99 must stay under. */
  bound: number
  /** The requests at or over the p99, slowest first (to tell one stall of the machine from a slow fault). */
  tail: Entry[]
}

export interface LatencyRow {
  fault: FaultWindow
  /** Requests sent during the fault that do not need the lost component, but sign-in and password changes. */
  light: LatencySample
  /** Sign-in and password changes among them. */
  hashing: LatencySample
}

/**
 * The p99 latency, per fault, of the requests sent during it that do not
 * need the lost component, and its bound: `p99Ms` for most requests and
 * `hashingP99Ms` for sign-in and password changes (an argon2 hash at the
 * OWASP parameters each, queued on two shared cores: their latency is the
 * hash's, not the fault's). On a machine so loaded that the same requests
 * already miss the bound in the fault-free baseline, the bound becomes
 * `loadFactor` times their baseline p99 instead, so that the check still
 * sees a fault's stall and not the machine's load.
 */
export function latencyRows (ledger: LedgerView, settings: CheckSettings): LatencyRow[] {
  const baseline = ledger.entries.filter((e) => e.phase === settings.baselinePhase && e.status !== 0)
  const sample = (entries: Entry[], baseEntries: Entry[], absolute: number): LatencySample => {
    const p99 = quantile(entries.map(latencyOf), 0.99)
    const baselineP99 = quantile(baseEntries.map(latencyOf), 0.99)
    const bound = Number.isNaN(baselineP99) ? absolute : Math.max(absolute, settings.loadFactor * baselineP99)
    const tail = entries.filter((e) => latencyOf(e) >= p99).sort((x, y) => latencyOf(y) - latencyOf(x))
    return { count: entries.length, p99, baselineP99, bound, tail }
  }
  return ledger.faults.map((fault) => {
    const during = ledger.entries.filter((e) => e.sent >= fault.start && e.sent <= fault.end && e.status !== 0 && independentOf(fault, e))
    const before = baseline.filter((e) => independentOf(fault, e))
    const hashing = (e: Entry) => HASHING_ROUTES.has(e.route)
    return {
      fault,
      light: sample(during.filter((e) => !hashing(e)), before.filter((e) => !hashing(e)), settings.p99Ms),
      hashing: sample(during.filter(hashing), before.filter(hashing), settings.hashingP99Ms),
    }
  })
}

/** 5. During each fault, the p99 latency of the requests that do not need the lost component stays under its bound (see latencyRows). */
export function checkLatency (ledger: LedgerView, settings: CheckSettings): CheckResult {
  const violations: string[] = []
  const rows = latencyRows(ledger, settings)
  const nameOf = (fault: FaultWindow) => `${fault.kind}${fault.target ? ` ${fault.target}` : ''}`
  for (const { fault, light, hashing } of rows) {
    // When the tail was sent: all within a fraction of a second is one stall, spread over the window a slow fault.
    const since = (sent: number) => `${((sent - fault.injected) / 1000).toFixed(3)} s`
    const over = (what: string, s: LatencySample, absolute: number) => {
      const raised = s.bound > absolute ? `, raised from ${absolute} ms: baseline p99 ${s.baselineP99.toFixed(1)} ms` : ''
      const sent = s.tail.map((e) => e.sent)
      const slowest = s.tail[0]
      const tail = slowest === undefined ? '' : `; the ${s.tail.length} at or over p99 were sent from ${since(Math.min(...sent))} to ${since(Math.max(...sent))}` +
        ` after the injection, the slowest (${latencyOf(slowest).toFixed(1)} ms) ${describe(slowest)}`
      return `${nameOf(fault)}: ${what}p99 ${s.p99.toFixed(1)} ms over ${s.count} requests (bound ${s.bound.toFixed(0)} ms${raised})${tail}`
    }
    if (light.count < settings.minLatencySample) violations.push(`${nameOf(fault)}: only ${light.count} requests to measure`)
    else if (!(light.p99 < light.bound)) violations.push(over('', light, settings.p99Ms))
    if (hashing.count > 0 && !(hashing.p99 < hashing.bound)) violations.push(over('sign-in/password ', hashing, settings.hashingP99Ms))
  }
  if (rows.length === 0) violations.push('no fault was injected')
  return {
    name: `p99 latency under ${settings.p99Ms} ms for requests that do not need the lost component`,
    violations,
    summary: rows.map(({ fault, light }) => `${nameOf(fault)} ${light.p99.toFixed(1)} ms (${light.count})`).join(', '),
  }
}

/** 6. What the ledger believes alive still works at the end: nothing was revoked that no one asked for, and the checks above had live tokens to compare with. */
export function checkLiveStillWork (ledger: LedgerView): CheckResult {
  const live = ledger.entries.filter((e) => e.tag === 'live')
  const violations = live.filter((e) => !isSuccess(e.status))
    .map((e) => `${describe(e)}: a token no revocation touched answered ${e.status} ${e.code ?? e.error ?? ''}`)
  if (live.length === 0) violations.push('no live session was left to check')
  return {
    name: 'live tokens still work at the end (on both instances, the verifier, and refresh)',
    violations,
    summary: `${live.length} requests with tokens of ${new Set(live.map((e) => e.access ?? e.refresh)).size} live tokens`,
  }
}
