/**
 * The reset-link message: its text comes from a template a deployer can
 * replace (RESET_EMAIL_TEMPLATE; default templates/password-reset.txt),
 * checked at start by template.ts. The first line is `Subject: …`; {{link}},
 * {{minutes}} and {{email}} are filled in.
 */
import type { Config } from '../config.js'
import type { ResetNotifier } from '../domain/password-resets.js'
import { defaultTemplateFile, fillTemplate, loadTemplate } from './template.js'
import type { MailTransport } from './transport.js'

export const DEFAULT_RESET_TEMPLATE = defaultTemplateFile('password-reset.txt')

/** What a reset template may use. */
export const RESET_PLACEHOLDERS = ['link', 'minutes', 'email'] as const

export function createResetNotifier (mail: Config['mail'], transport: MailTransport, now: () => Date = () => new Date()): ResetNotifier {
  const template = loadTemplate('RESET_EMAIL_TEMPLATE', mail.resetTemplate ?? DEFAULT_RESET_TEMPLATE, RESET_PLACEHOLDERS)
  return {
    async sendResetLink (to, token, expiresAt) {
      const link = `${mail.resetUrl}${mail.resetUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
      const minutes = String(Math.round((expiresAt.getTime() - now().getTime()) / 60_000))
      await transport.send({ to, ...fillTemplate(template, { link, minutes, email: to }) })
    },
  }
}
