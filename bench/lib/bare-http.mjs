// Baseline for the throughput benchmarks: node:http alone, run by plain
// `node` as its own process. GET /hello → 200 {"ok":true}, like bare-fastify.mjs.
import http from 'node:http'

const body = JSON.stringify({ ok: true })
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/hello') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  } else {
    res.writeHead(404).end()
  }
})
// Kept-alive connections may idle while other servers are measured (Fastify's default is 72 s).
server.keepAliveTimeout = 600_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1')
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections() })
