/**
 * TRUST_PROXY decides which address the per-IP limits count and the device
 * list shows. A hop count (or the proxies' addresses) takes the address the
 * proxy itself appended to X-Forwarded-For; `true` takes whatever the client
 * wrote first, so vouch warns when it starts with it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { createScratchDatabase } from '../../src/db/scratch.js'
import { TEST_PROVIDER, createTestApp } from '../helpers/app.js'
import { PASSWORD, bearer, uniqueEmail } from '../helpers/client.js'
import { startVouch } from '../helpers/process.js'

/** Registers through a proxy at 10.0.0.5 that appended 203.0.113.9 to a forged header; the IP the device list shows. */
async function recordedIp (app: FastifyInstance): Promise<string> {
  const registered = await app.inject({
    method: 'POST',
    url: '/auth/register',
    payload: { email: uniqueEmail('proxied'), password: PASSWORD },
    remoteAddress: '10.0.0.5',
    headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' },
  })
  const sessions = await app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(registered.json().accessToken) })
  return sessions.json().sessions[0].ip
}

t.test('behind one proxy, a hop count or the proxy address records the client address the proxy saw, not a forged one', async (t) => {
  for (const TRUST_PROXY of ['1', '10.0.0.5']) {
    const { app } = await createTestApp(t, { env: { TRUST_PROXY } })
    t.equal(await recordedIp(app), '203.0.113.9', `TRUST_PROXY=${TRUST_PROXY}`)
  }
})

t.test('TRUST_PROXY=true believes a forged X-Forwarded-For, and the server warns at start-up', async (t) => {
  const { app } = await createTestApp(t, { env: { TRUST_PROXY: 'true' } })
  t.equal(await recordedIp(app), '6.6.6.6', 'the address the client chose')

  const dir = await mkdtemp(path.join(tmpdir(), 'vouch-trust-proxy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const database = await createScratchDatabase(TEST_PROVIDER)
  t.teardown(() => database.drop())
  const vouch = await startVouch(t, { DATA_DIR: dir, DATABASE_URL: database.url, TRUST_PROXY: 'true', LOG_LEVEL: 'warn' })
  const warned = () => vouch.output().split('\n').some((line) => {
    try {
      const entry = JSON.parse(line) as { level?: number, msg?: string }
      return entry.level === 40 && /^TRUST_PROXY=true trusts any X-Forwarded-For header/.test(entry.msg ?? '')
    } catch {
      return false
    }
  })
  for (let i = 0; i < 40 && !warned(); i++) await sleep(50)
  t.ok(warned(), 'a warning naming TRUST_PROXY is logged at start-up')
  await vouch.stop()
})
