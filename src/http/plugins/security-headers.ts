/**
 * Headers on every response, computed once at start-up and set in one call
 * per request: `cache-control: no-store` (tokens must never be cached by
 * browsers or proxies; the JWKS and discovery routes override it) and
 * helmet's security headers (no sniffing, no framing, HSTS, a deny-all CSP
 * since vouch serves no pages, no referrer). Helmet stays the source of
 * truth: its middleware is run once against a recording response, and what
 * it set is replayed (@fastify/helmet would run it again on every request).
 * CORS (@fastify/cors) is closed unless CORS_ORIGINS lists origins.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import cors from '@fastify/cors'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

const HELMET_OPTIONS: HelmetOptions = {
  // Without useDefaults: false, helmet adds its page-oriented defaults
  // (script-src 'self', style-src https: 'unsafe-inline', ...) to these.
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
}

/** The headers helmet's middleware sets for `options`, recorded once (lower-case names). */
export function helmetHeaders (options: HelmetOptions): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader (name: string, value: number | string | readonly string[]) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { delete headers[name.toLowerCase()] },
  }
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err !== undefined && err !== null) throw err
  })
  return Object.freeze(headers)
}

export const securityHeaders = fp<{ corsOrigins: readonly string[] }>(async (app, { corsOrigins }) => {
  const headers = Object.freeze({ 'cache-control': 'no-store', ...helmetHeaders(HELMET_OPTIONS) })
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
  await app.register(cors, {
    origin: corsOrigins.length === 0 ? false : [...corsOrigins],
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type'],
    maxAge: 600,
  })
}, { name: 'vouch-security-headers', fastify: '5.x' })
