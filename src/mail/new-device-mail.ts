/**
 * New-device alerts: when a sign-in comes from a device the account has not
 * used before (a `new_device` security event, see src/domain/devices.ts), the
 * account's owner gets a short plain-text mail saying which device (its name,
 * browser and system, user agent), from which address and when, and where to
 * review the devices signed in. The browser and system names come from
 * @vouch/client's parser, the one the account page's device list uses. The
 * text comes from a template a deployer can replace
 * (NEW_DEVICE_EMAIL_TEMPLATE; default templates/new-device.txt), checked at
 * start by template.ts.
 *
 * - It listens to the published event, so it runs only after the sign-in
 *   committed; the lookup and the send happen in the background. A failure
 *   (the database, the mail server) goes to `onError` and never reaches the
 *   sign-in, which has already been answered or is about to be.
 * - The mail holds no secret: the event carries none (no token, no hash),
 *   and the address is read from the user row at send time (an account
 *   deleted or disabled meanwhile gets no mail).
 * - The device name, user agent and IP were chosen by whoever signed in (the
 *   IP too, through X-Forwarded-For under TRUST_PROXY=true): each is cleaned
 *   here by device-info.ts (no line break or control character, bounded),
 *   whatever the event's producer did, so that each stays on its line, in
 *   the subject too. The browser and system are read from the cleaned user
 *   agent and cleaned again: the parser returns only fixed names, digits and
 *   a product token of ASCII letters, digits and ".-_", but this mail does
 *   not rely on a rule of another package for what reaches a header.
 *   Composed by plain-text.ts: 7bit when ASCII, base64 otherwise (an emoji
 *   device name).
 */
import { parseUserAgent } from '@vouch/client/user-agent'
import type { Db } from '../db/client.js'
import type { Clock } from '../domain/clock.js'
import { deviceName, displayText, userAgent } from '../domain/device-info.js'
import type { SecurityEvent, SecurityEvents } from '../domain/security-events.js'
import { defaultTemplateFile, fillTemplate, loadTemplate } from './template.js'
import type { MailTransport } from './transport.js'

export const DEFAULT_NEW_DEVICE_TEMPLATE = defaultTemplateFile('new-device.txt')

/**
 * What a new-device template may use; a sign-in without a device name (or user agent, or IP) leaves that line out,
 * and so does one whose user agent names no browser (or system) the parser knows.
 */
export const NEW_DEVICE_PLACEHOLDERS = ['email', 'device', 'browser', 'os', 'userAgent', 'ip', 'time', 'link'] as const

/** Most code points of an IP address in the mail: a textual IPv6 address with a zone fits. */
const IP_MAX_LENGTH = 64
/** Most code points of a browser or system name: a product token of 40 and its version fit. */
const AGENT_PART_MAX_LENGTH = 64

export interface NewDeviceAlertSettings {
  /**
   * Where the user reviews their devices (the account page's device list,
   * `${publicUrl}/account#devices`); undefined when vouch serves no account
   * page, and the mail then names no link.
   */
  readonly devicesUrl: string | undefined
  /** A template file replacing templates/new-device.txt (NEW_DEVICE_EMAIL_TEMPLATE). */
  readonly template: string | undefined
}

export interface NewDeviceAlertDeps {
  events: SecurityEvents
  db: Db
  transport: MailTransport
  clock: Clock
  settings: NewDeviceAlertSettings
  onError: (err: unknown) => void
}

export interface NewDeviceAlerts {
  /** Resolves when the mails started so far were sent (or failed): tests, shutdown. */
  idle (): Promise<void>
  /** Stops listening (mails under way still go). */
  stop (): void
}

type NewDeviceEvent = Extract<SecurityEvent, { type: 'new_device' }>

/** The values of one new-device mail, cleaned; undefined leaves its line out. */
function newDeviceValues (event: NewDeviceEvent, email: string, at: Date, devicesUrl: string | undefined) {
  const agent = userAgent(event.client?.userAgent)
  const { browser, os } = parseUserAgent(agent)
  return {
    email,
    device: deviceName(event.deviceName) ?? undefined,
    browser: displayText(browser, AGENT_PART_MAX_LENGTH) ?? undefined,
    os: displayText(os, AGENT_PART_MAX_LENGTH) ?? undefined,
    userAgent: agent ?? undefined,
    ip: displayText(event.client?.ip, IP_MAX_LENGTH) ?? undefined,
    time: `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    link: devicesUrl,
  }
}

/** Subscribes the alert mail to `events`. */
export function createNewDeviceAlerts ({ events, db, transport, clock, settings, onError }: NewDeviceAlertDeps): NewDeviceAlerts {
  const template = loadTemplate('NEW_DEVICE_EMAIL_TEMPLATE', settings.template ?? DEFAULT_NEW_DEVICE_TEMPLATE, NEW_DEVICE_PLACEHOLDERS)
  const pending = new Set<Promise<void>>()

  const send = async (event: NewDeviceEvent, at: Date) => {
    const user = await db.user.findUnique({ where: { id: event.userId }, select: { email: true, disabledAt: true } })
    // Deleted (its email is a placeholder without an "@") or disabled since: no one to warn.
    if (user === null || !user.email.includes('@') || user.disabledAt !== null) return
    await transport.send({ to: user.email, ...fillTemplate(template, newDeviceValues(event, user.email, at, settings.devicesUrl)) })
  }

  const stop = events.subscribe((event) => {
    if (event.type !== 'new_device') return
    const job: Promise<void> = send(event, clock.now()).catch(onError).finally(() => pending.delete(job))
    pending.add(job)
  })

  return {
    async idle () {
      while (pending.size > 0) await Promise.all([...pending])
    },
    stop,
  }
}
