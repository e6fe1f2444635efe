/**
 * New-device alerts (src/mail/new-device-mail.ts), received by a real SMTP
 * server on loopback: a sign-in from a device the account has not used
 * mails its owner exactly once, with the device, the address, the time and
 * a link to the account page's device list, and no token; the device the
 * account registered on, the same device again (another address, a browser
 * update), and refreshes mail nothing. NEW_DEVICE_ALERTS=false mails
 * nothing, and a mail server that is down never fails a sign-in.
 */
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createLogger } from '../../src/app.js'
import { createTestApp, type TestOptions } from '../helpers/app.js'
import { PASSWORD, post, refresh, register, uniqueEmail, type TokenPair } from '../helpers/client.js'
import { startSmtp, type ReceivedMail } from '../helpers/smtp.js'

const LAPTOP = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36'
const LAPTOP_UPDATED = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.85 Safari/537.36'
const PHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'
const TABLET = 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1'

async function smtpApp (t: Test, env: Record<string, string> = {}, options: TestOptions = {}) {
  const smtp = await startSmtp(t)
  const context = await createTestApp(t, {
    ...options, env: { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port), PUBLIC_URL: 'https://auth.example.com', ...env },
  })
  return { ...context, smtp }
}

async function signIn (app: FastifyInstance, email: string, userAgent: string, remoteAddress = '127.0.0.1', deviceName?: string): Promise<TokenPair> {
  const res = await app.inject({
    method: 'POST', url: '/auth/login', remoteAddress, headers: { 'user-agent': userAgent },
    payload: { email, password: PASSWORD, ...(deviceName !== undefined && { deviceName }) },
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function registerOn (app: FastifyInstance, userAgent: string) {
  const email = uniqueEmail('new-device')
  const res = await post(app, '/auth/register', { email, password: PASSWORD }, { 'user-agent': userAgent })
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
  return { ...res.json() as TokenPair, email }
}

/** The first `count` messages, once they are there. */
async function mails (received: ReceivedMail[], count: number): Promise<ReceivedMail[]> {
  for (let i = 0; i < 400 && received.length < count; i++) await sleep(25)
  if (received.length < count) throw new Error(`${received.length} messages arrived, not ${count}`)
  return received.slice(0, count)
}

/** The raw message's body (after the blank line that ends the headers). */
const bodyOf = (raw: string) => raw.slice(raw.search(/\r\n\r\n/) + 4)

t.test('a sign-in from a new device mails the owner once; the same device again, elsewhere or updated, and refreshes do not', async (t) => {
  const { app, db, smtp, clock } = await smtpApp(t)
  const user = await registerOn(app, LAPTOP)
  const tokens: string[] = [user.accessToken, user.refreshToken]

  // The device the account registered on, again: the same device.
  const again = await signIn(app, user.email, LAPTOP)
  // A new device: the one mail of this test until the last sign-in.
  const phone = await signIn(app, user.email, PHONE, '203.0.113.7')
  const [alert] = await mails(smtp.received, 1)
  const at = clock.now()
  // No mail for any of these: the phone again, from another network; the laptop after a browser update; refreshes.
  const phoneElsewhere = await signIn(app, user.email, PHONE, '198.51.100.23')
  const updated = await signIn(app, user.email, LAPTOP_UPDATED, '192.0.2.1')
  const refreshed = (await refresh(app, phone.refreshToken)).json() as TokenPair
  tokens.push(...[again, phone, phoneElsewhere, updated, refreshed].flatMap((pair) => [pair.accessToken, pair.refreshToken]))
  // Then one more new device: its mail comes second, after any the sign-ins above would have caused.
  const tablet = await signIn(app, user.email, TABLET, '203.0.113.8', 'Kitchen tablet')
  tokens.push(tablet.accessToken, tablet.refreshToken)
  const [, second] = await mails(smtp.received, 2)
  await sleep(200)

  t.equal(smtp.received.length, 2, 'one mail per new device, none for the rest')
  t.equal(await db.securityEvent.count({ where: { type: 'new_device' } }), 2, 'two new_device events, no more')
  t.equal(alert!.to, user.email)
  t.equal(second!.to, user.email)

  const body = bodyOf(alert!.raw)
  t.match(alert!.raw, /^Subject: New sign-in to your account\r$/m)
  t.match(alert!.raw, /^Content-Transfer-Encoding: 7bit\r$/im, 'ASCII: sent as written')
  t.match(body, 'A new device signed in to your account.')
  t.ok(body.includes(`Browser:    "${PHONE}"`), 'the user agent, whole, on its line')
  t.match(body, /^IP address: 203\.0\.113\.7\r$/m)
  t.ok(body.includes(`Time:       ${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`), 'when, by the clock')
  t.match(body, /^https:\/\/auth\.example\.com\/account#devices\r$/m, 'the link to the device list, whole, on a line of its own')
  t.notMatch(body, /Device: /, 'no device name was given')
  t.match(bodyOf(second!.raw), /^Device: {5}"Kitchen tablet"\r$/m, 'the device name, when given')

  for (const message of smtp.received) {
    t.notOk(tokens.some((token) => message.raw.includes(token)), 'no access or refresh token in a mail')
    t.notOk(message.raw.includes(PASSWORD), 'no password')
  }
})

t.test('the link points at the device list of the account page', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const user = await register(app)
  await signIn(app, user.email, PHONE)
  const [alert] = await mails(smtp.received, 1)
  const link = /^(https:\/\/\S+)\r$/m.exec(bodyOf(alert!.raw))![1]!
  const url = new URL(link)
  t.equal(url.pathname, '/account')
  t.equal(url.hash, '#devices')
  const page = await app.inject({ method: 'GET', url: url.pathname })
  t.equal(page.statusCode, 200, 'vouch serves the page')
  t.match(page.body, /<ul id="devices"/, 'and the fragment names its device list')
})

t.test('without the account page the mail asks to review the devices, with no link', async (t) => {
  const { app, smtp } = await smtpApp(t, { ACCOUNT_PAGE: 'false', RESET_URL: 'https://app.example.com/reset' })
  const user = await register(app)
  await signIn(app, user.email, PHONE)
  const [alert] = await mails(smtp.received, 1)
  t.match(bodyOf(alert!.raw), /review the devices signed in to your account/)
  t.notMatch(alert!.raw, /https?:\/\//, 'no link')
})

t.test('NEW_DEVICE_ALERTS=false mails nothing, though the event is recorded', async (t) => {
  const { app, db, smtp } = await smtpApp(t, { NEW_DEVICE_ALERTS: 'false' })
  const user = await register(app)
  await signIn(app, user.email, PHONE)
  t.equal(await db.securityEvent.count({ where: { type: 'new_device' } }), 1)
  // The reset mail goes through the same transport: once it is in, an alert would have been too.
  t.equal((await post(app, '/auth/password/forgot', { email: user.email })).statusCode, 202)
  const [only] = await mails(smtp.received, 1)
  await sleep(200)
  t.equal(smtp.received.length, 1)
  t.match(only!.raw, /Subject: Reset your password/)
})

t.test('a mail server that is down never fails the sign-in: the failure is logged as background work', async (t) => {
  const lines: string[] = []
  const logger = createLogger('error', new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }))
  // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
  const { app } = await createTestApp(t, { logger, env: { SMTP_HOST: '127.0.0.1', SMTP_PORT: '9' } })
  const user = await register(app)
  const phone = await signIn(app, user.email, PHONE)
  t.ok(phone.accessToken, 'signed in')
  for (let i = 0; i < 400 && !lines.some((line) => line.includes('background work failed')); i++) await sleep(25)
  t.ok(lines.some((line) => line.includes('background work failed')), 'the failure is logged')
  t.notOk(lines.some((line) => line.includes(phone.accessToken) || line.includes(phone.refreshToken)), 'with no token')
})
