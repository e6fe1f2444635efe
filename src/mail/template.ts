/**
 * The mail templates a deployer can replace (RESET_EMAIL_TEMPLATE,
 * NEW_DEVICE_EMAIL_TEMPLATE; the defaults are in templates/): plain text, a
 * first line `Subject: …`, then the body, with {{name}} placeholders in
 * either.
 *
 * - A template is read and checked once, when the mail is set up at start:
 *   a file that cannot be read, no Subject line, or a {{…}} that is not one
 *   of the mail's placeholders stops the start with a ConfigError naming the
 *   setting, rather than mailing people a literal "{{tokn}}" later.
 * - Filling is one pass over the template: a value is inserted as it is and
 *   never read for placeholders itself (a device named "{{link}}" stays that
 *   text). Values are one line each; the mails clean what a client chose.
 * - A value may be absent (a device without a name, no page to link to): a
 *   body line holding it is left out, and in the subject it is empty.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../config.js'

/** A checked template whose placeholders are among `P`. */
export interface MailTemplate<P extends string> {
  readonly subject: string
  readonly body: string
  /** Only for the type: which values filling it takes. */
  readonly placeholders: readonly P[]
}

/** Any {{…}}; what is inside must be one of the mail's placeholder names, exactly. */
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g

/** The file of a default template: templates/<name>. */
export function defaultTemplateFile (name: string): string {
  return fileURLToPath(new URL(`../../templates/${name}`, import.meta.url))
}

function parse (text: string): { subject: string, body: string } {
  const match = /^Subject:[ \t]*(.+)\r?\n(?:\r?\n)?([\s\S]*)$/.exec(text)
  if (match === null) throw new TypeError('a mail template starts with a "Subject: …" line')
  return { subject: match[1]!.trim(), body: match[2]!.replace(/\r\n/g, '\n') }
}

/**
 * The template in `file`, checked; a problem is a ConfigError naming `setting`.
 *
 * @example
 * const template = loadTemplate('RESET_EMAIL_TEMPLATE', file, ['link', 'minutes', 'email'])
 */
export function loadTemplate<P extends string> (setting: string, file: string, placeholders: readonly P[]): MailTemplate<P> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(setting, `cannot read ${file}: ${(err as Error).message}`)
  }
  let parsed: { subject: string, body: string }
  try {
    parsed = parse(text)
  } catch (err) {
    throw new ConfigError(setting, `${file}: ${(err as Error).message}`)
  }
  for (const [whole, name] of `${parsed.subject}\n${parsed.body}`.matchAll(PLACEHOLDER)) {
    if (!(placeholders as readonly string[]).includes(name!)) {
      throw new ConfigError(setting, `${file}: unknown placeholder ${whole}; this mail fills ${placeholders.map((p) => `{{${p}}}`).join(', ')}`)
    }
  }
  return Object.freeze({ ...parsed, placeholders: Object.freeze([...placeholders]) })
}

/** The subject and text of one message: `template` with `values` filled in (see the header for absent values). */
export function fillTemplate<P extends string> (template: MailTemplate<P>, values: Readonly<Record<P, string | undefined>>): { subject: string, text: string } {
  const lookup = values as Readonly<Record<string, string | undefined>>
  const subject = template.subject.replace(PLACEHOLDER, (_whole, name: string) => lookup[name] ?? '')
  const lines: string[] = []
  for (const line of template.body.split('\n')) {
    let absent = false
    const filled = line.replace(PLACEHOLDER, (_whole, name: string) => {
      const value = lookup[name]
      if (value === undefined) absent = true
      return value ?? ''
    })
    if (!absent) lines.push(filled)
  }
  // A left-out line at the end would leave blank lines behind it.
  return { subject, text: lines.join('\n').replace(/\n{2,}$/, '\n') }
}
