import pg from 'pg'
import t, { type Test } from 'tap'
import { CHANNEL } from '../../src/bus/message.js'
import { DomainError } from '../../src/errors.js'
import { createTestDomain, TEST_PROVIDER } from '../helpers/app.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

const PASSWORD = 'correct horse battery staple'

/** A database with one user signed in on two devices; the CLI runs on the same DATABASE_URL and DATA_DIR. */
async function userWithTwoSessions (t: Test) {
  // No cache: the test's own domain sees the CLI's changes at once.
  const { domain, db, config, dir } = await createTestDomain(t, { env: { REVOCATION_CACHE_TTL: '0' } })
  const user = await domain.accounts.register('Ada@Example.com', PASSWORD)
  const phone = await domain.sessions.start(user, { deviceName: 'phone', ip: '10.0.0.1' })
  const laptop = await domain.sessions.start(user, { deviceName: 'laptop', ip: '10.0.0.2' })
  const env = { DATABASE_URL: config.databaseUrl, DATA_DIR: dir }
  return { domain, db, user, tokens: [phone, laptop], env }
}

const refused = async (t: Test, attempt: Promise<unknown>, code: 'token_revoked' | 'refresh_token_invalid') => {
  await t.rejects(attempt, { constructor: DomainError, code }, code)
}

t.test('vouch users show names a user by email or id, with the count of active sessions', async (t) => {
  const { user, env, domain, tokens } = await userWithTwoSessions(t)
  await domain.sessions.end(await domain.sessions.authenticate(tokens[0]!.accessToken))

  const byEmail = await runCli(['users', 'show', ' ADA@example.com ', '--json'], env)
  t.equal(byEmail.code, 0, byEmail.stderr)
  const shown = JSON.parse(byEmail.stdout)
  t.same(shown, {
    id: user.id, email: 'ada@example.com', createdAt: user.createdAt.toISOString(), disabledAt: null, tokenVersion: 0, activeSessions: 1,
  })

  const byId = await runCli(['users', 'show', user.id], env)
  t.equal(byId.code, 0, byId.stderr)
  t.match(byId.stdout, new RegExp(`^id +${user.id}\\nemail +ada@example.com\\ncreatedAt +\\S+\\ndisabledAt +-\\ntokenVersion +0\\nactiveSessions +1\\n$`))
})

t.test('vouch users with an unknown user exits 3 with a clear message; a malformed email or a missing argument exits 2', async (t) => {
  const { env, domain, tokens } = await userWithTwoSessions(t)
  for (const command of ['show', 'revoke-sessions', 'disable', 'enable']) {
    for (const who of ['nobody@example.com', '3f1b0c8e-0000-4000-8000-000000000000']) {
      const run = await runCli(['users', command, who, '--json'], env)
      t.equal(run.code, 3, `${command} ${who}`)
      t.equal(run.stderr, `vouch: no user ${who}\n`)
      t.same(JSON.parse(run.stdout), { error: { code: 'unknown_user', message: `no user ${who}` } })
    }
  }
  const deleteUnknown = await runCli(['users', 'delete', 'nobody@example.com', '--yes'], env)
  t.equal(deleteUnknown.code, 3)

  const malformed = await runCli(['users', 'show', 'a@b@c'], env)
  t.equal(malformed.code, 2)
  t.match(malformed.stderr, /^vouch: email must be of the form local@domain/)
  const missing = await runCli(['users', 'revoke-sessions'], env)
  t.equal(missing.code, 2)
  t.match(missing.stderr, /missing required argument 'email\|id'/)
  // Nothing changed.
  for (const pair of tokens) t.ok(await domain.sessions.authenticate(pair.accessToken))
})

t.test('vouch users revoke-sessions ends every session of the user at once: access and refresh tokens are refused', async (t) => {
  const { env, domain, db, user, tokens } = await userWithTwoSessions(t)
  const other = await domain.accounts.register('grace@example.com', PASSWORD)
  const bystander = await domain.sessions.start(other, { deviceName: 'desk' })

  const run = await runCli(['users', 'revoke-sessions', 'ada@example.com', '--json'], env)
  t.equal(run.code, 0, run.stderr)
  t.same(JSON.parse(run.stdout), {
    id: user.id, tokenVersion: 1, revokedSessions: 2, announced: TEST_PROVIDER === 'postgresql' ? 'postgres' : 'none',
  })
  for (const pair of tokens) {
    await refused(t, domain.sessions.authenticate(pair.accessToken), 'token_revoked')
    await refused(t, domain.sessions.refresh(pair.refreshToken, {}), 'refresh_token_invalid')
  }
  t.ok(await domain.sessions.authenticate(bystander.accessToken), 'another user keeps their session')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.id } })).tokenVersion, 1)

  const text = await runCli(['users', 'revoke-sessions', user.id], env)
  t.equal(text.code, 0)
  t.match(text.stdout, /^revoked 0 active session\(s\) of ada@example.com \(tokenVersion 2; servers told: \w+\)\n$/)
})

