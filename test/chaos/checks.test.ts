/**
 * The chaos run's checks can fail: each is fed a hand-made ledger that
 * breaks it, and one that does not. (The run itself is `npm run chaos`,
 * test/chaos/run.ts.)
 */
import t from 'tap'
import {
  DEFAULT_SETTINGS, checkLatency, checkLiveStillWork, checkNoForkedChain, checkNoLostIncrement, checkRevokedNeverAccepted,
  checkServerErrors, checkTheftDetected,
} from './checks.js'
import { Ledger, deathTimes, outcomeUnknown, type EntryInput, type FaultWindow } from './ledger.js'

const settings = { ...DEFAULT_SETTINGS, graceMs: 3000, minLatencySample: 5 }

const USER = 'user-1'
const SESSION = 'session-1'

function entry (fields: Partial<EntryInput> & Pick<EntryInput, 'route' | 'sent' | 'status'>): EntryInput {
  return { target: 'a', answered: fields.sent + 5, phase: 'test', faults: [], purpose: 'traffic', ...fields }
}

/** A ledger with one sign-in (access A1, refresh R1, issued at 15 ms). */
function signedIn (): Ledger {
  const ledger = new Ledger()
  ledger.record(entry({
    route: 'POST /auth/login', sent: 10, status: 200, userId: USER, issued: { access: 'A1', refresh: 'R1', sessionId: SESSION },
  }))
  return ledger
}

const refresh = (ledger: Ledger, presented: string, next: string, sent: number, fields: Partial<EntryInput> = {}) =>
  ledger.record(entry({
    route: 'POST /auth/refresh', sent, status: 200, refresh: presented, issued: { access: `access-of-${next}`, refresh: next, sessionId: SESSION }, ...fields,
  }))

/** Refused presentations of A1 (to a, b, the verifier) and R1 long after `after`: what check 1 needs to have looked at something. */
function refusedEverywhere (ledger: Ledger, after: number): void {
  for (const target of ['a', 'b'] as const) ledger.record(entry({ route: 'GET /auth/me', target, sent: after + 2000, status: 401, access: 'A1' }))
  ledger.record(entry({ route: 'verify', target: 'verifier', sent: after + 2000, status: 401, access: 'A1' }))
  ledger.record(entry({ route: 'POST /auth/refresh', sent: after + 2000, status: 401, refresh: 'R1' }))
}

t.test('the ledger places refresh tokens in their chain: rotations move on, a re-key starts a segment', async (t) => {
  const ledger = signedIn()
  refresh(ledger, 'R1', 'R2', 20)
  refresh(ledger, 'R1', 'R2', 21) // a duplicate hands back the same token
  ledger.record(entry({ route: 'POST /auth/password', sent: 30, status: 200, access: 'A1', issued: { access: 'A3', refresh: 'K1', sessionId: SESSION } }))
  t.same(ledger.chainOf(SESSION).map(([token, info]) => [token, info.segment, info.pos]), [['R1', 0, 0], ['R2', 0, 1], ['K1', 1, 0]])
  t.equal(ledger.revocations.length, 1, 'the password change is a revocation of the user')
  const dead = deathTimes(ledger)
  t.equal(dead.refresh('R2'), 35, 'tokens issued before it was sent die when it answers')
  t.equal(dead.refresh('K1'), undefined, 'the pair it returned lives')
})

