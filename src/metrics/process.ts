/**
 * The metrics of a serving process (src/start.ts), when METRICS_PORT is set:
 * a registry of its own with Node's process metrics (CPU, memory, event-loop
 * delay, GC) besides vouch's, served on METRICS_PORT by a lone process, or
 * handed to the cluster's primary by a worker (src/metrics/cluster.ts).
 */
import cluster from 'node:cluster'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { answerPrimary } from './cluster.js'
import { serveMetrics } from './server.js'

export interface ProcessMetrics {
  readonly registry: Registry
  /** Where it is served; undefined in a cluster worker (the primary serves). */
  readonly port: number | undefined
  close (): Promise<void>
}

export async function startMetrics (settings: { host: string, port: number }, onError: (err: unknown) => void): Promise<ProcessMetrics> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  if (cluster.isWorker) {
    answerPrimary(registry)
    return { registry, port: undefined, close: async () => {} }
  }
  const endpoint = await serveMetrics(settings, registry, onError)
  return { registry, port: endpoint.port, close: () => endpoint.close() }
}
