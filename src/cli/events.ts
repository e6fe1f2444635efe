/**
 * `vouch events <email|id>`: a user's security timeline (domain/security-events.ts),
 * newest first, a page at a time, as GET /admin/users/:id/events gives it:
 * `--limit` 1 to 100 (50 by default), `--before` the previous page's `next`.
 *
 * - A user id names a deleted account too (an email no longer does): an
 *   incident can be investigated after the erasure, as with the admin API.
 * - Reading is itself recorded (an `admin_read` event, actor `cli`), after
 *   the page was read: the page shows what happened before the operator
 *   looked, the next read shows the look.
 * - The text output is one line per event. User agents, device names and
 *   other details come from the network: every value is printed with its
 *   control and bidirectional-formatting characters escaped (`\u001b`), so a
 *   crafted User-Agent cannot drive the operator's terminal or disguise a
 *   line. --json prints the stored events as they are (JSON escapes them).
 */
import type { Command } from 'commander'
import { isUuid } from '../crypto/secrets.js'
import { CLI, type EventPage, type StoredEvent } from '../domain/security-events.js'
import type { CliContext } from './context.js'
import { domainOf } from './domain.js'
import { CliError, EXIT, print, type OutputOptions } from './output.js'
import { findUser, namesEmail, onUser } from './users.js'

/** The page size bounds of the admin API (http/schemas.ts EventPageQuery). */
export const DEFAULT_LIMIT = 50
export const MAX_LIMIT = 100

interface EventsOptions extends OutputOptions {
  limit?: string
  before?: string
}

/** Characters a terminal acts on or that reorder a line: C0 and C1 controls, DEL, zero-width and bidi marks and overrides, line separators. */
// eslint-disable-next-line no-control-regex -- finding control characters is this pattern's job
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g

/** A value as one field of a line: unsafe characters escaped as \uXXXX; quoted when it holds a space, a quote or a backslash, or is empty. */
export function field (value: unknown): string {
  if (value === null || value === undefined) return '-'
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  const escaped = text.replace(/["\\]/g, '\\$&').replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return escaped !== text || text === '' || /\s/.test(text) ? `"${escaped}"` : text
}

/** time  type  actor[:id]  ip=  ua=  session=  detail key=value… */
export function eventLine (event: StoredEvent): string {
  return [
    event.at.toISOString(),
    field(event.type),
    event.actorId === null ? field(event.actor) : `${field(event.actor)}:${field(event.actorId)}`,
    `ip=${field(event.ip)}`,
    `ua=${field(event.userAgent)}`,
    `session=${field(event.sessionId)}`,
    ...Object.entries(event.detail).map(([key, value]) => `${field(key)}=${field(value)}`),
  ].join('  ')
}

function pageOptions (options: EventsOptions): { before: string | undefined, limit: number } {
  const { limit = String(DEFAULT_LIMIT), before } = options
  if (!/^[1-9][0-9]{0,2}$/.test(limit) || Number(limit) > MAX_LIMIT) {
    throw new CliError('invalid_argument', `--limit must be a whole number from 1 to ${MAX_LIMIT}, not ${JSON.stringify(limit)}`, EXIT.usage)
  }
  if (before !== undefined && !isUuid(before)) {
    throw new CliError('invalid_argument', `--before must be an event id (the "next" of the previous page), not ${JSON.stringify(before)}`, EXIT.usage)
  }
  return { before, limit: Number(limit) }
}

export function registerEvents (program: Command, context: CliContext): void {
  program.command('events')
    .description("a user's security timeline, newest first: sign-ins, new devices, revocations, password changes and resets, " +
      'administrative actions (actor cli or admin:<client>); kept EVENT_RETENTION_DAYS. The read is itself recorded')
    .argument('<email|id>', 'the user: an email (anything with "@") or a user id')
    .option('--limit <n>', `events per page, 1 to ${MAX_LIMIT}`, String(DEFAULT_LIMIT))
    .option('--before <id>', 'the page of events older than this one: the "next" the previous page printed')
    .option('--json', 'print {"events": [...], "next"?: id} as JSON')
    .action(async (emailOrId: string, options: EventsOptions) => {
      const page = pageOptions(options)
      // By id, a deleted account's timeline too, as GET /admin/users/:id/events gives it: the erasure kept the events (not the email).
      const userId = namesEmail(emailOrId) ? (await findUser(context, emailOrId)).id : emailOrId
      const found: EventPage = await onUser(emailOrId, (await domainOf(context)).administration.events(userId, page, { actor: CLI }))
      print(options, found, () => [
        ...(found.events.length === 0 ? [page.before === undefined ? `no events for ${emailOrId}` : 'no older events'] : found.events.map(eventLine)),
        ...(found.next === undefined ? [] : [`older events: --before ${found.next}`]),
      ].join('\n'))
    })
}
