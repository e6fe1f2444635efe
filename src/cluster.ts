/**
 * Entry point: one vouch worker per core (`npm run start:cluster`), sharing
 * one port through node:cluster. The primary has one worker migrate the
 * database and create the key material, and waits for it to exit, then forks
 * WORKERS workers; it relays revocations between them when no Redis or
 * PostgreSQL channel is configured, restarts a worker that dies, and on
 * SIGTERM/SIGINT lets every worker finish its requests before exiting.
 *
 * The primary stays small (about 45 MiB): it never loads the application,
 * Prisma or the schema engine, which a worker of its own runs once and
 * takes away when it exits. Workers get the Node flags of src/runtime.ts,
 * and a libuv pool sized for the machine (UV_THREADPOOL_SIZE, unless set).
 *
 * The primary logs JSON lines at LOG_LEVEL in the workers' shape
 * (src/cluster-log.ts, without pino's weight): how many workers it started
 * and their pids, each worker that dies and the one started in its place,
 * and the stop.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { relayInvalidations } from './bus/cluster.js'
import { clusterLogger } from './cluster-log.js'
import { loadConfig } from './config.js'
import { exitOnStartupError, threadPoolSize, withNodeFlags } from './runtime.js'

/** Set in the environment of the worker that only migrates and creates the keys. */
const PREPARE_ONLY = 'VOUCH_CLUSTER_PREPARE'

/** Runs the migrations and creates the keys in a worker; resolves once it has exited cleanly. */
function prepareInWorker (): Promise<void> {
  return new Promise((resolve, reject) => {
    cluster.fork({ [PREPARE_ONLY]: '1' }).once('exit', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`preparing the database and the keys failed (${signal ?? `exit code ${code}`})`))
    })
  })
}

async function primary (): Promise<void> {
  const config = loadConfig(process.env)
  const logger = clusterLogger(config.logLevel)
  cluster.setupPrimary({ execArgv: withNodeFlags(process.execArgv) })
  await prepareInWorker()
  relayInvalidations()
  // One scrape for every worker (src/metrics/cluster.ts); prom-client is loaded only when metrics are on.
  if (config.metrics.port !== undefined) {
    await (await import('./metrics/cluster.js')).serveClusterMetrics({ host: config.metrics.host, port: config.metrics.port },
      (err) => logger.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics: a scrape failed'))
  }

  const env = process.env.UV_THREADPOOL_SIZE === undefined
    ? { UV_THREADPOOL_SIZE: String(threadPoolSize(config.workers, availableParallelism())) }
    : {}
  let stopping = false
  const fork = (): Worker => cluster.fork(env)
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      logger.info({ worker: worker.process.pid, code, signal }, 'worker stopped')
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        logger.info('every worker stopped; exiting')
        process.exit(0)
      }
      return
    }
    logger.error({ worker: worker.process.pid, code, signal }, `worker ${worker.process.pid} exited (${signal ?? code}); starting another`)
    setTimeout(() => logger.info({ worker: fork().process.pid, replaces: worker.process.pid }, 'worker restarted'), 1000).unref()
  })
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'stopping: every worker finishes its requests')
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    setTimeout(() => {
      logger.error({ workers: Object.keys(cluster.workers ?? {}).length }, 'workers still running after 15 s; exiting')
      process.exit(1)
    }, 15_000).unref()
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  const pids = Array.from({ length: config.workers }, () => fork().process.pid)
  logger.info({ workers: config.workers, pids }, `started ${config.workers} worker${config.workers === 1 ? '' : 's'}`)
}

async function worker (): Promise<void> {
  const { prepare, serve } = await import('./start.js')
  const config = loadConfig(process.env)
  if (process.env[PREPARE_ONLY] === '1') {
    const { createLogger } = await import('./app.js')
    const logger = createLogger(config.logLevel)
    const { db, notes } = await prepare(config)
    for (const note of notes) logger.info(note)
    await db.$disconnect()
    process.exit(0)
  }
  await serve(config)
}

try {
  if (cluster.isPrimary) await primary()
  else await worker()
} catch (err) {
  exitOnStartupError(err)
}
