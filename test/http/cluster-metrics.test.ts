/**
 * Metrics of a cluster (src/cluster.ts, src/metrics/cluster.ts): the primary
 * serves METRICS_PORT, and one scrape sums every worker's registry. The
 * primary hands connections to its workers in turn, so requests on fresh
 * connections land on both: the total can only come out right if both
 * workers' counts were added.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER } from '../helpers/app.js'
import { freePort, startVouch } from '../helpers/process.js'
import { parseExposition, sample } from '../helpers/metrics.js'

const REQUESTS = 20

t.test('one scrape of a 2-worker cluster counts the requests of both workers', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-cluster-metrics-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const metricsPort = await freePort()
  const vouch = await startVouch(t, {
    DATA_DIR: dir, DATABASE_URL: database.url, JWT_ISSUER: 'http://vouch.test', WORKERS: '2', METRICS_PORT: String(metricsPort),
  }, 'src/cluster.ts')
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    t.equal(res.status, 200, 'the primary answers GET /metrics')
    return parseExposition(await res.text())
  }
  // Ready means one worker listens: wait until the scrape covers both, so that the requests below are shared.
  const deadline = Date.now() + 30_000
  let before = await scrape()
  while (sample(before, 'vouch_processes') < 2) {
    if (Date.now() > deadline) throw new Error(`the second worker did not start:\n${vouch.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    before = await scrape()
  }
  t.equal(sample(before, 'vouch_processes'), 2, 'one scrape covers both workers')
  const jwks = { method: 'GET', route: '/.well-known/jwks.json', status_code: '200' }

  for (let i = 0; i < REQUESTS; i++) {
    const res = await fetch(`${vouch.base}/.well-known/jwks.json`, { headers: { connection: 'close' } })
    t.equal(res.status, 200)
    await res.arrayBuffer()
  }
  const after = await scrape()
  t.equal(sample(after, 'vouch_http_request_duration_seconds_count', jwks) - sample(before, 'vouch_http_request_duration_seconds_count', jwks), REQUESTS,
    'the request counter of the one scrape is the total of both workers')
  t.equal(sample(after, 'vouch_invalidation_bus_connected'), 1, 'every worker hears the others (the lowest of the workers)')

  const publicMetrics = await fetch(`${vouch.base}/metrics`, { headers: { connection: 'close' } })
  t.equal(publicMetrics.status, 404, 'not on the public port')
  t.equal(await vouch.stop(), 0)
})
