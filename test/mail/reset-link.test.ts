/**
 * The reset mail's link survives transport: in the raw message, as written
 * to the development outbox and as received by a real SMTP server, the link
 * stands whole on a line of its own, exactly as built (no quoted-printable
 * soft line break inside it, no `=3D` for its `=`), so a person reading the
 * raw mail, or a naive client, gets a working link. The body is sent 7bit
 * (lines up to 998 octets are legal); a template that is not ASCII is sent
 * base64, which every client decodes, and its link decodes whole too.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { createResetNotifier } from '../../src/mail/reset-mail.js'
import { createMailTransport } from '../../src/mail/transport.js'
import { createTestApp } from '../helpers/app.js'
import { post, register } from '../helpers/client.js'
import { startSmtp } from '../helpers/smtp.js'

/** A token of the real shape (`<uuid>.<43 base64url characters>`); `-` and `_` included. */
const TOKEN = '3f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b.Zx-9_Qm3pL0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV'
/** Long enough that the link line is far past quoted-printable's 76 characters. */
const RESET_URL = 'https://accounts.example.com/account/reset-password'
const LINK = `${RESET_URL}?token=${encodeURIComponent(TOKEN)}`

async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The one message in DATA_DIR/outbox, raw, once it is there. */
async function outboxMessage (dataDir: string): Promise<string> {
  const outbox = path.join(dataDir, 'outbox')
  for (let i = 0; i < 400; i++) {
    const files = await readdir(outbox).catch(() => [])
    if (files.length > 0) return readFile(path.join(outbox, files[0]!), 'utf8')
    await sleep(25)
  }
  throw new Error('no message in the outbox')
}

/** The raw message's body lines (after the blank line that ends the headers). */
const bodyLines = (raw: string) => raw.slice(raw.search(/\r?\n\r?\n/)).split(/\r?\n/)

/** Sends a reset mail for TOKEN through the configured transport. */
async function sendReset (env: Record<string, string>) {
  const config = loadConfig({ RESET_URL, ...env })
  const transport = createMailTransport(config.mail, config.dataDir)
  try {
    await createResetNotifier(config.mail, transport).sendResetLink('someone@example.com', TOKEN, new Date(Date.now() + 30 * 60_000))
  } finally {
    transport.close()
  }
}

t.test('in the raw .eml of the development outbox, the reset link stands whole on a line of its own', async (t) => {
  const dataDir = await tempDir(t, 'vouch-outbox-')
  await sendReset({ DATA_DIR: dataDir })
  const raw = await outboxMessage(dataDir)
  t.ok(bodyLines(raw).includes(LINK), 'the exact link is a line of the raw message', { raw })
  t.match(raw, /^Content-Transfer-Encoding: 7bit$/m, 'sent as written')
  t.notMatch(raw, /=3D|=\r?\n/, 'no quoted-printable anywhere')
  t.ok(raw.split(/\r?\n/).every((line) => Buffer.byteLength(line) <= 998), 'every line within the 998 octets 7bit allows')
})

t.test('through a real SMTP server, the received raw message has the reset link whole on a line of its own', async (t) => {
  const smtp = await startSmtp(t)
  await sendReset({ DATA_DIR: await tempDir(t, 'vouch-smtp-'), SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port) })
  t.equal(smtp.received.length, 1)
  const raw = smtp.received[0]!.raw
  t.equal(smtp.received[0]!.to, 'someone@example.com')
  t.ok(bodyLines(raw).includes(LINK), 'the exact link is a line of the raw message', { raw })
  t.match(raw, /^Subject: Reset your password\r?$/m)
  t.match(raw, /^Content-Transfer-Encoding: 7bit\r?$/m)
  t.notMatch(raw, /=3D|=\r?\n/, 'no quoted-printable anywhere')
})

t.test('a template that is not ASCII is sent base64, and its link decodes whole, on a line of its own', async (t) => {
  const dataDir = await tempDir(t, 'vouch-outbox-')
  const template = path.join(dataDir, 'reset.txt')
  await writeFile(template, 'Subject: Passwort zurücksetzen\n\nÖffnen Sie diesen Link:\n\n{{link}}\n\nGrüße\n')
  await sendReset({ DATA_DIR: dataDir, RESET_EMAIL_TEMPLATE: template })
  const raw = await outboxMessage(dataDir)
  t.match(raw, /^Content-Transfer-Encoding: base64$/m)
  t.match(raw, /^Content-Type: text\/plain; charset=utf-8$/m)
  const body = Buffer.from(bodyLines(raw).join(''), 'base64').toString('utf8')
  t.ok(body.split(/\r?\n/).includes(LINK), 'the exact link is a line of the decoded body', { body })
  t.match(body, /Öffnen Sie diesen Link/)
  t.match(raw, /^Subject: =\?UTF-8\?/m, 'the subject is an encoded word')
})

t.test('the link as read from the raw outbox message, without decoding anything, completes the reset', async (t) => {
  const { app, dir } = await createTestApp(t)
  const user = await register(app)
  t.equal((await post(app, '/auth/password/forgot', { email: user.email })).statusCode, 202)
  const raw = await outboxMessage(dir)
  const link = bodyLines(raw).find((line) => line.startsWith('http://127.0.0.1:3000/account/reset-password?token='))
  t.ok(link, 'a line is the link', { raw })
  const token = new URL(link!).searchParams.get('token')!
  t.match(token, /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}$/, 'the whole token')
  t.equal((await post(app, '/auth/password/reset', { token, newPassword: 'a fresh passphrase' })).statusCode, 204)
})
