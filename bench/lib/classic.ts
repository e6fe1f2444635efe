/**
 * The classic approach, the baseline of the sign-out-everywhere benchmark:
 * a session store whose rows hold an encoded, signed session blob
 * (`base64url(JSON).base64url(HMAC-SHA256)`, as cookie-session/keygrip sign
 * a cookie; the user id sits inside the JSON, as passport puts it there).
 * Nothing indexes a session by its owner, so signing a user out everywhere
 * means: stream every unexpired session, verify and decode each blob to find
 * the owner, then delete the matches in one statement.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { RawStore } from './raw-store.js'

export interface ClassicSession {
  cookie: { originalMaxAge: number, expires: string, httpOnly: boolean, secure: boolean, sameSite: string, path: string }
  passport: { user: string }
  device: { name: string, userAgent: string, ip: string }
  createdAt: string
  csrfSecret: string
}

const sign = (secret: Buffer, payload: string) => createHmac('sha256', secret).update(payload).digest('base64url')

export function encodeSession (secret: Buffer, session: ClassicSession): string {
  const payload = Buffer.from(JSON.stringify(session)).toString('base64url')
  return `${payload}.${sign(secret, payload)}`
}

/** The session in `blob`, or undefined when its signature does not verify (tampered or foreign). */
export function decodeSession (secret: Buffer, blob: string): ClassicSession | undefined {
  const dot = blob.lastIndexOf('.')
  if (dot < 0) return undefined
  const payload = blob.slice(0, dot)
  const given = Buffer.from(blob.slice(dot + 1))
  const expected = Buffer.from(sign(secret, payload))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ClassicSession
  } catch {
    return undefined
  }
}

/** Signs `userId` out everywhere, the classic way; resolves with the sessions scanned and deleted. */
export async function revokeAllClassic (store: RawStore, secret: Buffer, userId: string, now = new Date()): Promise<{ scanned: number, deleted: number }> {
  const doomed: string[] = []
  let scanned = 0
  await store.scanClassic(now, (sid, sess) => {
    scanned += 1
    if (decodeSession(secret, sess)?.passport.user === userId) doomed.push(sid)
  })
  const deleted = await store.deleteClassic(doomed)
  return { scanned, deleted }
}
