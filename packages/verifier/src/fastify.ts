/**
 * @vouch/verifier/fastify: a Fastify plugin for resource servers. It checks
 * the bearer token of every request in its scope with the verifier (no call
 * to vouch per request) and puts the claims on `request.user`. Routes opt
 * out with `config: { public: true }`. Failures answer vouch's error shape:
 * 401 invalid_token / token_expired / token_revoked with a Bearer challenge;
 * 503 service_unavailable with Retry-After when the verifier cannot decide
 * (vouch's signing keys or its revocation feed unreachable): an outage is
 * never reported as a bad token, and never lets a token through.
 *
 * No dependency on fastify-plugin: the plugin carries the three symbols
 * fastify-plugin would set (no encapsulation, its name, Fastify 5), so the
 * package installs jose and nothing else. `fastify` is an optional peer.
 *
 * @module
 */
import type { FastifyPluginAsync } from 'fastify'
import { VerifierError } from './errors.js'
import { createVerifier, type VerifiedToken, type Verifier } from './verifier.js'
import type { VerifierOptions } from './options.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified token's claims (null on public routes). */
    user: VerifiedToken | null
  }
  interface FastifyInstance {
    /** The verifier the plugin uses (for `ready()` before listening). */
    vouch: Verifier
  }
  interface FastifyContextConfig {
    /** The route needs no token. */
    public?: boolean
  }
}

/**
 * The plugin's options: the verifier's own, or a verifier already made.
 *
 * @example
 * const options: VouchAuthOptions = { verifier: createVerifier({ vouchUrl, issuer, audience, clientId, clientSecret }) }
 */
export type VouchAuthOptions = VerifierOptions | { verifier: Verifier }

const plugin: FastifyPluginAsync<VouchAuthOptions> = async (app, options) => {
  // A verifier passed in is the caller's to close; one made here closes with the app.
  const own = !('verifier' in options)
  const verifier = 'verifier' in options ? options.verifier : createVerifier(options)
  app.decorate('vouch', verifier)
  app.decorateRequest('user', null)
  if (own) app.addHook('onClose', async () => { await verifier.close() })
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.public === true) return
    try {
      request.user = await verifier.verifyAuthorization(request.headers.authorization)
    } catch (err) {
      if (!(err instanceof VerifierError)) throw err
      if (err.unavailable) request.log.warn({ err }, 'vouch verifier cannot decide; answering 503')
      else if (err.claim !== undefined) request.log.info({ err }, 'vouch verifier refused a token on a claim')
      return reply.code(err.status).headers(err.headers).send(err.body)
    }
  })
}

/**
 * The Fastify plugin (Fastify 5). Its hooks apply to the scope that
 * registers it, like a fastify-plugin-wrapped plugin.
 *
 * @example
 * import Fastify from 'fastify'
 * import { vouchAuth } from '@vouch/verifier/fastify'
 *
 * const app = Fastify()
 * await app.register(vouchAuth, { vouchUrl, issuer, audience: 'vouch', clientId, clientSecret })
 * app.get('/orders', async (request) => listOrders(request.user!.sub))
 * app.get('/health', { config: { public: true } }, async () => ({ ok: true }))
 * await app.vouch.ready()
 */
export const vouchAuth: FastifyPluginAsync<VouchAuthOptions> = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'vouch-auth',
  [Symbol.for('plugin-meta')]: { name: 'vouch-auth', fastify: '5.x' },
})

export default vouchAuth