t.test('check 1 fails when a revoked access token is accepted after the bound, or a revoked refresh token refreshes', async (t) => {
  const accepted = signedIn()
  accepted.record(entry({ route: 'POST /auth/logout', sent: 20, status: 204, access: 'A1' })) // answered at 25
  accepted.record(entry({ route: 'GET /auth/me', target: 'b', sent: 900, status: 200, access: 'A1' })) // within 1 s: allowed
  refusedEverywhere(accepted, 25)
  t.same(checkRevokedNeverAccepted(accepted, settings).violations, [], 'refused after the bound, accepted only within it')

  const late = signedIn()
  late.record(entry({ route: 'POST /auth/logout-all', sent: 20, status: 204, access: 'A1' }))
  refusedEverywhere(late, 25)
  late.record(entry({ route: 'verify', target: 'verifier', sent: 1100, status: 200, access: 'A1' }))
  const violations = checkRevokedNeverAccepted(late, settings).violations
  t.equal(violations.length, 1)
  t.match(violations[0], /verify on verifier .* accepted an access token revoked at 0\.025 s/)

  const refreshed = signedIn()
  refreshed.record(entry({ route: 'DELETE /auth/sessions/:id', sent: 20, status: 204, access: 'A1', pathSession: SESSION }))
  refusedEverywhere(refreshed, 25)
  refresh(refreshed, 'R1', 'R2', 30)
  t.matchOnly(checkRevokedNeverAccepted(refreshed, settings).violations, [/refreshed with a refresh token revoked/])

  const concurrent = new Ledger()
  concurrent.record(entry({ route: 'POST /auth/login', sent: 10, status: 200, userId: USER, issued: { access: 'A0', refresh: 'R0', sessionId: 'other' } }))
  concurrent.record(entry({ route: 'POST /auth/logout-all', sent: 20, answered: 40, status: 204, access: 'A0' }))
  // Issued while the logout-all was in flight: it may be alive, so accepting it is no violation.
  concurrent.record(entry({ route: 'POST /auth/login', sent: 15, answered: 30, status: 200, userId: USER, issued: { access: 'A1', refresh: 'R1', sessionId: SESSION } }))
  concurrent.record(entry({ route: 'GET /auth/me', sent: 5000, status: 200, access: 'A1' }))
  t.matchOnly(checkRevokedNeverAccepted(concurrent, settings).violations, [/too little was checked/], 'and nothing to check is a failure too')
})

t.test('check 2 fails when the database lost or invented a version bump', async (t) => {
  const ledger = signedIn()
  ledger.record(entry({ route: 'POST /auth/logout-all', sent: 20, status: 204, access: 'A1' }))
  ledger.record(entry({ route: 'POST /auth/sessions/revoke-others', sent: 30, status: 200, access: 'A1' }))
  ledger.record(entry({ route: 'POST /auth/logout-all', target: 'b', sent: 40, status: 0, error: 'ECONNRESET', access: 'A1' }))
  t.same(checkNoLostIncrement(ledger, new Map([[USER, 2]])).violations, [])
  t.same(checkNoLostIncrement(ledger, new Map([[USER, 3]])).violations, [], 'the unanswered bump may have landed')
  t.matchOnly(checkNoLostIncrement(ledger, new Map([[USER, 1]])).violations, [/tokenVersion 1 after 2 successful bumps \(1 lost\)/])
  t.matchOnly(checkNoLostIncrement(ledger, new Map([[USER, 4]])).violations, [/tokenVersion 4 but only 2 successful/])
  t.matchOnly(checkNoLostIncrement(signedIn(), new Map([[USER, 0]])).violations, [/no successful version bump/])
})

t.test('check 3 fails when a superseded refresh token refreshes, or one token rotates into two', async (t) => {
  const tagged = (ledger: Ledger) => ledger.record(entry({ route: 'POST /auth/refresh', sent: 99_000, status: 401, refresh: 'R1', purpose: 'end', tag: 'superseded' }))

  const fine = signedIn()
  refresh(fine, 'R1', 'R2', 100)
  refresh(fine, 'R1', 'R2', 2000, { target: 'b' }) // a duplicate within the grace window gets the live token
  refresh(fine, 'R2', 'R3', 2500)
  tagged(fine)
  t.same(checkNoForkedChain(fine, settings).violations, [])

  const twiceOver = signedIn()
  refresh(twiceOver, 'R1', 'R2', 100)
  refresh(twiceOver, 'R2', 'R3', 200)
  refresh(twiceOver, 'R1', 'R2', 300)
  tagged(twiceOver)
  t.matchOnly(checkNoForkedChain(twiceOver, settings).violations, [/superseded twice over/])

  const afterGrace = signedIn()
  refresh(afterGrace, 'R1', 'R2', 100)
  refresh(afterGrace, 'R1', 'R2', 100 + 3000 + 600)
  tagged(afterGrace)
  t.matchOnly(checkNoForkedChain(afterGrace, settings).violations, [/after the 3000 ms grace window/])

  const forked = signedIn()
  refresh(forked, 'R1', 'R2', 100)
  refresh(forked, 'R1', 'R2-other', 110)
  tagged(forked)
  t.matchOnly(checkNoForkedChain(forked, settings).violations, [/rotated into two different tokens/])
})

