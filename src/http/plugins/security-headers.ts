/**
 * Security headers on every response (@fastify/helmet: no sniffing, no
 * framing, HSTS, a deny-all CSP since vouch serves no pages, no referrer)
 * and CORS (@fastify/cors), closed unless CORS_ORIGINS lists origins.
 */
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'

export const securityHeaders = fp<{ corsOrigins: readonly string[] }>(async (app, { corsOrigins }) => {
  await app.register(helmet, {
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  })
  await app.register(cors, {
    origin: corsOrigins.length === 0 ? false : [...corsOrigins],
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type'],
    maxAge: 600,
  })
}, { name: 'vouch-security-headers', fastify: '5.x' })
