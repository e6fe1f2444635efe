/**
 * Direct driver access (better-sqlite3, pg) to a vouch database, for what a
 * benchmark does outside vouch: bulk seeding of users and sessions, and the
 * classic session store used as the baseline (its own table in the same
 * database). The drivers are used without Prisma so that neither seeding nor
 * the baseline pays for an ORM: the baseline gets the fastest path there is.
 */
import Database from 'better-sqlite3'
import pg from 'pg'
import type { Provider } from '../../src/db/schema.js'

export interface UserRow {
  id: string
  email: string
  passwordHash: string
  tokenVersion: number
  createdAt: Date
}

export interface SessionRow {
  id: string
  userId: string
  tokenVersion: number
  refreshTokenHash: string
  deviceName: string
  userAgent: string
  ip: string
  createdAt: Date
  lastUsedAt: Date
  expiresAt: Date
}

/** A row of the classic store: like connect-pg-simple's `session(sid, sess, expire)`. */
export interface ClassicRow {
  sid: string
  /** The encoded, signed session blob. */
  sess: string
  expire: Date
}

export interface RawStore {
  readonly provider: Provider
  createClassicTable (): Promise<void>
  /** Users, their sessions and the classic store's rows, in one transaction. */
  insertChunk (users: UserRow[], sessions: SessionRow[], classic: ClassicRow[]): Promise<void>
  insertClassic (rows: ClassicRow[]): Promise<void>
  /** Refreshes the planner's statistics (and checkpoints SQLite's write-ahead log). */
  analyze (): Promise<void>
  /** Streams every unexpired row of the classic store. */
  scanClassic (now: Date, onRow: (sid: string, sess: string) => void): Promise<void>
  deleteClassic (sids: string[]): Promise<number>
  close (): Promise<void>
}

export async function openRawStore (provider: Provider, url: string): Promise<RawStore> {
  return provider === 'sqlite' ? sqliteStore(url) : postgresStore(url)
}

/** How Prisma's SQLite adapter writes a DateTime. */
const sqliteDate = (d: Date) => d.toISOString().replace('Z', '+00:00')

