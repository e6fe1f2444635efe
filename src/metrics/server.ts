/**
 * The metrics endpoint: GET /metrics in Prometheus text format, on a port of
 * its own (METRICS_PORT, bound to METRICS_HOST, 127.0.0.1 by default), never
 * on the public port: what it reveals (traffic, failure rates, route names)
 * is for the operator's scraper, and a separate listener is closed to the
 * internet by default without any credential to manage. A plain node:http
 * server, so the cluster's primary can serve it without loading Fastify.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface MetricsEndpoint {
  /** The port it listens on (useful with METRICS_PORT=0). */
  readonly port: number
  close (): Promise<void>
}

export interface Scrape {
  /** The exposition, in the registry's content type. */
  metrics (): Promise<string>
  readonly contentType: string
}

export async function serveMetrics ({ host, port }: { host: string, port: number }, scrape: Scrape, onError: (err: unknown) => void = () => {}): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: metrics are at GET /metrics\n')
      return
    }
    scrape.metrics().then((body) => {
      response.writeHead(200, { 'content-type': scrape.contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body)
    }, (err: unknown) => {
      // A worker that does not answer (starting, stopping) fails the scrape: a partial sum would look like counters going back.
      onError(err)
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '1' }).end('Metrics unavailable; retry shortly\n')
    })
  })
  server.keepAliveTimeout = 65_000 // longer than Prometheus' default scrape interval, so the scraper keeps its connection
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
