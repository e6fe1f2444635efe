import type { Accounts } from '../domain/accounts.js'
import type { Administration } from '../domain/administration.js'
import type { PasswordResets } from '../domain/password-resets.js'
import type { RevocationFeed } from '../domain/revocation-feed.js'
import type { SecurityEvents } from '../domain/security-events.js'
import type { SessionWatch } from '../domain/session-watch.js'
import type { Sessions } from '../domain/sessions.js'
import type { KeySet } from '../crypto/keys.js'
import type { Db } from '../db/client.js'
import type { Readiness } from './readiness.js'

/** What the routes are given by the composition root (src/app.ts). */
export interface Services {
  accounts: Accounts
  sessions: Sessions
  passwordResets: PasswordResets
  revocationFeed: RevocationFeed
  sessionWatch: SessionWatch
  /** The admin API's actions (routes/admin.ts). */
  administration: Administration
  /** Security timelines (GET /auth/events). */
  events: SecurityEvents
  /** `iss` and `aud` of access tokens, for introspection answers. */
  issuer: string
  audience: string
  keys: KeySet
  db: Db
  /** The checks behind GET /health/ready. */
  readiness: () => Promise<Readiness>
}
