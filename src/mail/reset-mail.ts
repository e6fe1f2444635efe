/**
 * The reset-link message: its text comes from a template a deployer can
 * replace (RESET_EMAIL_TEMPLATE; default templates/password-reset.txt). The
 * first line is `Subject: …`; {{link}}, {{minutes}} and {{email}} are filled in.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Config } from '../config.js'
import type { ResetNotifier } from '../domain/password-resets.js'
import type { MailTransport } from './transport.js'

export const DEFAULT_RESET_TEMPLATE = fileURLToPath(new URL('../../templates/password-reset.txt', import.meta.url))

export function parseTemplate (text: string): { subject: string, body: string } {
  const match = /^Subject:[ \t]*(.+)\r?\n(?:\r?\n)?([\s\S]*)$/.exec(text)
  if (match === null) throw new TypeError('a mail template starts with a "Subject: …" line')
  return { subject: match[1]!.trim(), body: match[2]! }
}

function fill (text: string, values: Record<string, string>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => values[name] ?? whole)
}

export function createResetNotifier (mail: Config['mail'], transport: MailTransport, now: () => Date = () => new Date()): ResetNotifier {
  const template = parseTemplate(readFileSync(mail.resetTemplate ?? DEFAULT_RESET_TEMPLATE, 'utf8'))
  return {
    async sendResetLink (to, token, expiresAt) {
      const link = `${mail.resetUrl}${mail.resetUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
      const minutes = String(Math.round((expiresAt.getTime() - now().getTime()) / 60_000))
      const values = { link, minutes, email: to }
      await transport.send({ to, subject: fill(template.subject, values), text: fill(template.body, values) })
    },
  }
}
