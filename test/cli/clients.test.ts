import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { createTestApp, createTestDatabase } from '../helpers/app.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`
const strongSecret = () => randomBytes(32).toString('base64url')

t.test('vouch clients add prints a secret once that authenticates as the kind it was added as (admin API, introspection); only its SHA-256 is stored', async (t) => {
  const { app, db, config, dir } = await createTestApp(t)
  const env = { DATABASE_URL: config.databaseUrl, DATA_DIR: dir }

  const admin = await runCli(['clients', 'add', 'ops-console', '--kind', 'admin'], env)
  t.equal(admin.code, 0, admin.stderr)
  t.match(admin.stdout, /^added admin client ops-console\nsecret: \S+\nStore this secret now: it is shown only this once/)
  const adminSecret = /^secret: (\S+)$/m.exec(admin.stdout)![1]!

  const resource = await runCli(['clients', 'add', 'feed-reader', '--kind', 'resource', '--json'], env)
  t.equal(resource.code, 0, resource.stderr)
  const added = JSON.parse(resource.stdout)
  t.same(Object.keys(added).sort(), ['createdAt', 'id', 'kind', 'secret'])
  t.match(added, { id: 'feed-reader', kind: 'resource', secret: /^[\w-]{43}$/ })

  const rows = await db.apiClient.findMany({ orderBy: { id: 'asc' } })
  t.same(rows.map((row) => [row.id, row.kind, row.createdAt.toISOString()]).at(0), ['feed-reader', 'resource', added.createdAt])
  for (const [row, secret] of [[rows[0]!, added.secret as string], [rows[1]!, adminSecret]] as const) {
    t.equal(row.secretHash, createHash('sha256').update(secret).digest('base64url'), `${row.id}: the SHA-256 of the printed secret`)
    t.notOk(Object.values(row).some((value) => String(value).includes(secret)), `${row.id}: no column holds the secret`)
  }

  // The admin API (plugins/admin-auth.ts) takes the stored clients: an admin in, a resource server's right secret 403.
  const url = '/admin/users/3f1b0c8e-0000-4000-8000-000000000000'
  const asAdmin = await app.inject({ url, headers: { authorization: basic('ops-console', adminSecret) } })
  t.equal(asAdmin.statusCode, 404, 'the admin client is authenticated (and finds no such user)')
  const asResource = await app.inject({ url, headers: { authorization: basic('feed-reader', added.secret) } })
  t.equal(asResource.statusCode, 403, 'the resource client is authenticated, and is not an admin')
  t.equal(asResource.json().code, 'forbidden')
  const wrong = await app.inject({ url, headers: { authorization: basic('ops-console', added.secret) } })
  t.equal(wrong.statusCode, 401, "another client's secret is refused")

  // Introspection (plugins/client-auth.ts) takes resource clients only.
  const introspect = (id: string, secret: string) =>
    app.inject({ method: 'POST', url: '/auth/introspect', headers: { authorization: basic(id, secret) }, payload: { token: 'x' } })
  const asResourceServer = await introspect('feed-reader', added.secret)
  t.equal(asResourceServer.statusCode, 200, 'the resource client introspects')
  t.same(asResourceServer.json(), { active: false })
  t.equal((await introspect('ops-console', adminSecret)).statusCode, 401, 'an admin client is no resource server')
})

