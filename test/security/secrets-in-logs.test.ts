/**
 * No secret ever reaches a log line or a response it does not belong in.
 *
 * The app logs at level `trace` into a capturing destination while a full
 * scenario runs: sign-up, sign-in, refresh, a replay after the grace window,
 * a password change, a reset by email (the development outbox), failed
 * sign-ins, bad and revoked tokens, a 413, a 415 and malformed JSON bodies
 * carrying passwords, sign-out. Every secret seen along the way is collected:
 * passwords (right, wrong and the ones inside rejected bodies), password
 * hashes and refresh/reset token hashes read from the database, access
 * tokens, refresh tokens and their secret parts, reset tokens and theirs.
 *
 * Then: no log line contains any of them; no response contains any of them
 * either, except a TokenPair's own `accessToken`/`refreshToken`. Headers are
 * not logged by default; wherever an `authorization` header does appear in a
 * log line it is `[redacted]`, and logging a request's headers through the
 * app's logger redacts it.
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { createLogger, BODY_LIMIT } from '../../src/app.js'
import { createTestApp } from '../helpers/app.js'
import { bearer, uniqueEmail, type TokenPair } from '../helpers/client.js'

const lines: string[] = []
const logger = createLogger('trace', { write: (line: string) => { lines.push(line) } })
const { app, db, dir, clock, config } = await createTestApp(t, { logger })

/** name → secret value. Every value must stay out of the logs and out of unrelated responses. */
const secrets = new Map<string, string>()
function secret (name: string, value: string | null | undefined) {
  if (value === null || value === undefined || value === '') return
  if (value.length < 8) throw new Error(`${name} is too short to be searched for reliably`)
  secrets.set(name, value)
}
function tokens (name: string, pair: TokenPair) {
  secret(`${name} access token`, pair.accessToken)
  secret(`${name} refresh token`, pair.refreshToken)
  secret(`${name} refresh secret`, pair.refreshToken.slice(pair.refreshToken.indexOf('.') + 1))
  // The signature part alone: a log that printed a token's signature would leak it just as well.
  secret(`${name} access token signature`, pair.accessToken.split('.')[2])
}

interface Recorded { label: string, res: LightMyRequestResponse, pair: boolean }
const responses: Recorded[] = []
let attacks = 0
/** The log lines of the request that followed the mailed reset link (checked on their own). */
const linkLines = { start: 0, end: 0 }
/** The subtest the scenario's assertions belong to. */
let active: Test = t

async function send (label: string, options: { method?: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, raw?: string,
  contentType?: string, headers?: Record<string, string> }, expected: number): Promise<LightMyRequestResponse> {
  attacks++
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
  const res = await app.inject({
    method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
    url: options.url,
    headers: { ...(payload !== undefined && { 'content-type': options.contentType ?? 'application/json' }), ...options.headers },
    ...(payload !== undefined && { payload }),
  })
  active.equal(res.statusCode, expected, `${label}: ${expected}`)
  const pair = res.statusCode < 300 && /"refreshToken"/.test(res.body)
  responses.push({ label, res, pair })
  return res
}

async function pairOf (label: string, res: LightMyRequestResponse): Promise<TokenPair> {
  const body = res.json() as TokenPair
  tokens(label, body)
  return body
}

async function recordHashes (userId: string, stage: string) {
  const user = await db.user.findUniqueOrThrow({ where: { id: userId }, select: { passwordHash: true } })
  secret(`password hash ${stage}`, user.passwordHash)
  const sessions = await db.session.findMany({ where: { userId }, select: { id: true, refreshTokenHash: true, previousRefreshTokenHash: true } })
  for (const session of sessions) {
    secret(`refresh token hash of ${session.id} ${stage}`, session.refreshTokenHash)
    secret(`previous refresh token hash of ${session.id} ${stage}`, session.previousRefreshTokenHash)
  }
  const resets = await db.passwordReset.findMany({ where: { userId }, select: { tokenHash: true } })
  for (const reset of resets) secret(`reset token hash ${stage}`, reset.tokenHash)
}

const outbox = path.join(dir, 'outbox')
const outboxFiles = async () => (await readdir(outbox).catch(() => [] as string[])).sort()

