import t, { type Test } from 'tap'
import { createTestDomain } from '../helpers/app.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

const PASSWORD = 'correct horse battery staple'
const ADMIN = { actor: { kind: 'admin', id: 'ops-console' }, client: { ip: '10.9.9.9', userAgent: 'curl/8.5.0' } } as const

/** A user with a short timeline: two sign-ins (the second from a new device), then an admin's sign-out everywhere. */
async function userWithTimeline (t: Test) {
  const { domain, db, config, dir } = await createTestDomain(t)
  const user = await domain.accounts.register('ada@example.com', PASSWORD)
  const phone = await domain.sessions.start(user, { deviceName: 'phone', ip: '10.0.0.1', userAgent: 'Mozilla/5.0 (Android 14)' })
  const laptop = await domain.sessions.start(user, { deviceName: 'laptop', ip: '10.0.0.2', userAgent: 'Mozilla/5.0 (X11; Linux)' })
  await domain.administration.revokeSessions(user.id, ADMIN)
  const env = { DATABASE_URL: config.databaseUrl, DATA_DIR: dir }
  return { domain, db, user, env, sessions: [phone, laptop] }
}

/** What a JSON document holds for a value: Dates as ISO strings. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

t.test('vouch events --json prints the stored timeline newest first; the read itself is recorded on the CLI\'s authority', async (t) => {
  const { domain, db, user, env } = await userWithTimeline(t)
  const stored = await domain.events.page(user.id, { limit: 100 })
  t.same(stored.events.map((event) => event.type), ['signed_out_everywhere', 'new_device', 'sign_in_succeeded', 'sign_in_succeeded'])

  const run = await runCli(['events', 'ADA@example.com', '--json'], env)
  t.equal(run.code, 0, run.stderr)
  const printed = JSON.parse(run.stdout)
  t.same(printed, asJson({ events: stored.events }), 'the events as stored, and no next on the last page')
  t.same(Object.keys(printed.events[0]).sort(), ['actor', 'actorId', 'at', 'detail', 'id', 'ip', 'sessionId', 'type', 'userAgent', 'userId'])
  t.match(printed.events[0], { type: 'signed_out_everywhere', actor: 'admin', actorId: 'ops-console', ip: '10.9.9.9', userAgent: 'curl/8.5.0' })

  const reads = await db.securityEvent.findMany({ where: { userId: user.id, type: 'admin_read' } })
  t.same(reads.map((event) => [event.actor, event.actorId, event.ip, JSON.parse(event.detail ?? '{}')]), [['cli', null, null, { what: 'events' }]])

  const byId = await runCli(['events', user.id, '--json'], env)
  t.equal(byId.code, 0, byId.stderr)
  t.match(JSON.parse(byId.stdout).events[0], { type: 'admin_read', actor: 'cli', actorId: null, detail: { what: 'events' } },
    'the next read shows the previous one, newest first')
})

t.test('vouch events prints one line per event: time, type, actor, ip, user agent, session, detail', async (t) => {
  const { user, env, domain } = await userWithTimeline(t)
  const [signedOut, newDevice, secondSignIn, firstSignIn] = (await domain.events.page(user.id, { limit: 100 })).events

  const run = await runCli(['events', 'ada@example.com'], env)
  t.equal(run.code, 0, run.stderr)
  t.same(run.stdout.split('\n'), [
    `${signedOut!.at.toISOString()}  signed_out_everywhere  admin:ops-console  ip=10.9.9.9  ua=curl/8.5.0  session=-`,
    `${newDevice!.at.toISOString()}  new_device  user  ip=10.0.0.2  ua="Mozilla/5.0 (X11; Linux)"  session=${newDevice!.sessionId}  deviceName=laptop`,
    `${secondSignIn!.at.toISOString()}  sign_in_succeeded  user  ip=10.0.0.2  ua="Mozilla/5.0 (X11; Linux)"  session=${secondSignIn!.sessionId}  method=password`,
    `${firstSignIn!.at.toISOString()}  sign_in_succeeded  user  ip=10.0.0.1  ua="Mozilla/5.0 (Android 14)"  session=${firstSignIn!.sessionId}  method=password`,
    '',
  ])
  t.match(signedOut!.at.toISOString(), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

t.test('vouch events pages with --limit and --before: the pages together are the timeline, each event once', async (t) => {
  const { domain, user, env } = await userWithTimeline(t)
  const timeline = (await domain.events.page(user.id, { limit: 100 })).events.map((event) => event.id)

  const first = await runCli(['events', user.id, '--limit', '3', '--json'], env)
  t.equal(first.code, 0, first.stderr)
  const page1 = JSON.parse(first.stdout)
  t.equal(page1.events.length, 3)
  t.equal(page1.next, page1.events[2].id, 'next is the oldest event of the page')

  const second = await runCli(['events', user.id, '--limit', '3', '--before', page1.next, '--json'], env)
  t.equal(second.code, 0, second.stderr)
  const page2 = JSON.parse(second.stdout)
  t.equal(page2.next, undefined, 'the last page has no next')
  t.same([...page1.events, ...page2.events].map((event: { id: string }) => event.id), timeline,
    'the read recorded after page 1 is newer than anything paged after it')

  const text = await runCli(['events', user.id, '--limit', '1'], env)
  t.equal(text.code, 0, text.stderr)
  const lines = text.stdout.trimEnd().split('\n')
  t.equal(lines.length, 2)
  t.match(lines[0], /^\S+Z  admin_read  cli  ip=-  ua=-  session=-  what=events$/)
  t.match(lines[1], /^older events: --before [0-9a-f-]{36}$/)

  const none = await runCli(['events', user.id, '--before', timeline.at(-1)!], env)
  t.equal(none.code, 0, none.stderr)
  t.equal(none.stdout, 'no older events\n')
})

t.test('vouch events escapes control and bidi characters of user agents and device names in its text output', async (t) => {
  const { domain, db, config, dir } = await createTestDomain(t)
  const user = await domain.accounts.register('ada@example.com', PASSWORD)
  await domain.sessions.start(user, { deviceName: 'phone', ip: '10.0.0.1' })
  const hostile = 'curl\u001b[2J\u001b]0;owned\u0007\u202egnp.exe\r\nfake line'
  await domain.sessions.start(user, { deviceName: 'tab\u009b31m', ip: '10.0.0.2', userAgent: hostile })
  const env = { DATABASE_URL: config.databaseUrl, DATA_DIR: dir }

  const run = await runCli(['events', user.id], env)
  t.equal(run.code, 0, run.stderr)
  // eslint-disable-next-line no-control-regex -- the test looks for control characters
  t.notMatch(run.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/, 'no control character but the line ends')
  t.equal(run.stdout.trimEnd().split('\n').length, 3, 'one line per event')
  t.match(run.stdout, 'ua="curl\\u001b[2J\\u001b]0;owned\\u0007\\u202egnp.exe\\u000d\\u000afake line"')
  t.match(run.stdout, 'deviceName="tab\\u009b31m"')

  const json = await runCli(['events', user.id, '--json'], env)
  const printed = JSON.parse(json.stdout).events.find((event: { type: string }) => event.type === 'new_device')
  t.equal(printed.userAgent, hostile, '--json prints the stored value (JSON escapes it)')
  t.equal(printed.detail.deviceName, 'tab\u009b31m')
  t.equal(await db.securityEvent.count({ where: { userId: user.id, type: 'admin_read' } }), 2)
})

t.test('vouch events: an unknown user exits 3; a bad --limit or --before, or no user, exits 2 and reads nothing', async (t) => {
  const { db, user, env } = await userWithTimeline(t)
  for (const who of ['nobody@example.com', '3f1b0c8e-0000-4000-8000-000000000000']) {
    const run = await runCli(['events', who, '--json'], env)
    t.equal(run.code, 3, who)
    t.equal(run.stderr, `vouch: no user ${who}\n`)
    t.same(JSON.parse(run.stdout), { error: { code: 'unknown_user', message: `no user ${who}` } })
  }
  for (const limit of ['0', '101', 'ten', '2.5']) {
    const run = await runCli(['events', user.id, '--limit', limit, '--json'], env)
    t.equal(run.code, 2, `--limit ${limit}`)
    t.equal(JSON.parse(run.stdout).error.code, 'invalid_argument')
    t.match(run.stderr, /^vouch: --limit must be a whole number from 1 to 100/)
  }
  const before = await runCli(['events', user.id, '--before', "x' OR 1=1"], env)
  t.equal(before.code, 2)
  t.match(before.stderr, /^vouch: --before must be an event id/)
  const missing = await runCli(['events'], env)
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing required argument 'email\|id'/)
  t.equal(await db.securityEvent.count({ where: { type: 'admin_read' } }), 0, 'no read was made, so none recorded')
})

t.test('vouch events <id> reads a deleted account\'s timeline, as the admin API does; its old email is an unknown user', async (t) => {
  const { domain, user, env } = await userWithTimeline(t)
  await domain.administration.delete(user.id, ADMIN)

  const run = await runCli(['events', user.id, '--json'], env)
  t.equal(run.code, 0, run.stderr)
  const { events } = JSON.parse(run.stdout)
  t.same(events.map((event: { type: string }) => event.type), ['account_deleted', 'signed_out_everywhere', 'new_device', 'sign_in_succeeded', 'sign_in_succeeded'])
  t.notMatch(run.stdout, 'ada@example.com', 'the erased address is nowhere in it')

  const text = await runCli(['events', user.id, '--limit', '1'], env)
  t.equal(text.code, 0, text.stderr)
  t.match(text.stdout, /^\S+Z  admin_read  cli  ip=-  ua=-  session=-  what=events\n/, 'the read is recorded on the tombstone\'s timeline')

  const byEmail = await runCli(['events', 'ada@example.com', '--json'], env)
  t.equal(byEmail.code, 3)
  t.same(JSON.parse(byEmail.stdout), { error: { code: 'unknown_user', message: 'no user ada@example.com' } })
})

t.test('vouch events --help describes the paging options', async (t) => {
  const run = await runCli(['events', '--help'], {})
  t.equal(run.code, 0)
  t.match(run.stdout, /^Usage: vouch events \[options\] <email\|id>/)
  for (const option of ['--limit <n>', '--before <id>', '--json']) t.match(run.stdout, option)
  t.match((await runCli(['--help'], {})).stdout, /\n  events\b/, 'vouch --help lists events')
})
