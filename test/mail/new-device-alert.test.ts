/**
 * New-device alerts (src/mail/new-device-mail.ts), received by a real SMTP
 * server on loopback: a sign-in from a device the account has not used
 * mails its owner exactly once, with the device, the address, the time and
 * a link to the account page's device list, and no token; the device the
 * account registered on, the same device again (another address, a browser
 * update), and refreshes mail nothing. NEW_DEVICE_ALERTS=false mails
 * nothing, and a mail server that is down never fails a sign-in.
 * NEW_DEVICE_EMAIL_TEMPLATE replaces the text (its start-up checks are in
 * mail-templates.test.ts); what a client chose (device name, user agent, an
 * X-Forwarded-For address) stays one cleaned, bounded line in the subject
 * and the body.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createLogger } from '../../src/app.js'
import { createTestApp, type TestOptions } from '../helpers/app.js'
import { PASSWORD, post, refresh, register, uniqueEmail, type TokenPair } from '../helpers/client.js'
import { startSmtp, type ReceivedMail } from '../helpers/smtp.js'
import { keyUnkeyedSessions } from '../../src/domain/devices.js'

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
/** The raw message's header lines, folded lines joined. */
const headersOf = (raw: string) => raw.slice(0, raw.search(/\r\n\r\n/)).replace(/\r\n(?=[ \t])/g, '').split('\r\n')
/** The body as the recipient reads it: decoded when it was sent base64. */
const textOf = (raw: string) => headersOf(raw).includes('Content-Transfer-Encoding: base64')
  ? Buffer.from(bodyOf(raw), 'base64').toString('utf8').replace(/\r?\n/g, '\r\n')
  : bodyOf(raw)

/** A NEW_DEVICE_EMAIL_TEMPLATE file holding `text`, removed at teardown. */
async function templateFile (t: Test, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-template-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'new-device.txt')
  await writeFile(file, text)
  return file
}

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
  t.ok(body.includes(`\r\nAccount:    ${user.email}\r\n`), 'which account')
  t.ok(body.includes(`\r\nUser agent: "${PHONE}"\r\n`), 'the user agent, whole, on its line, named for what it is')
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

