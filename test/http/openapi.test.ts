/**
 * The OpenAPI document (/openapi.json) against the app itself: valid OpenAPI
 * 3.1, every registered route described (or hidden here, with a reason),
 * each operation's security and error answers as its route's config and
 * schemas imply, and both the document and /docs off with API_DOCS=false.
 * The routes are collected from the app's own onRoute events, from the
 * instance's creation on (helpers/registered-routes.ts), so a route
 * registered before @fastify/swagger (which it would miss) fails here too.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Validator } from '@seriousme/openapi-schema-validator'
import { createTestApp, type TestOptions } from '../helpers/app.js'
import { type RegisteredRoute, withRegisteredRoutes } from '../helpers/registered-routes.js'
import { errorCatalogue, type ErrorCode } from '../../src/errors.js'
import { DOCS_CSP } from '../../src/http/plugins/openapi.js'

/** Routes the document leaves out on purpose, by path prefix. */
const HIDDEN: ReadonlyArray<{ prefix: string, reason: string }> = [
  { prefix: '/account', reason: 'the account page: HTML and static files, not the API' },
  { prefix: '/docs', reason: 'the reference page and its files' },
  { prefix: '/openapi.json', reason: 'the document itself' },
  { prefix: '*', reason: "@fastify/cors's preflight route (OPTIONS *)" },
]

/** Builds the test app with every route it registers but the HEAD twins of GET routes (helpers/registered-routes.ts). */
async function appWithRoutes (t: Test, options?: TestOptions): Promise<{ app: FastifyInstance, routes: RegisteredRoute[] }> {
  const { app, routes } = await withRegisteredRoutes(() => createTestApp(t, options))
  return { app, routes: routes.filter(({ method }) => method !== 'HEAD') }
}

type Media = { schema?: { $ref?: string }, examples?: Record<string, { value: { statusCode: number, code: ErrorCode, error: string, message: string } }> }
type Operation = {
  security?: Array<Record<string, string[]>>
  responses: Record<string, { description: string, content?: Record<string, Media> }>
  requestBody?: { required?: boolean, description?: string, content: Record<string, { example?: unknown }> }
  tags?: string[]
}
type Document = { openapi: string, paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, unknown>, securitySchemes: Record<string, { type: string, scheme?: string, in?: string }> } }

/** An operation's error codes by status, read from its examples (one per code). */
function codesOf (operation: Operation): Map<string, ErrorCode[]> {
  const codes = new Map<string, ErrorCode[]>()
  for (const [status, response] of Object.entries(operation.responses)) {
    const media = response.content?.['application/json']
    if (media?.schema?.$ref !== '#/components/schemas/ErrorBody') continue
    codes.set(status, Object.values(media.examples ?? {}).map(({ value }) => value.code))
  }
  return codes
}

const toOpenApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

t.test('/openapi.json is a valid OpenAPI 3.1 document that describes every registered route', async (t) => {
  const { app, routes } = await appWithRoutes(t)
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const document = res.json() as Document
  t.equal(document.openapi, '3.1.0')

  const validator = new Validator()
  const result = await validator.validate(document as unknown as Parameters<Validator['validate']>[0])
  t.ok(result.valid, 'valid against the OpenAPI 3.1 schema')
  if (!result.valid) t.comment(JSON.stringify(result.errors, null, 2))

  t.ok(routes.length > 30, `the app's routes were collected (${routes.length})`)
  const described = new Set<string>()
  for (const route of routes) {
    const hidden = HIDDEN.find(({ prefix }) => route.url === prefix || route.url.startsWith(prefix === '*' ? '*' : `${prefix}/`))
    const operation = document.paths[toOpenApiPath(route.url)]?.[route.method.toLowerCase()]
    if (hidden) {
      t.notOk(operation, `${route.method} ${route.url} is hidden (${hidden.reason})`)
      continue
    }
    t.ok(operation, `${route.method} ${route.url} is in the document`)
    described.add(`${route.method.toLowerCase()} ${toOpenApiPath(route.url)}`)
  }
  const documented = Object.entries(document.paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method} ${path}`))
  t.same(documented.filter((operation) => !described.has(operation)), [], 'no operation without a route')
  for (const path of ['/auth/login', '/auth/introspect', '/auth/revoke', '/auth/revocations', '/.well-known/jwks.json',
    '/.well-known/openid-configuration', '/health/ready', '/admin/users/{id}', '/auth/sessions/{id}', '/auth/session/watch']) {
    t.ok(document.paths[path], `${path} is described`)
  }
})

t.test('each operation lists its error statuses, with an example of each code, in the one ErrorBody shape', async (t) => {
  const { app, routes } = await appWithRoutes(t)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as Document
  t.match(document.components.schemas.ErrorBody, { type: 'object', required: ['statusCode', 'error', 'code', 'message'] })

  for (const route of routes) {
    const operation = document.paths[toOpenApiPath(route.url)]?.[route.method.toLowerCase()]
    if (operation === undefined) continue
    const problems: string[] = []
    const codes = codesOf(operation)
    const all = new Set([...codes.values()].flat())
    const takesInput = !route.url.startsWith('/health/') && !route.url.startsWith('/.well-known/')
    if (takesInput && ![...codes.keys()].some((status) => status.startsWith('4'))) problems.push('no 4xx answer')
    for (const status of Object.keys(operation.responses)) if (/^[45]XX$/.test(status)) problems.push(`a range (${status}), not statuses`)
    for (const [status, list] of codes) {
      if (list.length === 0) problems.push(`${status}: no example`)
      for (const code of list) if (String(errorCatalogue[code].status) !== status) problems.push(`${status}: ${code} is a ${errorCatalogue[code].status}`)
      if (operation.responses[status]!.description !== list.map((code) => `\`${code}\``).join(', ')) problems.push(`${status}: the description does not list its codes`)
    }
    const expect = (expected: ErrorCode[], why: string) => {
      for (const code of expected) if (!all.has(code)) problems.push(`${why}: ${code} missing`)
    }
    const expectSecurity = (security: Operation['security']) => {
      if (JSON.stringify(operation.security) !== JSON.stringify(security)) problems.push(`security ${JSON.stringify(operation.security)}, not ${JSON.stringify(security)}`)
    }
    expect(['internal_error', 'service_unavailable'], 'any request')
    const config = route.config as { auth?: string, cookieFallback?: true, client?: true | 'optional', admin?: true } | undefined
    const schema = route.schema as { body?: unknown, params?: unknown, querystring?: unknown } | undefined
    if (config?.auth === 'bearer') {
      expect(['invalid_token', 'token_expired', 'token_revoked'], 'bearer authentication')
      // cookieFallback (refresh-cookie.ts): in cookie mode the refresh cookie may stand in for the access token.
      if (config.cookieFallback === true) expect(['origin_not_allowed'], 'the refresh cookie')
      expectSecurity(config.cookieFallback === true ? [{ bearerAuth: [] }, { refreshCookie: [] }] : [{ bearerAuth: [] }])
    } else if (config?.admin === true) {
      expect(['invalid_credentials', 'forbidden'], 'admin authentication')
      expectSecurity([{ adminBasic: [] }])
    } else if (config?.client === true) {
      expect(['invalid_credentials'], 'client authentication')
      expectSecurity([{ clientBasic: [] }])
    } else if (config?.client === 'optional') {
      expect(['invalid_credentials'], 'client authentication when credentials are sent')
      expectSecurity([{}, { clientBasic: [] }])
    }
    if (route.url.startsWith('/auth/') || route.url.startsWith('/admin/')) expect(['rate_limited'], 'the per-IP limit')
    if (schema?.body !== undefined) expect(['validation_failed', 'payload_too_large', 'unsupported_media_type'], 'a body')
    if (schema?.params !== undefined || schema?.querystring !== undefined) expect(['validation_failed'], 'parameters')
    t.same(problems, [], `${route.method} ${route.url}: ${[...codes].map(([status, list]) => `${status} ${list.join(' ')}`).join('; ')}`)
  }
})