t.test('vouch clients list shows id, kind and createdAt, never a secret or its hash; remove deletes one and exits 3 for an unknown id', async (t) => {
  const { db, url, dir } = await createTestDatabase(t)
  const adminSecret = strongSecret()
  const env = { DATABASE_URL: url, DATA_DIR: dir, ADMIN_CLIENTS: `ops:${adminSecret}` }

  const empty = await runCli(['clients', 'list'], env)
  t.equal(empty.code, 0, empty.stderr)
  t.equal(empty.stdout, 'no stored clients\n', 'clients of the environment are not listed')

  const secrets: string[] = []
  for (const [id, kind] of [['zeta-api', 'resource'], ['alpha-console', 'admin']]) {
    const run = await runCli(['clients', 'add', id!, '--kind', kind!, '--json'], env)
    t.equal(run.code, 0, run.stderr)
    secrets.push(JSON.parse(run.stdout).secret)
  }
  const rows = await db.apiClient.findMany({ orderBy: { id: 'asc' } })
  const forbidden = [...secrets, ...rows.map((row) => row.secretHash), adminSecret]

  const json = await runCli(['clients', 'list', '--json'], env)
  t.equal(json.code, 0, json.stderr)
  t.same(JSON.parse(json.stdout), {
    clients: rows.map((row) => ({ id: row.id, kind: row.kind, createdAt: row.createdAt.toISOString() })),
  })
  const text = await runCli(['clients', 'list'], env)
  t.equal(text.code, 0, text.stderr)
  t.equal(text.stdout, rows.map((row) => `${row.id}  ${row.kind}  ${row.createdAt.toISOString()}\n`).join(''))
  for (const value of forbidden) t.notOk(json.stdout.includes(value) || text.stdout.includes(value), 'no secret and no hash listed')

  const remove = await runCli(['clients', 'remove', 'zeta-api', '--json'], env)
  t.equal(remove.code, 0, remove.stderr)
  t.same(JSON.parse(remove.stdout), { id: 'zeta-api', removed: true })
  t.same((await db.apiClient.findMany()).map((row) => row.id), ['alpha-console'])

  const again = await runCli(['clients', 'remove', 'zeta-api', '--json'], env)
  t.equal(again.code, 3)
  t.same(JSON.parse(again.stdout), { error: { code: 'unknown_client', message: 'no stored client zeta-api' } })
  const configured = await runCli(['clients', 'remove', 'ops'], env)
  t.equal(configured.code, 3)
  t.equal(configured.stderr, 'vouch: client ops is configured in ADMIN_CLIENTS, not stored: remove it from the environment\n')
})

t.test('vouch clients add: a taken, configured or malformed id, or a missing or unknown --kind, exits 2 and stores nothing', async (t) => {
  const { db, url, dir } = await createTestDatabase(t)
  const env = { DATABASE_URL: url, DATA_DIR: dir, ADMIN_CLIENTS: `ops:${strongSecret()}`, RESOURCE_CLIENTS: `feed:${strongSecret()}` }
  const first = await runCli(['clients', 'add', 'billing', '--kind', 'resource'], env)
  t.equal(first.code, 0, first.stderr)
  const stored = await db.apiClient.findUniqueOrThrow({ where: { id: 'billing' } })

  const refusals: Array<[string[], RegExp]> = [
    [['billing', '--kind', 'admin'], /^vouch: Client "billing" already exists\.\n$/],
    [['ops', '--kind', 'admin'], /^vouch: Client "ops" is configured in the environment\.\n$/],
    [['feed', '--kind', 'resource'], /^vouch: Client "feed" is configured in the environment\.\n$/],
    [['has space', '--kind', 'admin'], /^vouch: A client id is 1 to 128 letters, digits/],
    [['x'.repeat(129), '--kind', 'admin'], /^vouch: A client id is 1 to 128 letters, digits/],
  ]
  for (const [args, message] of refusals) {
    const run = await runCli(['clients', 'add', ...args, '--json'], env)
    t.equal(run.code, 2, args.join(' '))
    t.match(run.stderr, message)
    t.equal(JSON.parse(run.stdout).error.code, 'validation_failed')
    t.notMatch(run.stdout, /secret/i, 'no secret printed')
  }
  const noKind = await runCli(['clients', 'add', 'other'], env)
  t.equal(noKind.code, 2)
  t.match(noKind.stderr, /required option '--kind <kind>' not specified/)
  const badKind = await runCli(['clients', 'add', 'other', '--kind', 'superuser'], env)
  t.equal(badKind.code, 2)
  t.match(badKind.stderr, /Allowed choices are admin, resource/)

  t.same(await db.apiClient.findMany(), [stored], 'the first client is unchanged, nothing else stored')
})

t.test('vouch clients and each of its commands have --help', async (t) => {
  for (const command of [[], ['add'], ['list'], ['remove']]) {
    const run = await runCli(['clients', ...command, '--help'], {})
    t.equal(run.code, 0, run.stderr)
    t.match(run.stdout, new RegExp(`^Usage: vouch clients${command.map((c) => ` ${c}`).join('')}`))
  }
  t.match((await runCli(['clients', 'add', '--help'], {})).stdout, /--kind <kind>.*\(choices: "admin", "resource"\)/s)
  t.match((await runCli(['--help'], {})).stdout, /\n  clients\b/, 'vouch --help lists clients')
})