t.test('the default mail names the browser and the system from the user agent; an agent it does not know leaves both lines out', async (t) => {
  const { app, smtp } = await smtpApp(t)
  const user = await registerOn(app, LAPTOP)
  const cases = [
    {
      device: 'Office PC', userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
      lines: ['Browser:    Chrome 131', 'System:     Windows 10 or 11'],
    },
    { device: 'Phone', userAgent: PHONE, lines: ['Browser:    Safari 17', 'System:     iOS 17'] },
    {
      device: 'Workstation', userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
      lines: ['Browser:    Firefox 133', 'System:     Linux'],
    },
    { device: 'Unknown', userAgent: 'Mozilla/5.0 (compatible; something)', lines: [] },
  ]
  for (const { device, userAgent } of cases) await signIn(app, user.email, userAgent, '203.0.113.7', device)
  const received = await mails(smtp.received, cases.length)
  for (const { device, userAgent, lines } of cases) {
    // The background sends may finish in any order.
    const mail = received.find((mail) => bodyOf(mail.raw).includes(`\r\nDevice:     "${device}"\r\n`))
    if (mail === undefined) { t.fail(`no mail for ${device}`); continue }
    t.ok(headersOf(mail.raw).includes('Content-Transfer-Encoding: 7bit'), `${device}: ASCII, sent as written`)
    t.ok(bodyOf(mail.raw).includes(`\r\nDevice:     "${device}"\r\n${[...lines, `User agent: "${userAgent}"`].join('\r\n')}\r\nIP address: 203.0.113.7\r\n`),
      `${device}: ${lines.length > 0 ? lines.join(', ') : 'no browser or system line'}, then the user agent whole`, { body: bodyOf(mail.raw) })
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

t.test('after an upgrade, sessions from before device keys raise no alert; once keyed, only a device never used does', async (t) => {
  const { app, db, smtp } = await smtpApp(t)
  const user = await registerOn(app, LAPTOP)
  await signIn(app, user.email, PHONE)
  await mails(smtp.received, 1)
  // What the rows of a version before device keys look like.
  await db.session.updateMany({ where: { user: { email: user.email } }, data: { deviceKey: null } })
  await signIn(app, user.email, LAPTOP)
  await signIn(app, user.email, PHONE)
  t.equal(await db.securityEvent.count({ where: { type: 'new_device' } }), 1, 'devices used before the upgrade raise no alert')

  t.equal(await keyUnkeyedSessions(db), 2, 'the two sessions from before are keyed')
  t.equal(await keyUnkeyedSessions(db), 0, 'and only once')
  await signIn(app, user.email, PHONE)
  t.equal(await db.securityEvent.count({ where: { type: 'new_device' } }), 1, 'the phone is a device the account used')
  await signIn(app, user.email, TABLET)
  t.equal(await db.securityEvent.count({ where: { type: 'new_device' } }), 2, 'a tablet never used is new')
  await mails(smtp.received, 2)
  await sleep(200)
  t.equal(smtp.received.length, 2, 'one mail, for the tablet')
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

t.test('NEW_DEVICE_EMAIL_TEMPLATE replaces the text: each placeholder filled, in the subject too', async (t) => {
  const template = await templateFile(t, [
    'Subject: Sign-in on {{device}} ({{browser}}, {{os}}) from {{ip}}',
    '',
    'Custom template for {{email}}',
    'device={{device}}',
    'agent={{userAgent}}',
    'browser={{browser}} os={{os}}',
    'ip={{ip}} time={{time}}',
    'review at {{link}}',
    '',
  ].join('\n'))
  const { app, smtp, clock } = await smtpApp(t, { NEW_DEVICE_EMAIL_TEMPLATE: template })
  const user = await register(app)
  await signIn(app, user.email, TABLET, '203.0.113.8', 'Kitchen tablet')
  const [alert] = await mails(smtp.received, 1)
  const time = `${clock.now().toISOString().slice(0, 16).replace('T', ' ')} UTC`
  t.ok(headersOf(alert!.raw).includes('Subject: Sign-in on Kitchen tablet (Safari 16, iPadOS 16) from 203.0.113.8'), 'the subject is the template\'s, filled')
  t.equal(bodyOf(alert!.raw), [
    `Custom template for ${user.email}`,
    'device=Kitchen tablet',
    `agent=${TABLET}`,
    'browser=Safari 16 os=iPadOS 16',
    `ip=203.0.113.8 time=${time}`,
    'review at https://auth.example.com/account#devices',
    '',
  ].join('\r\n'), 'the body is the template\'s, filled, nothing else')
})

t.test('in a template, a line whose value the sign-in lacks is left out; in the subject the value is empty', async (t) => {
  const template = await templateFile(t, 'Subject: Sign-in [{{device}}]\n\nfirst\nDevice: {{device}}\nlast\n\n{{link}}\n')
  const { app, smtp } = await smtpApp(t, { NEW_DEVICE_EMAIL_TEMPLATE: template, ACCOUNT_PAGE: 'false', RESET_URL: 'https://app.example.com/reset' })
  const user = await register(app)
  await signIn(app, user.email, PHONE)
  const [alert] = await mails(smtp.received, 1)
  t.ok(headersOf(alert!.raw).includes('Subject: Sign-in []'))
  t.equal(bodyOf(alert!.raw), 'first\r\nlast\r\n', 'no device line, no link line, no trailing blank line')
})

t.test('what a client chose stays inert in the mail: no header, no control character, no placeholder, one line each, bounded', async (t) => {
  // Every value in the subject as well as the body: a line break there would start a header.
  const template = await templateFile(t, 'Subject: New sign-in: {{device}} | {{userAgent}} | {{ip}}\n\nDevice: "{{device}}"\nUser agent: "{{userAgent}}"\nIP: {{ip}}\n\n{{link}}\n')
  // TRUST_PROXY=true takes the address from X-Forwarded-For as the client sent it (vouch warns about it at start).
  const { app, smtp } = await smtpApp(t, { NEW_DEVICE_EMAIL_TEMPLATE: template, TRUST_PROXY: 'true' })
  const user = await register(app)
  const hostile = [
    {
      deviceName: 'Kitchen\r\nBcc: victim@example.com\r\n\r\nInjected body',
      userAgent: 'Agent/1.0\r\nX-Injected: yes',
      forwardedFor: '203.0.113.9\r\nX-Forwarded-Injected: yes',
      // An X-Forwarded-For that is no IP address is not recorded: the connection's address is (http/client-info.ts).
      device: 'Kitchen Bcc: victim@example.com Injected body', agent: 'Agent/1.0 X-Injected: yes', ip: '127.0.0.1',
    },
    {
      deviceName: '\u202Egnp.exe\u202C \u001b[31mred\u001b[0m \u0007bel\u0085next\u2028line',
      userAgent: `Mozilla/5.0 (X11; Linux x86_64) ${'A'.repeat(20_000)}`,
      forwardedFor: `\u0085${'9'.repeat(5_000)}`,
      device: 'gnp.exe [31mred [0m bel next line', agent: `Mozilla/5.0 (X11; Linux x86_64) ${'A'.repeat(512 - 32)}`, ip: '127.0.0.1',
    },
    {
      deviceName: '{{link}} {{email}}', userAgent: '{{ip}}', forwardedFor: '198.51.100.4',
      device: '{{link}} {{email}}', agent: '{{ip}}', ip: '198.51.100.4',
    },
    {
      // Not ASCII: the body goes base64 (its lines are then whatever the decoder makes of them, never split).
      deviceName: 'Ada\u2019s \u{1F469}\u200D\u{1F4BB} laptop', userAgent: PHONE, forwardedFor: '2001:db8::7',
      device: 'Ada\u2019s \u{1F469}\u200D\u{1F4BB} laptop', agent: PHONE, ip: '2001:db8::7',
    },
  ]
  for (const { deviceName, userAgent, forwardedFor } of hostile) {
    const res = await app.inject({
      method: 'POST', url: '/auth/login', headers: { 'user-agent': userAgent, 'x-forwarded-for': forwardedFor },
      payload: { email: user.email, password: PASSWORD, deviceName },
    })
    t.equal(res.statusCode, 200, 'signed in', { body: res.body })
  }
  const received = await mails(smtp.received, hostile.length)
  await sleep(200)
  t.equal(smtp.received.length, hostile.length, 'one mail each, to no one else')
  for (const [i, { device, agent, ip }] of hostile.entries()) {
    // Each sign-in is a device of its own, so each has a mail; the background sends may finish in any order.
    const mail = received.find((mail) => textOf(mail.raw).startsWith(`Device: "${device}"\r\n`))
    if (mail === undefined) { t.fail(`case ${i}: no mail for device ${device}`, { received: smtp.received.map((mail) => mail.raw) }); continue }
    t.equal(mail.to, user.email, `case ${i}: to the owner only`)
    const headers = headersOf(mail.raw)
    const subject = headers.find((line) => line.startsWith('Subject: '))!
    t.same(headers.filter((line) => /^(?:Subject|Bcc|Cc|To|X-[\w-]*Injected):/i.test(line)), [`To: ${user.email}`, subject],
      `case ${i}: one To and one Subject, no header of the client's`)
    const ascii = /^[\x20-\x7e]*$/.test(device + agent + ip)
    // (Not ASCII, the subject is in encoded words: still the one line checked above.)
    if (ascii) t.equal(subject, `Subject: New sign-in: ${device} | ${agent} | ${ip}`, `case ${i}: the values, cleaned, on the subject line`)
    t.ok(headers.includes(`Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`), `case ${i}: ${ascii ? 'ASCII, sent as written' : 'not ASCII, sent base64'}`)
    const text = textOf(mail.raw)
    t.equal(text, `Device: "${device}"\r\nUser agent: "${agent}"\r\nIP: ${ip}\r\n\r\nhttps://auth.example.com/account#devices\r\n`,
      `case ${i}: each value on its line, cleaned and bounded, the link whole`)
    t.notMatch(text.replace(/\r\n/g, ''), /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u, `case ${i}: no control or bidirectional character`)
    t.ok(mail.raw.split('\r\n').every((line) => Buffer.byteLength(line) <= 998), `case ${i}: every raw line within 998 octets`)
  }
})