t.test('security schemes, tags and examples of the main routes', async (t) => {
  const { app } = await appWithRoutes(t)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as Document
  t.match(document.components.securitySchemes, {
    bearerAuth: { type: 'http', scheme: 'bearer' },
    clientBasic: { type: 'http', scheme: 'basic' },
    adminBasic: { type: 'http', scheme: 'basic' },
    refreshCookie: { type: 'apiKey', in: 'cookie' },
  })
  t.same(document.paths['/auth/refresh']!.post!.security, [{}, { refreshCookie: [] }], 'refresh: body token, or the cookie in cookie mode')
  t.same(document.paths['/auth/logout']!.post!.security, [{ bearerAuth: [] }, { refreshCookie: [] }], 'logout: an access token, or the cookie in cookie mode')
  const refreshBody = document.paths['/auth/refresh']!.post!.requestBody!
  t.equal(refreshBody.required, false, 'refresh: the body is optional, since cookie mode sends none')
  t.match(refreshBody.description, /cookie mode.*no body/i)
  t.ok(refreshBody.content['application/json'], 'and its schema is still documented for bearer mode')
  t.notOk(document.paths['/auth/login']!.post!.security, 'sign-in takes no credentials but the body')

  const login = document.paths['/auth/login']!.post!
  t.match(login.requestBody!.content['application/json']!.example, { email: String, password: String })
  t.match((login.responses['200']!.content!['application/json'] as { example?: unknown }).example, { tokenType: 'Bearer', accessToken: String, refreshToken: String })
  t.match(login.responses['401']!.content!['application/json']!.examples!.invalid_credentials!.value,
    { statusCode: 401, error: 'Unauthorized', code: 'invalid_credentials', message: errorCatalogue.invalid_credentials.message })
  t.same(login.tags, ['auth'])
  t.same(document.paths['/auth/introspect']!.post!.tags, ['resource servers'])
  t.same(document.paths['/admin/users']!.get!.tags, ['admin'])
})

t.test('the document and the docs page answer with their own CSP, the document with the API\'s', async (t) => {
  const { app } = await appWithRoutes(t)
  const page = await app.inject({ method: 'GET', url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['content-security-policy'], DOCS_CSP)
  t.notMatch(page.body, /<script>|<style>|https?:\/\//, 'no inline script or style, nothing from elsewhere')
  const script = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(script.statusCode, 200)
  t.equal(script.headers['content-security-policy'], DOCS_CSP)
  const json = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(json.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'")
})

t.test('with API_DOCS=false, /openapi.json and /docs are 404', async (t) => {
  const { app, routes } = await appWithRoutes(t, { env: { API_DOCS: 'false' } })
  for (const url of ['/openapi.json', '/docs', '/docs/', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'not_found')
  }
  t.notOk(routes.some(({ url }) => url.startsWith('/docs') || url === '/openapi.json'), 'not registered at all')
})
