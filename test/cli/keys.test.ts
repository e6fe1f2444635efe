import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import type { JWK } from 'jose'
import { loadSealer } from '../../src/crypto/sealing.js'
import { createDb } from '../../src/db/client.js'
import { cliBuilt, CLI, runCli } from '../helpers/cli.js'

if (!cliBuilt()) t.fail(`${CLI} is missing: run npm run build first`)

const PRIVATE_PARAMS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']

/** A data folder and a migrated SQLite database in it. */
async function dataDir (t: Test): Promise<{ DATA_DIR: string, DATABASE_URL: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-cli-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { DATA_DIR: dir, DATABASE_URL: `file:${path.join(dir, 'vouch.db')}` }
  const migrate = await runCli(['migrate'], env)
  if (migrate.code !== 0) throw new Error(migrate.stderr)
  return env
}

/** The stored private keys, opened with the data folder's master key (what only the server can do). */
async function storedPrivateKeys (env: { DATA_DIR: string, DATABASE_URL: string }): Promise<JWK[]> {
  const db = createDb(env.DATABASE_URL)
  try {
    const sealer = await loadSealer(undefined, env.DATA_DIR)
    return (await db.signingKey.findMany({ orderBy: { generation: 'desc' } }))
      .map((row) => JSON.parse(sealer.open(row.sealedPrivateJwk, `signing-key:${row.kid}`)) as JWK)
  } finally {
    await db.$disconnect()
  }
}

t.test('vouch keys rotate adds a published key that signs later; the key it replaces is scheduled to retire', async (t) => {
  const env = { ...await dataDir(t), KEY_PUBLISH_DELAY: '0', ACCESS_TOKEN_TTL: '60', CLOCK_SKEW: '0' }

  const empty = await runCli(['keys', 'list', '--json'], env)
  t.equal(empty.code, 0, empty.stderr)
  t.same(JSON.parse(empty.stdout).keys, [], 'listing creates no key')

  const first = await runCli(['keys', 'rotate', '--json'], env)
  t.equal(first.code, 0, first.stderr)
  const added = JSON.parse(first.stdout)
  t.same(added.retiring, [])

  const second = await runCli(['keys', 'rotate'], env)
  t.equal(second.code, 0, second.stderr)
  t.match(second.stdout, /^added \S+ \(generation 2\), signing from \S+\nretiring (\S+) at \S+\n$/)
  t.equal(/retiring (\S+)/.exec(second.stdout)?.[1], added.added.kid)

  const list = await runCli(['keys', 'list', '--json'], env)
  t.equal(list.code, 0, list.stderr)
  const { source, keys } = JSON.parse(list.stdout)
  t.equal(source, 'database')
  t.equal(keys.length, 2)
  t.same(keys.map((key: { status: string }) => key.status), ['signing', 'verifying'])
  t.equal(keys[1].kid, added.added.kid)
  for (const key of keys) t.same(Object.keys(key).sort(), ['activatesAt', 'algorithm', 'kid', 'retiresAt', 'status'])
  t.equal(keys[1].retiresAt !== null && Date.parse(keys[1].retiresAt) > Date.parse(keys[0].activatesAt), true)

  const text = await runCli(['keys', 'list'], env)
  t.equal(text.code, 0)
  t.match(text.stdout, new RegExp(`^${keys[0].kid}  EdDSA  signing  activates \\S+  retires -\\n${keys[1].kid}  EdDSA  verifying`))
})

t.test('vouch keys list never prints private key material', async (t) => {
  const env = await dataDir(t)
  await runCli(['keys', 'rotate'], env)
  await runCli(['keys', 'rotate'], env)
  const stored = await storedPrivateKeys(env) as unknown as Array<Record<string, unknown>>
  t.equal(stored.length, 2)
  for (const args of [['keys', 'list'], ['keys', 'list', '--json']]) {
    const run = await runCli(args, env)
    t.equal(run.code, 0)
    for (const key of stored) {
      for (const param of PRIVATE_PARAMS) {
        if (typeof key[param] === 'string') t.notOk(run.stdout.includes(key[param]), `${args.join(' ')} leaves out "${param}"`)
      }
    }
    t.notMatch(run.stdout, /"d"/)
  }
})

t.test('vouch keys list reads SIGNING_KEYS when set, and keys rotate refuses with exit code 2', async (t) => {
  const env = await dataDir(t)
  await runCli(['keys', 'rotate'], env)
  const stored = await storedPrivateKeys(env)
  const configured = { ...env, SIGNING_KEYS: JSON.stringify({ keys: stored }) }

  const list = await runCli(['keys', 'list', '--json'], configured)
  t.equal(list.code, 0, list.stderr)
  t.equal(JSON.parse(list.stdout).source, 'SIGNING_KEYS')
  t.equal(JSON.parse(list.stdout).keys.length, 1)

  const rotate = await runCli(['keys', 'rotate', '--json'], configured)
  t.equal(rotate.code, 2)
  t.match(rotate.stderr, /SIGNING_KEYS is set/)
  t.equal(JSON.parse(rotate.stdout).error.code, 'signing_keys_configured')
  t.same(await storedPrivateKeys(env), stored, 'the stored keys are untouched')
})

t.test('vouch keys, keys list and keys rotate have --help', async (t) => {
  for (const args of [['keys', '--help'], ['keys', 'list', '--help'], ['keys', 'rotate', '--help']]) {
    const run = await runCli(args, {})
    t.equal(run.code, 0, args.join(' '))
    t.match(run.stdout, new RegExp(`Usage: vouch ${args.slice(0, -1).join(' ')}`))
  }
  const unknown = await runCli(['keys', 'remove'], {})
  t.equal(unknown.code, 2)
})
