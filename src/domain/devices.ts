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
 *
 * Simultaneous sign-ins from one new device (a double click, a client that
 * retries) are one new device: one `new_device` event, one mail. The sign-in
 * asks `isNewDevice` in its transaction only after it has written the user's
 * row (`lockUser`, session-limit.ts), so each sign-in of a user sees every
 * session the ones before it committed: on PostgreSQL the row lock queues
 * them, on SQLite the write lock does, whichever instance answers them.
 */
import { createHash } from 'node:crypto'
import type { Db } from '../db/client.js'
import type { DeviceInfo } from './sessions.js'
import type { Tx } from './token-version.js'

export function deviceKey ({ deviceName, userAgent }: Pick<DeviceInfo, 'deviceName' | 'userAgent'>): string {
  const family = (userAgent ?? '').replace(/\d+(?:[._]\d+)*/g, '#').toLowerCase()
  return createHash('sha256').update(`${deviceName ?? ''}\n${family}`).digest('base64url').slice(0, 22)
}

/**
 * True when the user has sessions (live or ended) and none of them had
 * `key`: one statement, by the (userId, deviceKey) index. Call it after
 * `lockUser` in the sign-in's transaction, before its session is inserted.
 * A session without a key (recorded by a version before device keys, not
 * yet keyed by keyUnkeyedSessions) might be this device: while the user has
 * one, no device is new, so an upgrade never mails a false alert.
 */
export async function isNewDevice (tx: Tx, userId: string, key: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<Array<{ isNew: boolean | number | bigint }>>`
    SELECT EXISTS (SELECT 1 FROM sessions WHERE "userId" = ${userId})
       AND NOT EXISTS (SELECT 1 FROM sessions WHERE "userId" = ${userId} AND ("deviceKey" = ${key} OR "deviceKey" IS NULL)) AS "isNew"`
  // PostgreSQL answers a boolean, SQLite 0 or 1.
  return Number(row?.isNew ?? 0) === 1
}

/** Unkeyed sessions read and keyed per statement batch. */
const KEYING_BATCH = 500

/**
 * Keys the sessions recorded by a version before device keys, from the
 * device name and user agent they recorded (what deviceKey reads at
 * sign-in), in batches; the number keyed. Run by every server at start, in
 * the background: idempotent (a row keyed by another process meanwhile is
 * left as it is), and one query when there is nothing to do.
 */
export async function keyUnkeyedSessions (db: Db): Promise<number> {
  let keyed = 0
  for (;;) {
    const rows = await db.session.findMany({ where: { deviceKey: null }, select: { id: true, deviceName: true, userAgent: true }, take: KEYING_BATCH })
    for (const row of rows) {
      keyed += (await db.session.updateMany({ where: { id: row.id, deviceKey: null }, data: { deviceKey: deviceKey(row) } })).count
    }
    if (rows.length < KEYING_BATCH) return keyed
  }
}
