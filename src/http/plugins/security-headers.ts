/**
 * Headers on every response, computed once at start-up and set in one call
 * per request: `cache-control: no-store` (tokens must never be cached by
 * browsers or proxies; the JWKS and discovery routes override it) and
 * helmet's security headers (no sniffing, no framing, HSTS, a deny-all CSP
 * since vouch serves no pages, no referrer). Helmet stays the source of
 * truth: its middleware is run once against a recording response, and what
 * it set is replayed (@fastify/helmet would run it again on every request).
 * CORS (@fastify/cors) is closed except for listed origins: CORS_ORIGINS get
 * it without credentials; COOKIE_ORIGINS (cookie mode, refresh-cookie.ts) get
 * it with credentials and the Vouch-Mode header. Any other origin gets no
 * Access-Control-* header at all, so its preflight for Vouch-Mode fails.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import cors, { type FastifyCorsOptions } from '@fastify/cors'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import { DomainError } from '../../errors.js'

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

export interface SecurityHeadersOptions {
  /** CORS_ORIGINS: cross-origin calls without credentials. */
  corsOrigins: readonly string[]
  /** config.cookies.origins: cross-origin calls with credentials (cookie mode). */
  cookieOrigins: readonly string[]
}

/**
 * What a listed origin's script may read beyond the CORS-safelisted response
 * headers: the wait a 429 or 503 asks for, the challenge of a 401, and the
 * request id to quote in a report.
 */
const EXPOSED_HEADERS = ['retry-after', 'www-authenticate', 'x-request-id']
const CORS_BASE = { methods: ['GET', 'POST', 'DELETE'], maxAge: 600, exposedHeaders: EXPOSED_HEADERS }

/**
 * The CORS options for each listed origin, computed once; an origin in both
 * lists is a cookie origin (it needs the credentials and the header).
 */
export function corsPolicy ({ corsOrigins, cookieOrigins }: SecurityHeadersOptions): ReadonlyMap<string, FastifyCorsOptions> {
  const policy = new Map<string, FastifyCorsOptions>()
  for (const origin of corsOrigins) {
    policy.set(origin, { ...CORS_BASE, origin, allowedHeaders: ['authorization', 'content-type'] })
  }
  for (const origin of cookieOrigins) {
    policy.set(origin, { ...CORS_BASE, origin, credentials: true, allowedHeaders: ['authorization', 'content-type', 'vouch-mode'] })
  }
  return policy
}

const CLOSED: FastifyCorsOptions = { origin: false }

export const securityHeaders = fp<SecurityHeadersOptions>(async (app, options) => {
  const headers = Object.freeze({ 'cache-control': 'no-store', ...helmetHeaders(HELMET_OPTIONS) })
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
  const policy = corsPolicy(options)
  if (policy.size === 0) {
    await app.register(cors, { origin: false })
    return
  }
  // @fastify/cors answers an OPTIONS from a listed origin without Access-Control-Request-Method (no preflight a
  // browser sends) with its own 400 text/plain; every other refusal is the catalogue's JSON, so this one is too.
  app.addHook('onRequest', (request, _reply, done) => {
    const origin = request.headers.origin
    if (request.method === 'OPTIONS' && origin !== undefined && policy.has(origin) && !request.headers['access-control-request-method']) {
      done(new DomainError('validation_failed', 'A CORS preflight names its method in Access-Control-Request-Method.'))
      return
    }
    done()
  })
  await app.register(cors, {
    delegator: (request, callback) => {
      const origin = request.headers.origin
      callback(null, (origin !== undefined && policy.get(origin)) || CLOSED)
    },
  })
}, { name: 'vouch-security-headers', fastify: '5.x' })
