/**
 * Tokens verified per second by @vouch/verifier against jose's bare
 * `jwtVerify` on the same token with the same key, in the same run (target
 * ratio ≥ 0.9): what the revocation check and the plumbing cost on top of
 * the signature. `npm run bench:verifier` (`-- --quick` for a short run).
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { createVerifier } from '@vouch/verifier'
import { applyMigrations } from '../src/db/migrate.js'
import { createScratchDatabase } from '../src/db/scratch.js'
import { post, quick, startBenchServer, table } from './lib/harness.js'

const CLIENT = { id: 'bench', secret: randomBytes(16).toString('hex') }
const seconds = quick ? 2 : 8
const database = await createScratchDatabase('sqlite')
await applyMigrations(database.url)
const server = await startBenchServer({
  DATABASE_URL: database.url, RESOURCE_CLIENTS: `${CLIENT.id}:${CLIENT.secret}`, JWT_ISSUER: 'http://vouch.bench',
})
try {
  const { accessToken } = await post(server.base, '/auth/register', { email: `verifier-${Date.now()}@example.com`, password: 'benchmark password' })
  const token = accessToken as string
  const jwks = createLocalJWKSet(await (await fetch(`${server.base}/.well-known/jwks.json`)).json() as JSONWebKeySet)
  const verifier = createVerifier({ vouchUrl: server.base, issuer: 'http://vouch.bench', audience: 'vouch', clientId: CLIENT.id, clientSecret: CLIENT.secret })
  await verifier.ready()

  const bare = () => jwtVerify(token, jwks, { algorithms: ['EdDSA'], typ: 'at+jwt', issuer: 'http://vouch.bench', audience: 'vouch' })
  const full = () => verifier.verify(token)
  /** Verifications per second over `seconds`, 64 in flight. */
  const rate = async (verify: () => Promise<unknown>, duration: number) => {
    let count = 0
    const end = performance.now() + duration * 1000
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (performance.now() < end) { await verify(); count += 1 }
    }))
    return count / duration
  }
  await rate(bare, 0.5)
  await rate(full, 0.5)
  // Alternate short rounds so drift on a noisy machine hits both alike.
  const rounds = 4
  let bareTotal = 0
  let fullTotal = 0
  for (let i = 0; i < rounds; i++) {
    bareTotal += await rate(bare, seconds / rounds)
    fullTotal += await rate(full, seconds / rounds)
  }
  const ratio = fullTotal / bareTotal
  console.log(`\nToken verification, one process, 64 in flight, ${seconds} s each (alternating rounds)\n`)
  console.log(table(['verifier', 'tokens/s'], [
    ['jose jwtVerify (signature and claims only)', (bareTotal / rounds).toFixed(0)],
    ['@vouch/verifier (plus revocation state)', (fullTotal / rounds).toFixed(0)],
    ['ratio (target ≥ 0.9)', `${ratio.toFixed(3)} ${ratio >= 0.9 ? 'met' : 'missed'}`],
  ]))
  await verifier.close()
} finally {
  await server.stop()
  await database.drop()
}
