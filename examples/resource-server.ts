// An API that trusts vouch: `VOUCH_URL=… VOUCH_CLIENT_ID=… VOUCH_CLIENT_SECRET=… tsx examples/resource-server.ts`.
// Tokens are checked locally (signature from vouch's JWKS, revocations from its feed): no call to vouch per request.
import Fastify from 'fastify'
import { vouchAuth } from '@vouch/verifier/fastify'

const vouchUrl = process.env.VOUCH_URL ?? 'http://127.0.0.1:3000'
const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })

await app.register(vouchAuth, {
  vouchUrl,
  issuer: process.env.VOUCH_ISSUER ?? vouchUrl, // vouch's issuer is its PUBLIC_URL (by default, where it serves)
  audience: process.env.VOUCH_AUDIENCE ?? 'vouch',
  clientId: process.env.VOUCH_CLIENT_ID ?? 'orders',
  clientSecret: process.env.VOUCH_CLIENT_SECRET ?? '',
  maxFeedSilenceMs: Number(process.env.VOUCH_MAX_FEED_SILENCE_MS ?? 15_000),
})

// Every route is protected unless it says otherwise.
app.get('/orders', async (request) => ({ owner: request.user!.sub, orders: [] }))
app.get('/health', { config: { public: true } }, async () => ({ ok: true }))

await app.vouch.ready()
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 4000) })
