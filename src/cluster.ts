/**
 * Entry point: one vouch worker per core (`npm run start:cluster`), sharing
 * one port through node:cluster. The primary migrates the database and
 * creates the key material once, then forks WORKERS workers; it relays
 * revocations between them when no Redis or PostgreSQL channel is
 * configured, restarts a worker that dies, and on SIGTERM/SIGINT lets every
 * worker finish its requests before exiting.
 */
import cluster, { type Worker } from 'node:cluster'
import { relayInvalidations } from './bus/cluster.js'
import { loadConfig } from './config.js'
import { exitOnStartupError, prepare, serve } from './start.js'

async function primary (): Promise<void> {
  const config = loadConfig(process.env)
  await prepare(config)
  relayInvalidations()

  let stopping = false
  const fork = (): Worker => cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
      return
    }
    console.error(`vouch: worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
    setTimeout(fork, 1000).unref()
  })
  const stop = () => {
    if (stopping) return
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    setTimeout(() => process.exit(1), 15_000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  for (let i = 0; i < config.workers; i++) fork()
}

try {
  if (cluster.isPrimary) await primary()
  else await serve(loadConfig(process.env))
} catch (err) {
  exitOnStartupError(err)
}
