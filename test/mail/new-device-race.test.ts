/**
 * Simultaneous first sign-ins from one new device (a double-clicked button,
 * an app that retries) are one new device: exactly one `new_device` event
 * and one alert mail, however the sign-ins interleave, whether one vouch
 * instance or several sharing the database answer them, with or without a
 * session limit. Every sign-in succeeds. Mail is received by a real SMTP
 * server on loopback; the suite runs on SQLite and on PostgreSQL
 * (VOUCH_TEST_DATABASE).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { generatePrivateJwk } from '../../src/crypto/keys.js'
import { createDb, type Db } from '../../src/db/client.js'
import { applyMigrations } from '../../src/db/migrate.js'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { NO_RATE_LIMITS, TEST_PROVIDER, createTestApp } from '../helpers/app.js'
import { PASSWORD, post, uniqueEmail } from '../helpers/client.js'
import { call, startVouch } from '../helpers/process.js'
import { startSmtp, type ReceivedMail } from '../helpers/smtp.js'

const LAPTOP = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36'
const PHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'

/** Simultaneous sign-ins per account. */
const SIMULTANEOUS = 5
/** Accounts raced one after another: a race that is lost only sometimes is still caught. */
const ACCOUNTS = 5

/** A sign-in: its HTTP status and body. */
type Attempt = (email: string, userAgent: string) => Promise<{ status: number, body: string }>

/**
 * Registers ACCOUNTS accounts on the laptop, then for each signs in
 * SIMULTANEOUS times at once from the phone (attempt i through `signIns[i % n]`);
 * every sign-in must succeed.
 */
async function race (t: Test, signIns: readonly Attempt[], register: (email: string) => Promise<void>): Promise<string[]> {
  const emails: string[] = []
  for (let i = 0; i < ACCOUNTS; i++) {
    const email = uniqueEmail('device-race')
    await register(email)
    emails.push(email)
    const results = await Promise.all(Array.from({ length: SIMULTANEOUS }, (_, j) => signIns[j % signIns.length]!(email, PHONE)))
    t.same(results.filter((res) => res.status !== 200), [], `account ${i + 1}: all ${SIMULTANEOUS} sign-ins succeed`)
  }
  return emails
}

/** Once ACCOUNTS mails are in, and a while after for any extra: every new_device event and mail, per account. */
async function outcome (db: Db, received: ReceivedMail[], emails: readonly string[]) {
  for (let i = 0; i < 400 && received.length < emails.length; i++) await sleep(25)
  await sleep(500)
  const users = await db.user.findMany({ where: { email: { in: [...emails] } }, select: { id: true, email: true } })
  const events = await db.securityEvent.groupBy({ by: ['userId'], where: { type: 'new_device' }, _count: true })
  const eventsOf = new Map(events.map((row) => [row.userId, row._count]))
  return emails.map((email) => ({
    email,
    events: eventsOf.get(users.find((user) => user.email === email)!.id) ?? 0,
    mails: received.filter((mail) => mail.to === email).length,
  }))
}

const once = (emails: readonly string[]) => emails.map((email) => ({ email, events: 1, mails: 1 }))

for (const [name, env] of [['no session limit', {}], ['a session limit', { MAX_SESSIONS_PER_USER: '100' }]] as const) {
  t.test(`${name}: ${SIMULTANEOUS} simultaneous sign-ins from one new device are one new device: one event, one mail`, async (t) => {
    const smtp = await startSmtp(t)
    const { app, db } = await createTestApp(t, { env: { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(smtp.port), ...env } })
    const signIn: Attempt = async (email, userAgent) => {
      const res = await post(app, '/auth/login', { email, password: PASSWORD }, { 'user-agent': userAgent })
      return { status: res.statusCode, body: res.body }
    }
    const emails = await race(t, [signIn], async (email) => {
      const res = await post(app, '/auth/register', { email, password: PASSWORD }, { 'user-agent': LAPTOP })
      if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
    })
    t.same(await outcome(db, smtp.received, emails), once(emails), 'per account: one new_device event, one mail')
  })
}

t.test(`two instances sharing the database: ${SIMULTANEOUS} simultaneous sign-ins from one new device, split between them, are one new device`, async (t) => {
  const smtp = await startSmtp(t)
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  await applyMigrations(database.url)
  const db = createDb(database.url)
  t.teardown(() => db.$disconnect())
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-device-race-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const shared = {
    ...NO_RATE_LIMITS,
    DATABASE_URL: database.url,
    PUBLIC_URL: 'http://vouch.test',
    SIGNING_KEYS: JSON.stringify(await generatePrivateJwk('EdDSA')),
    REFRESH_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    LOG_LEVEL: 'warn',
  }
  const instances = [
    await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'a') }),
    await startVouch(t, { ...shared, DATA_DIR: path.join(dir, 'b') }),
  ]
  const signIns = instances.map((instance): Attempt => async (email, userAgent) => {
    const res = await call(instance.base, '/auth/login', { body: { email, password: PASSWORD }, headers: { 'user-agent': userAgent } })
    return { status: res.status, body: JSON.stringify(res.body) }
  })
  const emails = await race(t, signIns, async (email) => {
    const res = await call(instances[0]!.base, '/auth/register', { body: { email, password: PASSWORD }, headers: { 'user-agent': LAPTOP } })
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`)
  })
  t.same(await outcome(db, smtp.received, emails), once(emails), 'per account: one new_device event, one mail')
})
