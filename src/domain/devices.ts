/**
 * What counts as "the same device" for new-device alerts. A device is its
 * name as the client gave it (if any) and its user agent with every version
 * number removed, so a browser or OS update is not a new device, and a new
 * IP address (a phone between networks) never is. Two sign-ins with the
 * same key are the same device; the key is stored on each session, hashed
 * (it is compared, never shown).
 *
 * A sign-in is from a new device when the account has signed in before
 * (it has sessions, live or ended) and none of them had this key. The very
 * first sign-in of an account (right after registration) is not announced:
 * there is no other device to warn.
 */
import { createHash } from 'node:crypto'
import type { DeviceInfo } from './sessions.js'

export function deviceKey ({ deviceName, userAgent }: Pick<DeviceInfo, 'deviceName' | 'userAgent'>): string {
  const family = (userAgent ?? '').replace(/\d+(?:[._]\d+)*/g, '#').toLowerCase()
  return createHash('sha256').update(`${deviceName ?? ''}\n${family}`).digest('base64url').slice(0, 22)
}
