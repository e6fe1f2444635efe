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
 * @example
 * await app.register(vouchAuth, { vouchUrl, issuer, audience: 'vouch', clientId, clientSecret })
 * app.get('/orders', async (request) => listOrders(request.user!.sub))
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { createVerifier, VerifierError, type VerifiedToken, type Verifier, type VerifierOptions } from './index.js'

declare module 'fastify' {
  interface FastifyRequest {
    user: VerifiedToken | null
  }
  interface FastifyInstance {
    vouch: Verifier
  }
  interface FastifyContextConfig {
    public?: boolean
  }
}

export type VouchAuthOptions = VerifierOptions | { verifier: Verifier }

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i

/** Seconds a client is asked to wait after a 503: the verifier reconnects within about that. */
const RETRY_AFTER_S = 1

function refuse (reply: FastifyReply, status: 401 | 503, code: string, message: string) {
  if (status === 401) reply.header('www-authenticate', 'Bearer error="invalid_token"')
  else reply.header('retry-after', String(RETRY_AFTER_S))
  return reply.code(status).send({ statusCode: status, error: status === 401 ? 'Unauthorized' : 'Service Unavailable', code, message })
}

const plugin: FastifyPluginAsync<VouchAuthOptions> = async (app, options) => {
  const verifier = 'verifier' in options ? options.verifier : createVerifier(options)
  app.decorate('vouch', verifier)
  app.decorateRequest('user', null)
  app.addHook('onClose', async () => { await verifier.close() })
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.public === true) return
    const token = BEARER.exec(request.headers.authorization ?? '')?.[1]
    if (token === undefined) return refuse(reply, 401, 'invalid_token', 'A bearer access token is required.')
    try {
      request.user = await verifier.verify(token)
    } catch (err) {
      if (!(err instanceof VerifierError)) throw err
      if (err.unavailable) {
        request.log.warn({ err }, 'vouch verifier cannot decide; answering 503')
        const message = err.code === 'keys_unavailable' ? 'Token signing keys are unavailable.' : 'Token revocation state is unavailable.'
        return refuse(reply, 503, 'service_unavailable', message)
      }
      return refuse(reply, 401, err.code, err.message)
    }
  })
}

/**
 * What fastify-plugin would do, without the dependency: the hooks and
 * decorators apply to the scope that registers the plugin (no
 * encapsulation), under a name, for Fastify 5.
 */
export const vouchAuth: FastifyPluginAsync<VouchAuthOptions> = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'vouch-auth',
  [Symbol.for('plugin-meta')]: { name: 'vouch-auth', fastify: '5.x' },
})

export default vouchAuth
