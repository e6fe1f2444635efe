/**
 * New-device alerts: when a sign-in comes from a device the account has not
 * used before (a `new_device` security event, see src/domain/devices.ts), the
 * account's owner gets a short plain-text mail saying which device, from
 * which address and when, and where to review the devices signed in.
 *
 * - It listens to the published event, so it runs only after the sign-in
 *   committed; the lookup and the send happen in the background. A failure
 *   (the database, the mail server) goes to `onError` and never reaches the
 *   sign-in, which has already been answered or is about to be.
 * - The mail holds no secret: the event carries none (no token, no hash),
 *   and the address is read from the user row at send time (an account
 *   deleted or disabled meanwhile gets no mail).
 * - The device name and user agent were chosen by whoever signed in: they are
 *   shown quoted, on one line (device-info.ts cleaned them of line breaks and
 *   control characters when the session was stored). Composed by
 *   plain-text.ts: 7bit when ASCII, base64 otherwise (an emoji device name).
 */
import type { Db } from '../db/client.js'
import type { Clock } from '../domain/clock.js'
import type { SecurityEvent, SecurityEvents } from '../domain/security-events.js'
import type { MailTransport } from './transport.js'

export interface NewDeviceAlertSettings {
  /**
   * Where the user reviews their devices (the account page's device list,
   * `${publicUrl}/account#devices`); undefined when vouch serves no account
   * page, and the mail then names no link.
   */
  readonly devicesUrl: string | undefined
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

/** The message for one new-device sign-in; exported for its tests. */
export function newDeviceMessage (event: NewDeviceEvent, at: Date, devicesUrl: string | undefined): { subject: string, text: string } {
  const lines = ['A new device signed in to your account.', '']
  if (event.deviceName) lines.push(`Device:     "${event.deviceName}"`)
  lines.push(`Browser:    ${event.client?.userAgent ? `"${event.client.userAgent}"` : 'unknown'}`)
  lines.push(`IP address: ${event.client?.ip ?? 'unknown'}`)
  lines.push(`Time:       ${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`)
  lines.push('', 'If this was you, there is nothing to do.', '')
  if (devicesUrl !== undefined) {
    lines.push('If it was not, sign that device out and change your password here:', '', devicesUrl)
  } else {
    lines.push('If it was not, review the devices signed in to your account, sign that device', 'out and change your password.')
  }
  return { subject: 'New sign-in to your account', text: `${lines.join('\n')}\n` }
}

/** Subscribes the alert mail to `events`. */
export function createNewDeviceAlerts ({ events, db, transport, clock, settings, onError }: NewDeviceAlertDeps): NewDeviceAlerts {
  const pending = new Set<Promise<void>>()

  const send = async (event: NewDeviceEvent, at: Date) => {
    const user = await db.user.findUnique({ where: { id: event.userId }, select: { email: true, disabledAt: true } })
    // Deleted (its email is a placeholder without an "@") or disabled since: no one to warn.
    if (user === null || !user.email.includes('@') || user.disabledAt !== null) return
    await transport.send({ to: user.email, ...newDeviceMessage(event, at, settings.devicesUrl) })
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
