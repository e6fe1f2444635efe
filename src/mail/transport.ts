/**
 * Outgoing mail through nodemailer: SMTP when SMTP_HOST is set, otherwise a
 * development outbox that writes each message as an .eml file under
 * DATA_DIR/outbox, so that a fresh checkout needs no mail server. Either
 * way the message is composed by src/mail/plain-text.ts, so that its lines
 * (a reset link above all) arrive as written.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import nodemailer from 'nodemailer'
import type { Config } from '../config.js'
import { composePlainText } from './plain-text.js'

export interface MailMessage {
  to: string
  subject: string
  text: string
}

export interface MailTransport {
  send (message: MailMessage): Promise<void>
  close (): void
}

export function createMailTransport (mail: Config['mail'], dataDir: string): MailTransport {
  if (mail.smtp !== undefined) {
    const { host, port, secure, user, password, requireTls } = mail.smtp
    const transporter = nodemailer.createTransport({
      host, port, secure, requireTLS: requireTls,
      ...(user !== undefined && { auth: { user, pass: password ?? '' } }),
    })
    return {
      async send (message) { await transporter.sendMail(await composePlainText({ from: mail.from, ...message })) },
      close: () => transporter.close(),
    }
  }
  const outbox = path.join(dataDir, 'outbox')
  const transporter = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
  return {
    async send (message) {
      const { message: eml } = await transporter.sendMail(await composePlainText({ from: mail.from, ...message }))
      await mkdir(outbox, { recursive: true, mode: 0o700 })
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${crypto.randomUUID()}.eml`
      await writeFile(path.join(outbox, name), eml as Buffer, { mode: 0o600 })
    },
    close: () => transporter.close(),
  }
}
