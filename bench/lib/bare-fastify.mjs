// Baseline for the throughput benchmarks: a bare Fastify 5 route, run by
// plain `node` (no tsx) as its own process. Logger off, no plugins, the
// answer vouch's smallest routes give: GET /hello → 200 {"ok":true}.
import Fastify from 'fastify'

// Kept-alive connections may idle while other servers are measured.
const app = Fastify({ logger: false, keepAliveTimeout: 600_000 })
app.get('/hello', async () => ({ ok: true }))
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