t.test('vouch users revoke-sessions tells running servers over PostgreSQL NOTIFY', { skip: TEST_PROVIDER !== 'postgresql' && 'PostgreSQL only' }, async (t) => {
  const { env, user } = await userWithTwoSessions(t)
  const listener = new pg.Client({ connectionString: env.DATABASE_URL })
  await listener.connect()
  t.teardown(() => listener.end())
  const heard: string[] = []
  listener.on('notification', (message) => { if (message.payload) heard.push(message.payload) })
  await listener.query(`LISTEN ${CHANNEL}`)

  const run = await runCli(['users', 'revoke-sessions', user.id], env)
  t.equal(run.code, 0, run.stderr)
  // The command waited for NOTIFY to be acknowledged: it has been delivered by the time a query on the listener returns.
  await listener.query('SELECT 1')
  t.equal(heard.length, 1)
  t.match(JSON.parse(heard[0]!), { k: 'user', i: user.id })

  const disable = await runCli(['users', 'disable', user.id], env)
  t.equal(disable.code, 0, disable.stderr)
  await listener.query('SELECT 1')
  t.equal(heard.length, 2, 'users disable tells the servers too')
  t.match(JSON.parse(heard[1]!), { k: 'user', i: user.id })
})

t.test('vouch users disable kills every token at once and refuses sign-in; enable lets the user sign in again and revives no token', async (t) => {
  const { env, domain, db, user, tokens } = await userWithTwoSessions(t)
  const other = await domain.accounts.register('grace@example.com', PASSWORD)
  const bystander = await domain.sessions.start(other, { deviceName: 'desk' })

  const disable = await runCli(['users', 'disable', 'ada@example.com', '--json'], env)
  t.equal(disable.code, 0, disable.stderr)
  const disabled = JSON.parse(disable.stdout)
  t.same(Object.keys(disabled).sort(), ['announced', 'changed', 'disabledAt', 'email', 'id', 'tokenVersion'])
  t.match(disabled, {
    id: user.id, email: 'ada@example.com', tokenVersion: 1, changed: true, announced: TEST_PROVIDER === 'postgresql' ? 'postgres' : 'none',
  })
  const row = await db.user.findUniqueOrThrow({ where: { id: user.id } })
  t.equal(disabled.disabledAt, row.disabledAt?.toISOString(), 'the stored disabledAt is printed')
  for (const pair of tokens) {
    await refused(t, domain.sessions.authenticate(pair.accessToken), 'token_revoked')
    await refused(t, domain.sessions.refresh(pair.refreshToken, {}), 'refresh_token_invalid')
  }
  await t.rejects(domain.accounts.signIn('ada@example.com', PASSWORD, { ip: '10.0.0.1' }), { code: 'invalid_credentials' }, 'sign-in is refused')
  t.ok(await domain.sessions.authenticate(bystander.accessToken), 'another user keeps their session')

  const show = await runCli(['users', 'show', 'ada@example.com'], env)
  t.match(show.stdout, `\ndisabledAt      ${disabled.disabledAt}\n`)
  const again = await runCli(['users', 'disable', user.id], env)
  t.equal(again.code, 0, again.stderr)
  t.equal(again.stdout, `ada@example.com was already disabled (disabledAt ${disabled.disabledAt}); nothing changed\n`)
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.id } })).tokenVersion, 1, 'disabling again bumps nothing')

  const enable = await runCli(['users', 'enable', 'ada@example.com', '--json'], env)
  t.equal(enable.code, 0, enable.stderr)
  t.same(JSON.parse(enable.stdout), {
    id: user.id, email: 'ada@example.com', disabledAt: null, tokenVersion: 1, changed: true, announced: 'none',
  })
  const signedIn = await domain.accounts.signIn('ada@example.com', PASSWORD, { ip: '10.0.0.1' })
  t.equal(signedIn.id, user.id, 'the user signs in again')
  for (const pair of tokens) await refused(t, domain.sessions.authenticate(pair.accessToken), 'token_revoked')
  const enableAgain = await runCli(['users', 'enable', user.id], env)
  t.equal(enableAgain.code, 0, enableAgain.stderr)
  t.equal(enableAgain.stdout, 'ada@example.com is not disabled; nothing changed\n')

  const recorded = await db.securityEvent.findMany({
    where: { userId: user.id, type: { in: ['account_disabled', 'account_enabled'] } }, orderBy: { id: 'asc' },
  })
  t.same(recorded.map((event) => [event.type, event.actor, event.actorId]), [['account_disabled', 'cli', null], ['account_enabled', 'cli', null]],
    'each change recorded once, on the CLI\'s authority; the no-ops record nothing')
})

