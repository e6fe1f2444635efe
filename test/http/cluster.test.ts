/**
 * The cluster entry point (src/cluster.ts) as its own processes: a worker of
 * its own migrates and creates the keys, then two workers serve one port and
 * share revocations; SIGTERM stops them all; a failed preparation stops the
 * start with exit code 1.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { call, freePort, root, startVouch } from '../helpers/process.js'

t.test('a 2-worker cluster prepares in a worker of its own, serves the flow and stops on SIGTERM', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-cluster-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const vouch = await startVouch(t, { DATA_DIR: dir, DATABASE_URL: database.url, JWT_ISSUER: 'http://vouch.test', WORKERS: '2' }, 'src/cluster.ts')
  const { base } = vouch

  await stat(path.join(dir, 'master-key')) // the preparing worker created the key material
  const registered = await call(base, '/auth/register', { body: { email: 'cluster@example.com', password: 'a long enough password' } })
  t.equal(registered.status, 201, 'the migrated database takes a registration')
  t.equal((await call(base, '/auth/me', { token: registered.body.accessToken })).status, 200)
  t.equal((await call(base, '/auth/logout-all', { method: 'POST', token: registered.body.accessToken })).status, 204)
  // The worker that answered knew at once; the other hears of it over the bus
  // (PostgreSQL NOTIFY here, or the primary's IPC relay on SQLite), which the
  // contract bounds at 1 s. Connections land on the workers in turn: six in a
  // row refused means both have heard, and no answer may be anything but
  // 200 (not yet heard) or 401.
  const revokedAt = performance.now()
  const statuses: number[] = []
  let refusedInARow = 0
  while (refusedInARow < 6 && performance.now() - revokedAt < 1000) {
    const res = await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${registered.body.accessToken}`, connection: 'close' } })
    await res.arrayBuffer()
    statuses.push(res.status)
    refusedInARow = res.status === 401 ? refusedInARow + 1 : 0
  }
  const took = performance.now() - revokedAt
  t.comment(`every worker refused the token ${took.toFixed(1)} ms after logout-all answered (${statuses.filter((s) => s === 200).length} answer(s) before that from a worker yet to hear)`)
  t.equal(refusedInARow, 6, 'both workers refuse the token within 1 s')
  t.same(statuses.filter((s) => s !== 200 && s !== 401), [], 'every answer was 200 or 401')
  t.equal(await vouch.stop(), 0, 'SIGTERM: every worker finished, the primary exits 0')
})

t.test('a cluster whose preparation fails exits 1 and says why', async (t) => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cluster.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: `postgresql://postgres@127.0.0.1:${await freePort()}/nothing`, PORT: String(port), WORKERS: '2', DB_CONNECT_TIMEOUT_MS: '500' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk) => { output += chunk })
  child.stderr.on('data', (chunk) => { output += chunk })
  const code = await new Promise((resolve) => child.once('exit', resolve))
  t.equal(code, 1)
  t.match(output, /vouch: failed to start: preparing the database and the keys failed \(exit code 1\)/)
})