function sqliteStore (url: string): RawStore {
  const db = new Database(url.slice('file:'.length))
  db.pragma('journal_mode = WAL')
  db.pragma('busy_timeout = 10000')
  const insertUser = db.prepare(`INSERT INTO users (id, email, passwordHash, tokenVersion, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?)`)
  const insertSession = db.prepare(`INSERT INTO sessions (id, userId, tokenVersion, refreshTokenHash, deviceName, userAgent, ip, createdAt, lastUsedAt, expiresAt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  let insertClassic: Database.Statement | undefined
  let scan: Database.Statement | undefined

  const addClassic = (rows: ClassicRow[]) => {
    insertClassic ??= db.prepare('INSERT INTO classic_sessions (sid, sess, expire) VALUES (?, ?, ?)')
    for (const r of rows) insertClassic.run(r.sid, r.sess, r.expire.getTime())
  }
  const chunk = db.transaction((users: UserRow[], sessions: SessionRow[], classic: ClassicRow[]) => {
    for (const u of users) insertUser.run(u.id, u.email, u.passwordHash, u.tokenVersion, sqliteDate(u.createdAt), sqliteDate(u.createdAt))
    for (const s of sessions) {
      insertSession.run(s.id, s.userId, s.tokenVersion, s.refreshTokenHash, s.deviceName, s.userAgent, s.ip,
        sqliteDate(s.createdAt), sqliteDate(s.lastUsedAt), sqliteDate(s.expiresAt))
    }
    addClassic(classic)
  })
  const classicOnly = db.transaction(addClassic)

  return {
    provider: 'sqlite',
    async createClassicTable () {
      // connect-sqlite3's layout: expiry in epoch milliseconds, indexed for the pruning sweep.
      db.exec(`CREATE TABLE classic_sessions (sid TEXT PRIMARY KEY, sess TEXT NOT NULL, expire INTEGER NOT NULL);
        CREATE INDEX classic_sessions_expire ON classic_sessions (expire);`)
    },
    async insertChunk (users, sessions, classic) {
      // Seeding only: this connection need not wait for the disk on every commit.
      db.pragma('synchronous = OFF')
      try {
        chunk(users, sessions, classic)
      } finally {
        db.pragma('synchronous = FULL')
      }
    },
    async insertClassic (rows) { classicOnly(rows) },
    async analyze () {
      db.exec('ANALYZE')
      db.pragma('wal_checkpoint(TRUNCATE)')
    },
    async scanClassic (now, onRow) {
      scan ??= db.prepare('SELECT sid, sess FROM classic_sessions WHERE expire > ?').raw(true)
      for (const row of scan.iterate(now.getTime()) as Iterable<[string, string]>) onRow(row[0], row[1])
    },
    async deleteClassic (sids) {
      if (sids.length === 0) return 0
      return db.prepare(`DELETE FROM classic_sessions WHERE sid IN (${sids.map(() => '?').join(',')})`).run(...sids).changes
    },
    async close () { db.close() },
  }
}

/** How Prisma's PostgreSQL schema stores a DateTime: timestamp(3) without time zone, in UTC. */
const pgDate = (d: Date) => d.toISOString().slice(0, -1)

const FETCH_BATCH = 5000

async function postgresStore (url: string): Promise<RawStore> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const addClassic = (rows: ClassicRow[]) => client.query(
    `INSERT INTO classic_sessions (sid, sess, expire) SELECT * FROM unnest($1::varchar[], $2::text[], $3::timestamp(6)[])`,
    [rows.map((r) => r.sid), rows.map((r) => r.sess), rows.map((r) => pgDate(r.expire))])

  return {
    provider: 'postgresql',
    async createClassicTable () {
      // connect-pg-simple's table (sess as text here: it holds the signed blob).
      await client.query(`CREATE TABLE classic_sessions (sid varchar NOT NULL PRIMARY KEY, sess text NOT NULL, expire timestamp(6) NOT NULL);
        CREATE INDEX classic_sessions_expire ON classic_sessions (expire);`)
    },
    async insertChunk (users, sessions, classic) {
      await client.query('BEGIN')
      try {
        await client.query('SET LOCAL synchronous_commit = off') // seeding only
        if (users.length > 0) {
          await client.query(
            `INSERT INTO users (id, email, "passwordHash", "tokenVersion", "createdAt", "updatedAt")
             SELECT u.id, u.email, u.hash, u.version, u.created, u.created
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamp(3)[]) AS u(id, email, hash, version, created)`,
            [users.map((u) => u.id), users.map((u) => u.email), users.map((u) => u.passwordHash), users.map((u) => u.tokenVersion), users.map((u) => pgDate(u.createdAt))])
        }
        if (sessions.length > 0) {
          await client.query(
            `INSERT INTO sessions (id, "userId", "tokenVersion", "refreshTokenHash", "deviceName", "userAgent", ip, "createdAt", "lastUsedAt", "expiresAt")
             SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamp(3)[], $9::timestamp(3)[], $10::timestamp(3)[])`,
            [sessions.map((s) => s.id), sessions.map((s) => s.userId), sessions.map((s) => s.tokenVersion), sessions.map((s) => s.refreshTokenHash),
              sessions.map((s) => s.deviceName), sessions.map((s) => s.userAgent), sessions.map((s) => s.ip),
              sessions.map((s) => pgDate(s.createdAt)), sessions.map((s) => pgDate(s.lastUsedAt)), sessions.map((s) => pgDate(s.expiresAt))])
        }
        if (classic.length > 0) await addClassic(classic)
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    },
    async insertClassic (rows) { await addClassic(rows) },
    async analyze () {
      await client.query('VACUUM ANALYZE users, sessions, classic_sessions')
    },
    async scanClassic (now, onRow) {
      // A server-side cursor: one sequential scan, streamed in batches (memory stays bounded at 1,000,000 rows).
      await client.query('BEGIN READ ONLY')
      try {
        await client.query(`DECLARE classic_scan NO SCROLL CURSOR FOR
          SELECT sid, sess FROM classic_sessions WHERE expire > ${client.escapeLiteral(pgDate(now))}::timestamp(6)`)
        for (;;) {
          const batch = await client.query<[string, string]>({ text: `FETCH ${FETCH_BATCH} FROM classic_scan`, rowMode: 'array' })
          for (const row of batch.rows) onRow(row[0], row[1])
          if (batch.rows.length < FETCH_BATCH) break
        }
        await client.query('CLOSE classic_scan')
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    },
    async deleteClassic (sids) {
      if (sids.length === 0) return 0
      const result = await client.query('DELETE FROM classic_sessions WHERE sid = ANY($1::varchar[])', [sids])
      return result.rowCount ?? 0
    },
    async close () { await client.end() },
  }
}