t.test('check 3b fails when an old token replayed after the grace window does not end its session', async (t) => {
  const ledger = signedIn()
  ledger.record(entry({ route: 'POST /auth/refresh', sent: 100, status: 401, code: 'refresh_token_invalid', refresh: 'R1', purpose: 'end', tag: 'theft-old' }))
  ledger.record(entry({ route: 'POST /auth/refresh', sent: 110, status: 200, refresh: 'R3', purpose: 'end', tag: 'theft-latest' }))
  t.matchOnly(checkTheftDetected(ledger).violations, [/answered 401 refresh_token_invalid, not 401 refresh_token_reused/, /live token still refreshes/])

  const detected = signedIn()
  detected.record(entry({ route: 'POST /auth/refresh', sent: 100, status: 401, code: 'refresh_token_reused', refresh: 'R1', purpose: 'end', tag: 'theft-old' }))
  detected.record(entry({ route: 'POST /auth/refresh', sent: 110, status: 401, code: 'refresh_token_invalid', refresh: 'R3', purpose: 'end', tag: 'theft-latest' }))
  t.same(checkTheftDetected(detected).violations, [])
  t.matchOnly(checkTheftDetected(signedIn()).violations, [/no session had a chain/])
})

const cut: FaultWindow = { kind: 'db-cut', start: 1000, injected: 1001, end: 3000, recovered: 3000 }
const kill: FaultWindow = { kind: 'instance-kill', target: 'b', start: 5000, injected: 5001, end: 7000, recovered: 9000 }

