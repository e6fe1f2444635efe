/**
 * The process entry point: read the configuration, bring the database
 * schema up to date, load (or create) the keys, listen, and shut down
 * gracefully on SIGINT/SIGTERM.
 */
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { buildApp } from './app.js'
import { createDb, ensureDatabaseDir } from './db/client.js'
import { applyMigrations } from './db/migrate.js'
import { loadKeySet } from './crypto/keys.js'
import { loadRefreshKey } from './crypto/refresh-key.js'

async function main (): Promise<void> {
  const config = loadConfig(process.env)
  await ensureDatabaseDir(config.databaseUrl)
  await applyMigrations(config.databaseUrl)
  const keys = await loadKeySet({
    algorithm: config.tokens.algorithm,
    signingKeys: config.tokens.signingKeys,
    dataDir: config.dataDir,
  })
  const refreshKey = await loadRefreshKey(config.tokens.refreshTokenSecret, config.dataDir)
  const db = createDb(config.databaseUrl, { pool: config.database })
  const app = await buildApp({ config, db, keys, refreshKey })

  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
    await db.$disconnect()
  })

  await app.listen({ host: config.host, port: config.port })
  app.log.info({ kid: keys.current.kid, alg: keys.algorithm }, 'signing key loaded')
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`vouch: invalid configuration: ${err.message}`)
  } else {
    console.error('vouch: failed to start:', err instanceof Error ? err.message : err)
  }
  process.exit(1)
})
