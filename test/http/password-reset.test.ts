/**
 * Password reset by email, delivered through a real SMTP server started on
 * loopback by the test (smtp-server), or the development outbox.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startSmtp, type ReceivedMail } from '../helpers/smtp.js'
import { createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, codeOf, login, me, post, refresh, register, uniqueEmail } from '../helpers/client.js'

const NEW_PASSWORD = 'a fresh passphrase'

/** Waits for the next message to `to` and returns the token in its link. */
async function tokenFromMail (received: ReceivedMail[], to: string, after = 0): Promise<{ token: string, raw: string }> {
  for (let i = 0; i < 200; i++) {
    const message = received.slice(after).find((m) => m.to === to)
    if (message) {
      // Quoted-printable may fold long lines ("=\n") and encode "=" as "=3D".
      const text = message.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=')
      const match = /token=([^\s&]+)/.exec(text)
      if (!match) throw new Error(`no link in the message:\n${message.raw}`)
      return { token: decodeURIComponent(match[1]!), raw: text }
    }
    await sleep(25)
  }
  throw new Error(`no message arrived for ${to}`)
}

async function smtpApp (t: Test, env: Record<string, string> = {}) {
  const smtp = await startSmtp(t)
  const context = await createTestApp(t, {
    env: { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port), RESET_URL: 'https://app.example.com/reset', ...env },
  })
  return { ...context, smtp }
}

const forgot = (app: Parameters<typeof post>[0], email: string) => post(app, '/auth/password/forgot', { email })
const reset = (app: Parameters<typeof post>[0], token: string, newPassword = NEW_PASSWORD) =>
  post(app, '/auth/password/reset', { token, newPassword })

t.test('the reset mail arrives over SMTP, its link works once, and the reset ends every session', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const phone = await register(app)
  const laptop = await login(app, phone.email)

  const accepted = await forgot(app, phone.email.toUpperCase())
  t.equal(accepted.statusCode, 202)
  t.equal(accepted.headers['cache-control'], 'no-store')
  const { token, raw } = await tokenFromMail(smtp.received, phone.email)
  t.match(raw, /Subject: Reset your password/)
  t.match(raw, /https:\/\/app\.example\.com\/reset\?token=/)
  t.match(raw, /within 30 minutes/)

  const done = await reset(app, token)
  t.equal(done.statusCode, 204)
  t.equal(done.body, '', 'the caller is not signed in by default')

  for (const pair of [phone, laptop]) {
    t.equal(codeOf(await me(app, pair.accessToken)), 'token_revoked', 'every access token dies')
    t.equal(codeOf(await refresh(app, pair.refreshToken)), 'refresh_token_invalid', 'every refresh token dies')
  }
  t.equal(codeOf(await post(app, '/auth/login', { email: phone.email, password: PASSWORD })), 'invalid_credentials')
  t.equal((await post(app, '/auth/login', { email: phone.email, password: NEW_PASSWORD })).statusCode, 200)

  const again = await reset(app, token, 'yet another passphrase')
  t.equal(again.statusCode, 400)
  t.equal(codeOf(again), 'reset_token_invalid', 'a second use fails')
})

t.test('an expired reset token fails', async (t) => {
  const { app, smtp, clock } = await smtpApp(t)
  const user = await register(app)
  await forgot(app, user.email)
  const { token } = await tokenFromMail(smtp.received, user.email)
  clock.advance(30 * 60 + 1)
  t.equal(codeOf(await reset(app, token)), 'reset_token_invalid')
  t.equal((await refresh(app, user.refreshToken)).statusCode, 200, 'nothing changed: the session lives on')
  t.equal((await post(app, '/auth/login', { email: user.email, password: PASSWORD })).statusCode, 200, 'and so does the password')
})

t.test('an unknown email gets the same answer and no mail', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const user = await register(app)
  const known = await forgot(app, user.email)
  const unknown = await forgot(app, uniqueEmail('nobody'))
  t.equal(unknown.statusCode, known.statusCode)
  t.equal(unknown.body, known.body, 'identical bodies')
  await tokenFromMail(smtp.received, user.email)
  await sleep(200)
  t.equal(smtp.received.length, 1, 'only the real account got a message')
})

t.test('a newer request, or a password change, invalidates a pending reset token', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const user = await register(app)
  await forgot(app, user.email)
  const first = await tokenFromMail(smtp.received, user.email)
  await forgot(app, user.email)
  const second = await tokenFromMail(smtp.received, user.email, 1)
  t.not(second.token, first.token)
  t.equal(codeOf(await reset(app, first.token)), 'reset_token_invalid', 'the older link is dead')

  const changed = await post(app, '/auth/password', { currentPassword: PASSWORD, newPassword: 'changed meanwhile' }, bearer(user.accessToken))
  t.equal(changed.statusCode, 200)
  t.equal(codeOf(await reset(app, second.token)), 'reset_token_invalid', 'a password change kills the pending link')
})