t.test('check 4 fails on a 500, a 503 while the database was up, or an unanswered request to a live instance', async (t) => {
  const ledger = new Ledger()
  ledger.faults.push(cut, kill)
  ledger.record(entry({ route: 'GET /auth/me', sent: 1500, status: 503, code: 'service_unavailable' }))
  ledger.record(entry({ route: 'GET /auth/me', sent: 3000 + settings.dbRecoveryMs - 100, status: 503, code: 'service_unavailable' }))
  ledger.record(entry({ route: 'GET /auth/me', target: 'b', sent: 4990, answered: 5002, status: 0, error: 'ECONNRESET' }))
  ledger.record(entry({ route: 'GET /auth/me', target: 'b', sent: 8000, status: 0, error: 'ECONNREFUSED' }))
  t.same(checkServerErrors(ledger, settings).violations, [])

  ledger.record(entry({ route: 'POST /auth/refresh', sent: 2000, status: 500, code: 'internal_error' }))
  ledger.record(entry({ route: 'GET /auth/me', sent: 3000 + settings.dbRecoveryMs + 100, status: 503 }))
  ledger.record(entry({ route: 'GET /auth/me', target: 'a', sent: 6000, status: 0, error: 'ECONNRESET' }))
  ledger.record(entry({ route: 'GET /auth/me', target: 'b', sent: 9500, status: 0, error: 'no answer within 20000 ms' }))
  t.matchOnly(checkServerErrors(ledger, settings).violations, [/500 internal_error/, /503 .*while the database was up/, /no answer \(ECONNRESET\)/, /no answer \(no answer within/])
})

t.test('a 503 changed nothing unless its request was in flight when the database was cut', async (t) => {
  const base = { route: 'POST /auth/logout-all', status: 503, phase: 'test', faults: [], purpose: 'traffic' as const, target: 'a' as const, id: 0 }
  t.equal(outcomeUnknown({ ...base, sent: 990, answered: 1010 }, [cut]), true)
  t.equal(outcomeUnknown({ ...base, sent: 1500, answered: 1510 }, [cut]), false)
  t.equal(outcomeUnknown({ ...base, status: 0, sent: 100, answered: 110 }, [cut]), true)
  t.equal(outcomeUnknown({ ...base, status: 401, sent: 990, answered: 1010 }, [cut]), false)
})

t.test('check 5 fails when requests that do not need the lost component are slow during its fault', async (t) => {
  const make = (latency: number, route = 'GET /auth/me', target: 'a' | 'b' | 'verifier' = 'a') => (ledger: Ledger, i: number) =>
    ledger.record(entry({ route, target, sent: 1100 + i, answered: 1100 + i + latency, status: 200 }))
  const ledger = new Ledger()
  ledger.faults.push(cut)
  for (let i = 0; i < 10; i++) make(5, 'GET /health/live')(ledger, i)
  for (let i = 0; i < 10; i++) make(2000, 'GET /auth/me')(ledger, i) // needs the database: not counted
  t.same(checkLatency(ledger, settings).violations, [])
  make(500, 'GET /.well-known/jwks.json')(ledger, 11)
  t.matchOnly(checkLatency(ledger, settings).violations, [/db-cut: p99 500\.0 ms over 11 requests/])
  t.match(checkLatency(ledger, settings).violations[0], /the 1 at or over p99 were sent from 0\.110 s to 0\.110 s after the injection, the slowest \(500\.0 ms\) #\d+ GET \/\.well-known\/jwks\.json on a/,
    'and says when the tail was sent, to tell one stall of the machine from a slow fault')

  const killed = new Ledger()
  killed.faults.push(kill)
  for (let i = 0; i < 3; i++) killed.record(entry({ route: 'GET /auth/me', sent: 5100 + i, status: 200 }))
  for (let i = 0; i < 30; i++) killed.record(entry({ route: 'GET /auth/me', target: 'b', sent: 5100 + i, answered: 9000, status: 200 }))
  t.matchOnly(checkLatency(killed, settings).violations, [/only 3 requests to measure/], "the killed instance's requests do not count")
})

t.test('check 5 compares with the baseline only when the machine misses the bound without any fault', async (t) => {
  const ledger = new Ledger()
  ledger.faults.push(kill)
  const run = (phase: string, from: number, latency: number, route = 'GET /auth/me') => {
    for (let i = 0; i < 20; i++) ledger.record(entry({ route, phase, sent: from + i, answered: from + i + latency, status: 200 }))
  }
  run('baseline', 100, 300)
  run('baseline', 100, 900, 'POST /auth/login')
  run('kill b', 5100, 400)
  run('kill b', 5100, 1300, 'POST /auth/login')
  t.same(checkLatency(ledger, settings).violations, [], 'a loaded machine: 1.5 times the baseline')
  run('kill b', 5200, 2000)
  run('kill b', 5200, 2000, 'POST /auth/login')
  t.matchOnly(checkLatency(ledger, settings).violations, [
    /kill b: p99 2000\.0 ms over 40 requests \(bound 450 ms, raised from 100 ms: baseline p99 300\.0 ms\)/,
    /sign-in\/password p99 2000\.0 ms over 40 requests \(bound 1350 ms/,
  ])
})

t.test('check 6 fails when a token no revocation touched is refused at the end', async (t) => {
  const ledger = signedIn()
  ledger.record(entry({ route: 'GET /auth/me', sent: 100, status: 200, access: 'A1', purpose: 'end', tag: 'live' }))
  t.same(checkLiveStillWork(ledger).violations, [])
  ledger.record(entry({ route: 'GET /auth/me', target: 'b', sent: 110, status: 401, code: 'token_revoked', access: 'A1', purpose: 'end', tag: 'live' }))
  t.matchOnly(checkLiveStillWork(ledger).violations, [/answered 401 token_revoked/])
  t.matchOnly(checkLiveStillWork(new Ledger()).violations, [/no live session/])
})
