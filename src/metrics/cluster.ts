/**
 * One scrape for a whole cluster (src/cluster.ts): the primary serves
 * METRICS_PORT; at each scrape it asks every worker that is listening for
 * its registry over the cluster's IPC channel, and sums them with
 * prom-client's AggregatorRegistry (counters and histograms add up; a gauge
 * adds up unless it says otherwise, as vouch_invalidation_bus_connected
 * takes the lowest).
 *
 * prom-client's own cluster protocol asks every connected worker, including
 * one that has not loaded the application yet (or the worker that only
 * prepares the database), and so fails a scrape for 5 s while one starts;
 * this one asks only workers that are listening, which have answered since
 * before they listened.
 */
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import { serveMetrics, type MetricsEndpoint, type Scrape } from './server.js'

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number]

const REQUEST = 'vouch:metrics'
const REPLY = 'vouch:metrics-reply'

interface MetricsRequest { type: typeof REQUEST, id: number }
interface MetricsReply { type: typeof REPLY, id: number, metrics?: MetricJson[], error?: string }

/** A scrape fails when a worker has not answered within this. */
const WORKER_TIMEOUT_MS = 3000

/** In a worker: answer the primary's requests with `registry`. */
export function answerPrimary (registry: Registry): void {
  process.on('message', (message: MetricsRequest) => {
    if (message?.type !== REQUEST) return
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: REPLY, id: message.id, metrics } satisfies MetricsReply),
      (err: unknown) => process.send?.({ type: REPLY, id: message.id, error: err instanceof Error ? err.message : String(err) } satisfies MetricsReply),
    )
  })
}

/** In the primary: a scrape that sums the listening workers' registries. */
export function aggregateWorkers (): Scrape {
  const listening = new Set<Worker>()
  cluster.on('listening', (worker) => listening.add(worker))
  cluster.on('exit', (worker) => listening.delete(worker))
  const pending = new Map<number, (reply: MetricsReply) => void>()
  cluster.on('message', (_worker, message: MetricsReply) => {
    if (message?.type === REPLY) pending.get(message.id)?.(message)
  })
  let nextId = 0

  const ask = (worker: Worker): Promise<MetricJson[]> => new Promise((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error(`worker ${worker.process.pid} did not send its metrics within ${WORKER_TIMEOUT_MS} ms`))
    }, WORKER_TIMEOUT_MS)
    pending.set(id, (reply) => {
      clearTimeout(timer)
      pending.delete(id)
      if (reply.metrics) resolve(reply.metrics)
      else reject(new Error(`worker ${worker.process.pid} could not collect its metrics: ${reply.error}`))
    })
    worker.send({ type: REQUEST, id } satisfies MetricsRequest)
  })

  return {
    contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
    async metrics () {
      const workers = [...listening].filter((worker) => worker.isConnected())
      const registries = await Promise.all(workers.map(ask))
      return AggregatorRegistry.aggregate(registries).metrics()
    },
  }
}

/** In the primary: serve METRICS_PORT for the whole cluster. */
export async function serveClusterMetrics (settings: { host: string, port: number }, onError: (err: unknown) => void): Promise<MetricsEndpoint> {
  return serveMetrics(settings, aggregateWorkers(), onError)
}