t.test('simultaneous resets with one token: exactly one succeeds, no 5xx', async (t) => {
  const { app, smtp, db } = await smtpApp(t)
  const user = await register(app)
  await forgot(app, user.email)
  const { token } = await tokenFromMail(smtp.received, user.email)
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => reset(app, token, `concurrent password ${i}`)))
  const codes = results.map((res) => res.statusCode)
  t.equal(codes.filter((code) => code === 204).length, 1, 'one reset')
  t.equal(codes.filter((code) => code === 400).length, 9, 'the rest are reset_token_invalid')
  const { tokenVersion } = await db.user.findUniqueOrThrow({ where: { id: user.user.id } })
  t.equal(tokenVersion, 1, 'one version bump')
})

t.test('a weak new password is refused and leaves the link usable', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const user = await register(app)
  await forgot(app, user.email)
  const { token } = await tokenFromMail(smtp.received, user.email)
  t.equal(codeOf(await reset(app, token, 'short')), 'weak_password')
  t.equal((await reset(app, token)).statusCode, 204)
})

t.test('malformed reset tokens are reset_token_invalid', async (t) => {
  const { app } = await createTestApp(t)
  for (const token of ['x', 'not.a-token', '00000000-0000-4000-8000-000000000000.' + 'A'.repeat(43)]) {
    t.equal(codeOf(await reset(app, token)), 'reset_token_invalid', token)
  }
})

t.test('with RESET_SIGNS_IN the reset answers a fresh pair', async (t) => {
  const { app, smtp } = await smtpApp(t, { RESET_SIGNS_IN: 'true' })
  const user = await register(app)
  await forgot(app, user.email)
  const { token } = await tokenFromMail(smtp.received, user.email)
  const res = await reset(app, token)
  t.equal(res.statusCode, 200)
  t.equal((await me(app, res.json().accessToken)).statusCode, 200)
  t.equal(codeOf(await me(app, user.accessToken)), 'token_revoked')
})

t.test('reset requests are rate limited per email, known or not, with Retry-After', async (t) => {
  const { app } = await createTestApp(t, { env: { RESET_MAX_PER_EMAIL: '2' } })
  for (const email of [(await register(app)).email, uniqueEmail('ghost')]) {
    t.equal((await forgot(app, email)).statusCode, 202)
    t.equal((await forgot(app, email)).statusCode, 202)
    const limited = await forgot(app, email)
    t.equal(limited.statusCode, 429)
    t.equal(codeOf(limited), 'rate_limited')
    t.ok(Number(limited.headers['retry-after']) > 0)
  }
})

t.test('reset requests are rate limited per IP', async (t) => {
  const { app } = await createTestApp(t, { env: { RESET_MAX_PER_IP: '3' } })
  for (let i = 0; i < 3; i++) t.equal((await forgot(app, uniqueEmail())).statusCode, 202)
  t.equal(codeOf(await forgot(app, uniqueEmail())), 'rate_limited')
})

t.test('without SMTP the message goes to the outbox folder, from a template a deployer can replace', async (t) => {
  const templates = await mkdtemp(path.join(tmpdir(), 'vouch-template-'))
  t.teardown(() => rm(templates, { recursive: true, force: true }))
  const template = path.join(templates, 'reset.txt')
  await writeFile(template, 'Subject: Password help for {{email}}\n\nGo to {{link}} (valid {{minutes}} min).\n')
  const { app, dir } = await createTestApp(t, { env: { RESET_EMAIL_TEMPLATE: template } })
  const user = await register(app)
  t.equal((await forgot(app, user.email)).statusCode, 202)
  const outbox = path.join(dir, 'outbox')
  let files: string[] = []
  for (let i = 0; i < 200 && files.length === 0; i++) {
    files = await readdir(outbox).catch(() => [])
    if (files.length === 0) await sleep(25)
  }
  t.equal(files.length, 1)
  const eml = (await readFile(path.join(outbox, files[0]!), 'utf8')).replace(/=\r?\n/g, '').replace(/=3D/g, '=')
  t.match(eml, new RegExp(`Subject: Password help for ${user.email}`))
  t.match(eml, /Go to http:\/\/127\.0\.0\.1:3000\/account\/reset-password\?token=\S+ \(valid 30 min\)/, 'the default link: PUBLIC_URL, here derived from HOST:PORT')
  const token = decodeURIComponent(/token=(\S+) /.exec(eml)![1]!)
  t.equal((await reset(app, token)).statusCode, 204, 'the link from the outbox works')
})