t.test('vouch users disable and enable print the change for people', async (t) => {
  const { env, user } = await userWithTwoSessions(t)
  const disable = await runCli(['users', 'disable', user.id], env)
  t.equal(disable.code, 0, disable.stderr)
  t.match(disable.stdout, /^disabled ada@example.com \(disabledAt \S+; tokenVersion 1: every session ended; sign-in refused until enabled; servers told: \w+\)\n$/)
  const enable = await runCli(['users', 'enable', user.id], env)
  t.equal(enable.code, 0, enable.stderr)
  t.equal(enable.stdout, 'enabled ada@example.com: it can sign in again (its old sessions stay ended)\n')
})

t.test('vouch users delete without --yes exits 2 and changes nothing', async (t) => {
  const { env, domain, db, user, tokens } = await userWithTwoSessions(t)
  const run = await runCli(['users', 'delete', 'ada@example.com', '--json'], env)
  t.equal(run.code, 2)
  t.match(run.stderr, /add --yes to confirm/)
  t.equal(JSON.parse(run.stdout).error.code, 'confirmation_required')
  t.equal((await db.user.findUniqueOrThrow({ where: { id: user.id } })).email, 'ada@example.com')
  for (const pair of tokens) t.ok(await domain.sessions.authenticate(pair.accessToken))
})

t.test('vouch users delete --yes erases the account as DELETE /auth/account does: tokens dead, sessions and email gone, the email free again', async (t) => {
  const { env, domain, db, user, tokens } = await userWithTwoSessions(t)
  await domain.passwordResets.request('ada@example.com', { ip: '10.0.0.9' }).catch(() => {})

  const run = await runCli(['users', 'delete', 'ada@example.com', '--yes', '--json'], env)
  t.equal(run.code, 0, run.stderr)
  t.same(JSON.parse(run.stdout), { id: user.id, deleted: true, announced: TEST_PROVIDER === 'postgresql' ? 'postgres' : 'none' })

  for (const pair of tokens) {
    await refused(t, domain.sessions.authenticate(pair.accessToken), 'token_revoked')
    await refused(t, domain.sessions.refresh(pair.refreshToken, {}), 'refresh_token_invalid')
  }
  const row = await db.user.findUniqueOrThrow({ where: { id: user.id } })
  t.not(row.email, 'ada@example.com')
  t.notMatch(row.email, /ada|example/)
  t.equal(await db.session.count({ where: { userId: user.id } }), 0)
  t.equal(await db.passwordReset.count({ where: { userId: user.id } }), 0)
  await t.rejects(domain.accounts.signIn('ada@example.com', PASSWORD, { ip: '10.0.0.1' }), { code: 'invalid_credentials' })

  for (const who of ['ada@example.com', user.id]) {
    const show = await runCli(['users', 'show', who], env)
    t.equal(show.code, 3, `a deleted account is an unknown user (${who})`)
  }
  const again = await domain.accounts.register('ada@example.com', PASSWORD)
  t.not(again.id, user.id, 'the email can be registered again')
})

t.test('vouch users and each of its commands have --help', async (t) => {
  for (const command of [[], ['show'], ['disable'], ['enable'], ['revoke-sessions'], ['delete']]) {
    const run = await runCli(['users', ...command, '--help'], {})
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, new RegExp(`^Usage: vouch users${command.map((c) => ` ${c}`).join('')}`))
  }
  const help = await runCli(['users', 'delete', '--help'], {})
  t.match(help.stdout, /--yes/)
  t.match((await runCli(['--help'], {})).stdout, /\n  users\b/, 'vouch --help lists users')
})