async function resetTokenFromOutbox (seen: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    // The newest messages since `seen`: the reset mail is the one with a link carrying a token.
    for (const file of (await outboxFiles()).slice(seen).reverse()) {
      const eml = (await readFile(path.join(outbox, file), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=')
      const match = /token=([^\s&]+)/.exec(eml)
      if (match) return decodeURIComponent(match[1]!)
    }
    await sleep(25)
  }
  throw new Error('no reset message arrived in the outbox')
}

t.test('a full scenario at log level trace', async (t) => {
  active = t
  const email = uniqueEmail('secrets')
  const passwords = {
    first: 'first secret passphrase 4d1c',
    second: 'second secret passphrase 9e27',
    third: 'third secret passphrase 0b8a',
    wrong: 'wrong guess passphrase 7f31',
    unknown: 'unknown-account passphrase 2c55',
    tooLarge: 'passphrase inside a 413 body 6aa0',
    malformed: 'passphrase inside malformed json 31f9',
    plainText: 'passphrase inside a text body 8d02',
    wrongType: 'passphrase in the email field 5be4',
    weak: 'short7!',
  }
  for (const [name, value] of Object.entries(passwords)) if (value.length >= 8) secret(`password ${name}`, value)

  // Sign-up, sign-in on a second device, refresh.
  const registered = await send('register', { url: '/auth/register', body: { email, password: passwords.first, deviceName: 'phone' } }, 201)
  const phone = await pairOf('register', registered)
  const userId = (registered.json() as { user: { id: string } }).user.id
  await recordHashes(userId, 'after sign-up')
  const laptop = await pairOf('login', await send('login', { url: '/auth/login', body: { email, password: passwords.first, deviceName: 'laptop' } }, 200))
  const laptop2 = await pairOf('refresh', await send('refresh', { url: '/auth/refresh', body: { refreshToken: laptop.refreshToken } }, 200))
  await send('duplicate refresh within grace', { url: '/auth/refresh', body: { refreshToken: laptop.refreshToken } }, 200)
  await recordHashes(userId, 'after refresh')
  await send('me', { url: '/auth/me', headers: bearer(phone.accessToken) }, 200)
  await send('sessions', { url: '/auth/sessions', headers: bearer(phone.accessToken) }, 200)
  await send('jwks', { url: '/.well-known/jwks.json' }, 200)

  // A replay after the grace window: the laptop's session is revoked.
  clock.advance(config.sessions.reuseGraceWindow + 1)
  await send('refresh replay after grace', { url: '/auth/refresh', body: { refreshToken: laptop.refreshToken } }, 401)
  await send('refresh of the revoked session', { url: '/auth/refresh', body: { refreshToken: laptop2.refreshToken } }, 401)
  await send('access token of the revoked session', { url: '/auth/me', headers: bearer(laptop2.accessToken) }, 401)

  // Password change: wrong current password, weak new one, then the real thing.
  await send('password change, wrong current', { url: '/auth/password', body: { currentPassword: passwords.wrong, newPassword: passwords.second }, headers: bearer(phone.accessToken) }, 401)
  await send('password change, weak new', { url: '/auth/password', body: { currentPassword: passwords.first, newPassword: passwords.weak }, headers: bearer(phone.accessToken) }, 400)
  const changed = await pairOf('password change', await send('password change', {
    url: '/auth/password', body: { currentPassword: passwords.first, newPassword: passwords.second }, headers: bearer(phone.accessToken),
  }, 200))
  await recordHashes(userId, 'after the password change')
  await send('old access token after the change', { url: '/auth/me', headers: bearer(phone.accessToken) }, 401)
  await send('old refresh token after the change', { url: '/auth/refresh', body: { refreshToken: phone.refreshToken } }, 401)

  // Failed sign-ins.
  await send('login, wrong password', { url: '/auth/login', body: { email, password: passwords.wrong } }, 401)
  await send('login, old password', { url: '/auth/login', body: { email, password: passwords.first } }, 401)
  await send('login, unknown email', { url: '/auth/login', body: { email: uniqueEmail('nobody'), password: passwords.unknown } }, 401)

  // Bad tokens.
  const [h, p, s] = changed.accessToken.split('.') as [string, string, string]
  await send('garbage bearer', { url: '/auth/me', headers: { authorization: 'Bearer not-a-jwt' } }, 401)
  await send('tampered bearer', { url: '/auth/me', headers: bearer(`${h}.${p}x.${s}`) }, 401)
  await send('signature cut short', { url: '/auth/me', headers: bearer(`${h}.${p}.${s.slice(0, -4)}`) }, 401)
  await send('refresh token as bearer', { url: '/auth/me', headers: bearer(changed.refreshToken) }, 401)
  await send('access token as refresh token', { url: '/auth/refresh', body: { refreshToken: changed.accessToken } }, 401)
  await send('refresh token with a wrong secret', { url: '/auth/refresh', body: { refreshToken: `${changed.sessionId}.${'A'.repeat(43)}` } }, 401)

  // Reset by email, via the development outbox (which already holds the new-device alert of the laptop's sign-in).
  const mailed = (await outboxFiles()).length
  await send('forgot', { url: '/auth/password/forgot', body: { email } }, 202)
  const resetToken = await resetTokenFromOutbox(mailed)
  secret('reset token', resetToken)
  secret('reset secret', resetToken.slice(resetToken.indexOf('.') + 1))
  await recordHashes(userId, 'with a pending reset')
  // The mailed link, followed. With the default RESET_URL it points at this very service: the account page's
  // reset page (200), which reads the token in the browser; the server's log must not keep it.
  const link = new URL(config.mail.resetUrl)
  link.searchParams.set('token', resetToken)
  linkLines.start = lines.length
  await send('following the mailed reset link', { url: `${link.pathname}${link.search}` }, 200)
  linkLines.end = lines.length
  await send('reset, weak password', { url: '/auth/password/reset', body: { token: resetToken, newPassword: passwords.weak } }, 400)
  await send('reset token as bearer', { url: '/auth/me', headers: bearer(resetToken) }, 401)
  await send('reset token as refresh token', { url: '/auth/refresh', body: { refreshToken: resetToken } }, 401)
  await send('reset', { url: '/auth/password/reset', body: { token: resetToken, newPassword: passwords.third } }, 204)
  await send('reset token reused', { url: '/auth/password/reset', body: { token: resetToken, newPassword: passwords.third } }, 400)
  await send('reset with a refresh token', { url: '/auth/password/reset', body: { token: changed.refreshToken, newPassword: passwords.third } }, 400)
  await recordHashes(userId, 'after the reset')
  await send('access token after the reset', { url: '/auth/me', headers: bearer(changed.accessToken) }, 401)

  // Bodies that fail before any handler runs, each carrying a password.
  await send('413 body with a password', {
    url: '/auth/login', raw: JSON.stringify({ email, password: passwords.tooLarge, padding: 'x'.repeat(BODY_LIMIT) }),
  }, 413)
  for (const [i, raw] of [
    `{"email":"${email}","password":"${passwords.malformed}"`,
    `{"email":"${email}","password":"${passwords.malformed}" junk}`,
    `{"email":"${email}","password":"${passwords.malformed}\\q"}`,
    `{"email":"${email}","password":"${passwords.malformed}`,
    `{"password":"${passwords.malformed}",}`,
    `{"password":'${passwords.malformed}'}`,
    `{"__proto__":{"x":1},"password":"${passwords.malformed}"}`,
  ].entries()) {
    await send(`malformed JSON #${i} with a password`, { url: '/auth/login', raw }, 400)
  }
  await send('text/plain body with a password', { url: '/auth/login', raw: `email=${email}&password=${passwords.plainText}`, contentType: 'text/plain' }, 415)
  await send('password in the wrong field', { url: '/auth/login', body: { email: passwords.wrongType, password: 12345678 } }, 400)
  await send('password over 256 characters', { url: '/auth/register', body: { email: uniqueEmail(), password: `${passwords.malformed}${'z'.repeat(300)}` } }, 400)

  // Back in with the newest password, and out again.
  const final = await pairOf('final login', await send('login, new password', { url: '/auth/login', body: { email, password: passwords.third } }, 200))
  await recordHashes(userId, 'at the end')
  await send('revoke-others', { url: '/auth/sessions/revoke-others', method: 'POST', headers: bearer(final.accessToken) }, 200)
    .then((res) => pairOf('revoke-others', res))
    .then((pair) => send('logout', { url: '/auth/logout', method: 'POST', headers: bearer(pair.accessToken) }, 204))
  const last = await pairOf('last login', await send('login again', { url: '/auth/login', body: { email, password: passwords.third } }, 200))
  await send('logout-all', { url: '/auth/logout-all', method: 'POST', headers: bearer(last.accessToken) }, 204)
  await send('after logout-all', { url: '/auth/me', headers: bearer(last.accessToken) }, 401)
})

t.test('no secret appears in any log line', async (t) => {
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const accessLines = parsed.filter((entry) => entry.msg === 'request completed').length
  t.ok(accessLines >= responses.length, `the trace logger captured ${lines.length} lines, ${accessLines} access-log lines, for ${responses.length} requests`)
  t.ok(parsed.some((entry) => /replayed/.test(String(entry.msg))), 'the refresh replay was logged')
  t.ok(secrets.size >= 30, `${secrets.size} secrets collected`)
  const leaks: string[] = []
  for (const [name, value] of secrets) {
    for (const [i, line] of lines.entries()) {
      if (i >= linkLines.start && i < linkLines.end) continue // the next subtest's
      if (line.includes(value)) leaks.push(`${name} in: ${line.slice(0, 300)}`)
    }
  }
  t.same(leaks, [], 'no secret in the logs')
  t.notOk(lines.some((line) => line.includes('$argon2')), 'no argon2 hash of any kind in the logs')
})

t.test('following the mailed reset link does not put the live reset token in the logs', async (t) => {
  const link = new URL(config.mail.resetUrl)
  t.comment(`RESET_URL is ${config.mail.resetUrl}: a fresh checkout mails links to this very service`)
  const requestLines = lines.slice(linkLines.start, linkLines.end)
  t.ok(requestLines.length > 0, 'the request was logged')
  for (const line of requestLines) {
    t.notOk(line.includes(secrets.get('reset secret')!), `the reset token is not in: ${line.slice(0, 300)}`)
  }
  t.ok(link.pathname.length > 0)
})

t.test('no secret appears in any response except a TokenPair\'s own tokens', async (t) => {
  const leaks: string[] = []
  for (const { label, res, pair } of responses) {
    let body = res.body
    if (pair) {
      // The legitimate payload: this response's own accessToken and refreshToken.
      const { accessToken: _a, refreshToken: _r, ...rest } = res.json() as TokenPair
      body = JSON.stringify(rest)
    }
    const headers = JSON.stringify(res.headers)
    for (const [name, value] of secrets) {
      if (body.includes(value)) leaks.push(`${label}: body contains ${name}`)
      if (headers.includes(value)) leaks.push(`${label}: headers contain ${name}`)
    }
    if (/\$argon2/.test(res.body)) leaks.push(`${label}: an argon2 hash`)
  }
  t.same(leaks, [], `no secret in ${responses.length} responses`)
})

t.test('the Authorization header is redacted wherever headers are logged', async (t) => {
  const withAuthorization = lines.filter((line) => /authorization/i.test(line))
  for (const line of withAuthorization) {
    t.match(line, /"authorization":"\[redacted\]"/i, 'authorization logged only as [redacted]')
  }
  if (withAuthorization.length === 0) t.comment('no request headers are logged by default')

  // Were headers ever logged (a verbose serializer, a debugging hook), the redaction paths cover them.
  const token = secrets.get('final login access token')!
  const before = lines.length
  const headers = { authorization: `Bearer ${token}`, cookie: `session=${token}`, 'user-agent': 'test' }
  logger.info({ req: { headers } }, 'request headers')
  app.log.info({ req: { headers } }, 'request headers through the app logger')
  logger.info({ res: { headers: { 'set-cookie': `session=${token}` } } }, 'response headers')
  const added = lines.slice(before)
  t.equal(added.length, 3)
  for (const line of added) t.notOk(line.includes(token), `the token is not in: ${line.slice(0, 200)}`)
  // The request serializer logs no headers at all; were they logged, they would be redacted.
  for (const name of ['authorization', 'cookie']) {
    const logged = new RegExp(`"${name}":"([^"]*)"`).exec(added[0]!)?.[1]
    t.ok(logged === undefined || logged === '[redacted]', `${name} absent or redacted (${logged ?? 'absent'})`)
  }
  t.match(added[2], /"set-cookie":"\[redacted\]"/, 'set-cookie redacted')
  t.comment(`secrets-in-logs: ${attacks} attack cases tried, ${secrets.size} secrets searched for in ${lines.length} log lines`)
})
