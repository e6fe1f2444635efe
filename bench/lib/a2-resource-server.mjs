/**
 * The resource server of the resource-server benchmark, as a user of
 * @vouch/verifier would write it (plain node, Fastify 5, the package's
 * build): one trivial handler served twice in one process,
 *   GET /open       → { ok: true }, no auth at all (not in the plugin's scope)
 *   GET /protected  → the same handler behind the vouchAuth plugin
 * so that protected ÷ open is what the plugin costs. The verifier follows
 * vouch's revocation feed as in production; it listens only once the feed
 * has delivered its state, so /open answering means ready. Environment: PORT, VOUCH_URL,
 * VOUCH_ISSUER, VOUCH_CLIENT_ID, VOUCH_CLIENT_SECRET.
 */
import Fastify from 'fastify'
import { vouchAuth } from '@vouch/verifier/fastify'

const app = Fastify({ logger: false })
const handler = async () => ({ ok: true })
app.get('/open', handler)
await app.register(async (scope) => {
  await scope.register(vouchAuth, {
    vouchUrl: process.env.VOUCH_URL,
    issuer: process.env.VOUCH_ISSUER,
    audience: 'vouch',
    clientId: process.env.VOUCH_CLIENT_ID,
    clientSecret: process.env.VOUCH_CLIENT_SECRET,
  })
  scope.get('/protected', handler)
  await scope.vouch.ready()
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
