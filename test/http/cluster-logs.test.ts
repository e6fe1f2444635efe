/**
 * The cluster primary (src/cluster.ts) logs JSON lines like its workers, at
 * LOG_LEVEL: how many workers it started, a worker that died and the one
 * started in its place, and the stop. Requests through the cluster carry
 * request ids that are unique across its workers.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { startVouch } from '../helpers/process.js'

interface Line { level: number, pid: number, msg: string, workers?: number, pids?: number[], worker?: number, replaces?: number, reqId?: string }

async function startCluster (t: Test, env: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-cluster-logs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const vouch = await startVouch(t, { DATA_DIR: dir, DATABASE_URL: database.url, JWT_ISSUER: 'http://vouch.test', WORKERS: '2', ...env }, 'src/cluster.ts')
  const lines = () => vouch.output().split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Line)
  const primary = () => lines().filter((line) => line.pid === vouch.child.pid)
  return { vouch, lines, primary }
}

/** Polls until `found` returns something, for at most `ms`. */
async function eventually<T> (found: () => T | undefined, ms = 20_000): Promise<T | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = found()
    if (value !== undefined || Date.now() > deadline) return value
    await sleep(50)
  }
}

t.test('the primary logs JSON lines: the workers it started, a dead worker replaced, the stop', async (t) => {
  const { vouch, lines, primary } = await startCluster(t)
  t.doesNotThrow(lines, 'every line of output, primary and workers, is JSON')
  const started = primary().find((line) => line.workers !== undefined && line.pids !== undefined)
  t.match(started, { level: 30, workers: 2, msg: 'started 2 workers' }, 'the primary names how many workers it started')
  t.equal(started?.pids?.length, 2)

  // Once both workers listen, requests land on either; every answer's id is fresh.
  await eventually(() => lines().filter((line) => line.msg === 'ready').length >= 2 || undefined)
  const ids = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`${vouch.base}/health/live`, { headers: { connection: 'close' } })
    ids.add(res.headers.get('x-request-id')!)
  }
  t.equal(ids.size, 40, '40 requests, 40 distinct ids')
  const servedBy = await eventually(() => {
    const pids = new Set(lines().filter((line) => line.reqId !== undefined && ids.has(line.reqId)).map((line) => line.pid))
    return pids.size === 2 ? pids : undefined
  })
  t.equal(servedBy?.size, 2, 'both workers served some of them, and logged them under the ids they answered with')

  const victim = started!.pids![0]!
  process.kill(victim, 'SIGKILL')
  const exited = await eventually(() => primary().find((line) => line.worker === victim && line.level === 50))
  t.match(exited, { msg: new RegExp(`worker ${victim} exited \\(SIGKILL\\); starting another`) }, 'the dead worker is logged as an error')
  const restarted = await eventually(() => primary().find((line) => line.replaces === victim))
  t.match(restarted, { level: 30, msg: 'worker restarted', worker: Number }, 'and the one started in its place')

  t.equal(await vouch.stop(), 0)
  t.doesNotThrow(lines, 'the output is still JSON lines after the stop')
  t.ok(primary().some((line) => line.msg === 'every worker stopped; exiting'), 'the primary says it stopped')
})

t.test('the primary logs at LOG_LEVEL: at warn, its information lines are left out', async (t) => {
  const { vouch, primary } = await startCluster(t, { LOG_LEVEL: 'warn' })
  t.equal(await vouch.stop(), 0)
  t.same(primary().filter((line) => line.level < 40), [], 'no line below warn')
})
